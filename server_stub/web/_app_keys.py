"""App keys: the bearer keys apps and providers send events with, optionally named.

``--app-key`` takes ``KEY`` or ``NAME=KEY``. The name (1 to 64 of ``A-Z a-z 0-9 _ . -``)
says which app a batch came from in the server's logs; unnamed keys are called
``app-1``, ``app-2``, ... in the order given. A value is read as ``NAME=KEY`` only when
the part before the first ``=`` is such a name *and* the rest is a valid key (at least
16 characters); otherwise the whole value is the key, so a base64 key ending in ``=``
stays one key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

import attrs

from errdiscount_sdk import ConfigurationError

__all__ = ["MIN_KEY_CHARS", "AppKey", "parse_app_keys"]

MIN_KEY_CHARS: Final = 16
MAX_APP_KEYS: Final = 64
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


@attrs.frozen
class AppKey:
    """One configured app key and the name it is logged under (never the key)."""

    name: str
    key: str = attrs.field(repr=False)


def parse_app_keys(values: Iterable[str]) -> tuple[AppKey, ...]:
    """Parse ``KEY`` / ``NAME=KEY`` values.

    Raises:
        ConfigurationError: more than 64 keys, a key shorter than 16 characters, or
            two keys with the same name.
    """
    keys: list[AppKey] = []
    for position, value in enumerate(values, start=1):
        name, sep, key = value.partition("=")
        if not (sep and _NAME.fullmatch(name) and len(key) >= MIN_KEY_CHARS):
            name, key = f"app-{position}", value
        if len(key) < MIN_KEY_CHARS:
            raise ConfigurationError(f"app keys must be at least {MIN_KEY_CHARS} characters")
        keys.append(AppKey(name, key))
    if len(keys) > MAX_APP_KEYS:
        raise ConfigurationError(f"at most {MAX_APP_KEYS} app keys")
    if len({key.name for key in keys}) != len(keys):
        raise ConfigurationError("app key names must be unique")
    return tuple(keys)
