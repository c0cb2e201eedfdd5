"""Locale catalogues (``server_stub/frontend/locales/<lang>.json``) and language choice.

Every text a page or the widget shows lives in one catalogue file per
language; code only names keys. The catalogues are loaded once and checked
when first used: every language must have exactly the same keys and, for each
key, the same ``{placeholders}`` — so a missing translation fails the test
suite instead of showing a raw key to a user.
"""

from __future__ import annotations

import functools
import json
import re
import string
from collections.abc import Mapping
from pathlib import Path

from errdiscount_sdk import ConfigurationError

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "Catalogues",
    "catalogues",
    "choose_language",
    "load_catalogues",
]

LANGUAGES = ("en", "zh-CN")
"""Supported languages, in the order they are preferred when nothing matches."""

DEFAULT_LANGUAGE = "en"

_LOCALES = Path(__file__).parent / "locales"
_MAX_CATALOGUE_BYTES = 256 * 1024
_MAX_ACCEPT_LANGUAGE = 512
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*|\*")


def _placeholders(text: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)


class Catalogues:
    """The texts of every supported language, checked for consistency.

    Args:
        texts: language → (key → text).

    Raises:
        ConfigurationError: a language is missing, has other keys than the
            default language, or a text has other placeholders.
    """

    def __init__(self, texts: Mapping[str, Mapping[str, object]]) -> None:
        missing = [lang for lang in LANGUAGES if lang not in texts]
        if missing:
            raise ConfigurationError(f"no catalogue for {', '.join(missing)}")
        reference = texts[DEFAULT_LANGUAGE]
        for lang in LANGUAGES:
            table = texts[lang]
            if set(table) != set(reference):
                diff = sorted(set(table) ^ set(reference))
                raise ConfigurationError(f"catalogue {lang} differs in keys: {', '.join(diff)}")
            for key, text in table.items():
                if not isinstance(text, str) or not text:
                    raise ConfigurationError(f"catalogue {lang}: {key} must be a non-empty string")
                if _placeholders(text) != _placeholders(str(reference[key])):
                    raise ConfigurationError(f"catalogue {lang}: {key} has other placeholders")
        self._texts = {
            lang: {key: str(text) for key, text in texts[lang].items()} for lang in LANGUAGES
        }

    def keys(self) -> frozenset[str]:
        """Every key (the same in each language)."""
        return frozenset(self._texts[DEFAULT_LANGUAGE])

    def text(self, lang: str, key: str, **values: object) -> str:
        """The text for ``key`` in ``lang`` with ``{placeholders}`` filled in.

        Values are inserted as plain text; escaping is the renderer's job.

        Raises:
            KeyError: unknown language or key (a programming error).
        """
        template = self._texts[lang][key]
        return template.format(**values) if values else template

    def section(self, lang: str, prefix: str) -> dict[str, str]:
        """Every text whose key starts with ``prefix.``, keyed without the prefix."""
        head = prefix + "."
        return {
            key[len(head) :]: text
            for key, text in self._texts[lang].items()
            if key.startswith(head)
        }


def load_catalogues(directory: Path = _LOCALES) -> Catalogues:
    """Read and check ``<lang>.json`` for every supported language.

    Raises:
        ConfigurationError: a file is missing, too large, not a JSON object of
            strings, or inconsistent with the others.
    """
    texts: dict[str, dict[str, object]] = {}
    for lang in LANGUAGES:
        path = directory / f"{lang}.json"
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read catalogue {path.name}: {exc.strerror}") from None
        if len(raw) > _MAX_CATALOGUE_BYTES:
            raise ConfigurationError(f"catalogue {path.name} is too large")
        try:
            data = json.loads(raw)
        except ValueError:
            raise ConfigurationError(f"catalogue {path.name} is not valid JSON") from None
        if not isinstance(data, dict):
            raise ConfigurationError(f"catalogue {path.name} must be a JSON object")
        texts[lang] = data
    return Catalogues(texts)


@functools.cache
def catalogues() -> Catalogues:
    """The shipped catalogues, loaded and checked once per process."""
    return load_catalogues()


def _canonical(tag: str) -> str | None:
    # Match by primary language: every Chinese variant gets the one Chinese
    # catalogue we have (Simplified), every English variant gets English.
    primary = tag.split("-", 1)[0].lower()
    if primary == "zh":
        return "zh-CN"
    if primary == "en":
        return "en"
    return None


def choose_language(query: str | None, accept_language: str | None) -> str:
    """Pick the language: ``?lang=`` first, then ``Accept-Language``, then English.

    Never raises: malformed or oversized values are ignored.
    """
    if query and len(query) <= 35 and _LANGUAGE_TAG.fullmatch(query):
        chosen = _canonical(query)
        if chosen is not None:
            return chosen
    if not accept_language or len(accept_language) > _MAX_ACCEPT_LANGUAGE:
        return DEFAULT_LANGUAGE
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip()
        if not _LANGUAGE_TAG.fullmatch(tag):
            continue
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
            if not 0 <= quality <= 1:
                continue
        if quality > 0:
            ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        chosen = _canonical(tag)
        if chosen is not None:
            return chosen
    return DEFAULT_LANGUAGE
