"""The provider's own words for an error: ``message`` / ``suggestion`` of ``POST /v1/tokens``.

A provider knows what actually went wrong ("insufficient balance on the card")
far better than our per-category catalogue text, so it may hand both texts over
when it asks for a voucher; the alert popup then shows them instead of the
generic explanation.

Shape (policy): each of ``message`` and ``suggestion`` is either

* a plain string, in the language named by the request's optional ``lang``
  (``"und"``, undetermined, when ``lang`` is absent), or
* an object of language tag → string, e.g. ``{"en": "...", "zh-CN": "..."}``,
  for a bilingual popup (``lang`` is then not allowed unless the other member is
  a plain string).

Every text is 1 to `MAX_TEXT` characters of printable Unicode: control,
format (bidi overrides, zero-width), private-use, unassigned and line/paragraph
separator characters are refused, so a text is one inert line wherever it is
shown. Tags are BCP 47-shaped (``en``, ``zh-CN``, ``zh-Hant-TW``), at most
`MAX_TAG` characters, at most `MAX_LANGUAGES` per text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from ..web._body import invalid_body

__all__ = [
    "MAX_LANGUAGES",
    "MAX_TAG",
    "MAX_TEXT",
    "UNDETERMINED",
    "pick_text",
    "provider_texts",
]

MAX_TEXT = 500
MAX_TAG = 35
MAX_LANGUAGES = 8
UNDETERMINED = "und"
_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}")
# Allow-list by Unicode category: letters, marks, numbers, punctuation, symbols
# and the space separators (the ideographic space is common in Chinese text).
_ALLOWED = frozenset(("L", "M", "N", "P", "S"))


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise invalid_body(f"Member {name!r} has the wrong type.")
    if not value or len(value) > MAX_TEXT:
        raise invalid_body(f"Member {name!r} must be 1 to {MAX_TEXT} characters.")
    for ch in value:
        category = unicodedata.category(ch)
        if category[0] not in _ALLOWED and category != "Zs":
            raise invalid_body(f"Member {name!r} contains a control or invisible character.")
    return value


def _tag(name: str, value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_TAG or not _TAG.fullmatch(value):
        raise invalid_body(f"Member {name!r} must be a language tag such as 'en' or 'zh-CN'.")
    return value


def _localized(name: str, value: object, lang: str | None) -> dict[str, str]:
    if isinstance(value, str):
        return {lang or UNDETERMINED: _text(name, value)}
    if not isinstance(value, dict):
        raise invalid_body(f"Member {name!r} must be a string or an object of language → text.")
    if not value or len(value) > MAX_LANGUAGES:
        raise invalid_body(f"Member {name!r} must have 1 to {MAX_LANGUAGES} languages.")
    texts: dict[str, str] = {}
    seen: set[str] = set()
    for tag, text in value.items():
        _tag(f"{name} language", tag)
        if tag.lower() in seen:
            raise invalid_body(f"Member {name!r} names a language twice.")
        seen.add(tag.lower())
        texts[tag] = _text(f"{name}.{tag}", text)
    return texts


def provider_texts(body: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The ``(message, suggestion)`` of an issue request, as language → text (may be empty).

    Raises:
        HttpProblem: 422 INVALID_BODY for a wrong shape, a bad tag, an empty or
            over-long text, a control or invisible character, or a ``lang``
            with no plain-string text to apply to.
    """
    message, suggestion = body.get("message"), body.get("suggestion")
    raw_lang = body.get("lang")
    lang = None if raw_lang is None else _tag("lang", raw_lang)
    if lang is not None and not (isinstance(message, str) or isinstance(suggestion, str)):
        raise invalid_body("Member 'lang' applies only to a plain-string message or suggestion.")
    return (
        {} if message is None else _localized("message", message, lang),
        {} if suggestion is None else _localized("suggestion", suggestion, lang),
    )


def pick_text(texts: Mapping[str, str], lang: str) -> str | None:
    """The text to show a reader of ``lang``; None when there is none.

    Order: the exact tag (case-insensitive), then the same primary language
    (``zh`` or ``zh-Hans`` for ``zh-CN``), then the undetermined text, then
    English, then the first given: the provider's words in another language
    still say more than the generic catalogue text.
    """
    if not texts:
        return None
    wanted = lang.lower()
    primary = wanted.split("-", 1)[0]
    lowered = {tag.lower(): text for tag, text in texts.items()}
    if wanted in lowered:
        return lowered[wanted]
    for tag, text in lowered.items():
        if tag.split("-", 1)[0] == primary:
            return text
    if UNDETERMINED in lowered:
        return lowered[UNDETERMINED]
    english = [text for tag, text in lowered.items() if tag.split("-", 1)[0] == "en"]
    return english[0] if english else next(iter(texts.values()))
