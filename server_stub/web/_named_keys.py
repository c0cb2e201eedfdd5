"""``NAME=KEY`` bearer keys: one parser for ``--admin-key`` and ``--app-key``.

An entry is either ``NAME=KEY`` or a bare ``KEY``, which is named ``default``
(``admin`` for admin keys, ``app`` for app keys), so a configuration written before
names existed keeps working. The split is taken only when it is unambiguous: the part
before the first ``=`` is a valid name and the part after it is itself a valid key
(at least 16 characters). A base64 key such as ``c2VjcmV0LXNlY3JldC1rZXk=`` therefore
stays a bare key: what follows its ``=`` is far too short to be a key.

Names are what the ledger records as the ``actor`` of an admin action, so they are
short and printable; keys are never part of a repr, a log line or an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

from errdiscount_sdk import ConfigurationError

__all__ = ["MIN_KEY_LENGTH", "NamedKey", "parse_named_key", "parse_named_keys"]

MIN_KEY_LENGTH = 16
MAX_KEY_LENGTH = 1024
MAX_KEYS = 64
#: a name: what the ledger shows as the actor (letters, digits, ``_ . @ -``)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


@attrs.frozen
class NamedKey:
    """A bearer key and the name it is known by (the key never appears in a repr)."""

    name: str
    key: str = attrs.field(repr=False)


def _valid_key(key: str) -> bool:
    return MIN_KEY_LENGTH <= len(key) <= MAX_KEY_LENGTH and not any(c.isspace() for c in key)


def parse_named_key(entry: str, *, default: str, what: str) -> NamedKey:
    """One ``NAME=KEY`` or bare ``KEY`` entry (bare: named ``default``).

    Raises:
        ConfigurationError: the key is shorter than 16 characters or holds whitespace
            (the message names ``what``, never the key).
    """
    name, sep, key = entry.partition("=")
    if sep and _NAME.fullmatch(name) and _valid_key(key):
        return NamedKey(name, key)
    if not _valid_key(entry):
        raise ConfigurationError(
            f"{what}: each key must be {MIN_KEY_LENGTH} to {MAX_KEY_LENGTH} characters"
            " without whitespace (NAME=KEY or KEY)"
        )
    return NamedKey(default, entry)


def parse_named_keys(entries: Iterable[str], *, default: str, what: str) -> tuple[NamedKey, ...]:
    """Every entry parsed; at most 64, no key twice.

    A name may have several keys (rotation: the old and the new key of ``ops``, both
    recorded as ``ops``).

    Raises:
        ConfigurationError: a bad entry, a repeated key, or too many entries.
    """
    keys = tuple(parse_named_key(entry, default=default, what=what) for entry in entries)
    if len(keys) > MAX_KEYS:
        raise ConfigurationError(f"{what}: at most {MAX_KEYS} keys")
    if len({k.key for k in keys}) != len(keys):
        raise ConfigurationError(f"{what}: the same key is given twice")
    return keys
