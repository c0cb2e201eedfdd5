"""Content and language negotiation for error answers (RFC 9110 §12.5.1 and §12.5.4).

Pure functions over header values. Both parse at most `MAX_HEADER_CHARS` characters
and `MAX_ITEMS` items: a hostile header costs a bounded amount of work, and anything
unparsable counts as absent (the answer falls back to JSON and the default language).
"""

from __future__ import annotations

from collections.abc import Iterable

from .._model.wire import PROBLEM_JSON

__all__ = ["MAX_HEADER_CHARS", "MAX_ITEMS", "choose_language", "prefers_problem_json"]

MAX_HEADER_CHARS = 4096
MAX_ITEMS = 32
_JSON = "application/json"


def _items(header: str | None) -> list[tuple[str, float, int]]:
    """``(value lower-cased, q, position)`` for each item; q=0 items kept (they refuse)."""
    if not header:
        return []
    items: list[tuple[str, float, int]] = []
    for position, raw in enumerate(header[:MAX_HEADER_CHARS].split(",")[:MAX_ITEMS]):
        value, *params = (part.strip() for part in raw.split(";"))
        if not value:
            continue
        q = 1.0
        for param in params:
            name, _, number = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(number.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        items.append((value.lower(), q, position))
    return items


def _media_rank(items: list[tuple[str, float, int]], media: str) -> tuple[float, int, int]:
    """(q, specificity, -position) of the most specific range matching ``media``."""
    kind = media.split("/")[0]
    best: tuple[float, int, int] = (0.0, -1, 0)
    for value, q, position in items:
        if value == media:
            specificity = 2
        elif value == f"{kind}/*":
            specificity = 1
        elif value == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best[1]:
            best = (q, specificity, -position)
    return best


def prefers_problem_json(accept: str | None) -> bool:
    """True when ``Accept`` ranks ``application/problem+json`` above ``application/json``.

    The more specific range decides each type's q (RFC 9110); on a tie in q, the type
    named explicitly wins, then the one listed first. No Accept, or ``*/*``: plain JSON.
    """
    items = _items(accept)
    problem_q, problem_spec, problem_pos = _media_rank(items, PROBLEM_JSON)
    json_q, json_spec, json_pos = _media_rank(items, _JSON)
    if problem_q <= 0 or problem_spec < 2:
        return False  # only an explicit request for problem+json selects it
    return (problem_q, problem_spec, problem_pos) > (json_q, json_spec, json_pos)


def choose_language(accept_language: str | None, available: Iterable[str], default: str) -> str:
    """The best of ``available`` language tags for ``Accept-Language``, else ``default``.

    Lookup by q order: an exact tag (case-insensitive), then a range that is a prefix
    of an available tag (``zh`` → ``zh-CN``), then an available tag that is a prefix of
    the range (``en-GB`` → ``en``); ``*`` or no match gives ``default``.
    """
    tags = list(dict.fromkeys(available))
    by_lower = {tag.lower(): tag for tag in tags}
    ranked = sorted(_items(accept_language), key=lambda item: (-item[1], item[2]))
    for value, q, _position in ranked:
        if q <= 0:
            continue
        if value == "*":
            return default
        if value in by_lower:
            return by_lower[value]
        for lower, tag in by_lower.items():
            if lower.startswith(value + "-"):
                return tag
        primary = value.split("-")[0]
        for lower, tag in by_lower.items():
            if value.startswith(lower + "-") or lower == primary:
                return tag
    return default
