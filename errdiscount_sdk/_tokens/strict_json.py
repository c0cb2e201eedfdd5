"""One spelling of JSON for tokens and key sets: UTF-8 text, finite numbers, unique names.

`json.loads` on bytes is lenient in ways a signed format must not be: it guesses
UTF-16 and UTF-32 from the first bytes, skips a UTF-8 byte-order mark, turns
``1e400`` into ``inf`` and accepts ``NaN``/``Infinity``. Each of those is a
second spelling of a document (or a value no other implementation reads the
same way), so `loads_strict` refuses them all.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["StrictJsonError", "loads_strict"]


class StrictJsonError(ValueError):
    """The bytes are not the one accepted spelling of a JSON document."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise StrictJsonError("a member name is repeated")
    return result


def _reject_constant(name: str) -> Any:
    raise StrictJsonError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        # 1e400 parses to inf: a number no finite-precision reader can hold.
        raise StrictJsonError("a number is out of the finite range")
    return value


def loads_strict(data: bytes) -> Any:
    """Parse ``data`` as UTF-8 JSON (no BOM), without duplicates or non-finite numbers.

    Raises:
        StrictJsonError: not UTF-8, a BOM, invalid JSON, a repeated member,
            ``NaN``/``Infinity``, or a number that overflows to infinity.
            Integers past Python's digit limit and nesting past the recursion
            limit raise `ValueError` / `RecursionError`; callers cap nesting first.
    """
    try:
        text = data.decode("utf-8")  # strict: UTF-16/32 and bad bytes fail here
    except UnicodeDecodeError:
        raise StrictJsonError("not UTF-8") from None
    if text.startswith("\ufeff"):
        raise StrictJsonError("starts with a byte-order mark")
    try:
        return json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except StrictJsonError:
        raise
    except json.JSONDecodeError as exc:
        raise StrictJsonError(f"not JSON ({exc.msg})") from None
