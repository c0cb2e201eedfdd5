"""Bounded decoding of error bodies: JSON text, or an already decoded mapping, into plain data.

Policy: whatever arrives — bytes from the wire or a structure a caller built — the shape
recognisers only ever see *plain JSON data*: dicts with str keys, lists, str, bool, None,
finite numbers and ints of at most `MAX_INT_BITS` bits, nested at most `MAX_DEPTH` deep
and at most `MAX_NODES` values in all. Anything else is refused (None) or dropped, never
raised: a recogniser cannot trip over what it never sees.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Final

__all__ = ["MAX_DEPTH", "MAX_INT_BITS", "MAX_NODES", "decode_json", "nesting_exceeds", "plain"]

MAX_DEPTH: Final = 32
"""JSON (or XML) nested deeper than this is refused before it is decoded."""
MAX_NODES: Final = 65_536
"""A decoded mapping holding more values than this (all levels) is refused."""
MAX_INT_BITS: Final = 128
"""Integers wider than this are dropped: nothing a provider means as a code is that
long, and ``str()`` of a huge int raises (CPython's 4 300-digit limit)."""

# A JSON string literal, matched possessively so that an unterminated one costs O(n).
_STRING_LITERAL = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def nesting_exceeds(text: str, limit: int = MAX_DEPTH) -> bool:
    """True when the JSON text opens more than ``limit`` arrays/objects at once.

    Brackets inside string literals do not count (they are removed first), so a body
    full of ``"]"`` cannot drive the count negative and hide a deep structure behind it.
    An unterminated string is left in place: its brackets then count, which can only
    over-estimate (and such a body does not decode anyway).
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _BRACKET.finditer(_STRING_LITERAL.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth = max(depth - 1, 0)
    return False


def decode_json(text: str) -> object:
    """Decode JSON text under the depth cap; None when it is not (bounded) JSON.

    Trailing commas, which hand-written error bodies (and Azure's guidelines) contain,
    are tolerated. Never raises.
    """
    if nesting_exceeds(text):
        return None
    for candidate in (text, _TRAILING_COMMA.sub(r"\1", text)):
        try:
            return plain(json.loads(candidate, parse_int=_bounded_int, parse_constant=_no_constant))
        except (ValueError, RecursionError):  # RecursionError: belt and braces
            continue
    return None


def _bounded_int(digits: str) -> int | None:
    # Decide on the digits, before int() meets CPython's 4 300-digit limit and raises.
    return int(digits) if len(digits) <= 40 else None


def _no_constant(name: str) -> None:
    return None  # NaN, Infinity, -Infinity: not JSON (RFC 8259), read as absent


def plain(value: object) -> object:
    """``value`` as plain JSON data within the caps, or None when it exceeds them.

    Mappings keep only their str keys; tuples become lists; NaN, infinities, over-wide
    ints and every other type (bytes, sets, objects) are dropped from their container.
    """
    budget = [MAX_NODES]
    try:
        return _plain(value, 1, budget)
    except _TooLarge:
        return None


class _TooLarge(Exception):
    """Internal: the structure exceeds the depth or node cap."""


_DROP: Final = object()


def _plain(value: object, depth: int, budget: list[int]) -> object:
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise _TooLarge
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return value if value.bit_length() <= MAX_INT_BITS else _DROP
    if isinstance(value, float):
        return value if math.isfinite(value) else _DROP
    if isinstance(value, Mapping):
        result: dict[str, object] = {}
        for key, item in value.items():
            if isinstance(key, str):
                converted = _plain(item, depth + 1, budget)
                if converted is not _DROP:
                    result[key] = converted
        return result
    if isinstance(value, list | tuple):
        items = (_plain(item, depth + 1, budget) for item in value)
        return [item for item in items if item is not _DROP]
    return _DROP
