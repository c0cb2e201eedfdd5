"""HTML pages: a tiny escaping template renderer, content negotiation, page headers.

Templates are ``server_stub/frontend/templates/*.html`` read with `string.Template`.
`render` HTML-escapes *every* value (quotes included) before substitution, so
text from a token, a payload or a catalogue can never become markup; the only
way to insert markup is a `Markup` value built by this module from escaped parts.

Pages carry a strict Content-Security-Policy: scripts and styles only from our
own origin (no inline script, no ``'unsafe-inline'``), no plugins, no ``<base>``
rewriting, forms only to ourselves, framing per ``frame_ancestors``.
"""

from __future__ import annotations

import functools
import html
import string
from collections.abc import Iterable, Mapping
from pathlib import Path

from starlette.responses import HTMLResponse

__all__ = [
    "Markup",
    "content_security_policy",
    "escape",
    "html_response",
    "page_headers",
    "prefers_html",
    "render",
]

_TEMPLATES = Path(__file__).parent / "templates"
_MAX_ACCEPT = 1024


class Markup(str):
    """A string that is already safe HTML (built only from escaped parts)."""

    __slots__ = ()


def escape(value: object) -> str:
    """HTML-escape ``value`` for text and quoted attributes (``Markup`` passes through)."""
    if isinstance(value, Markup):
        return value
    return html.escape(str(value), quote=True)


@functools.cache
def _template(name: str) -> string.Template:
    return string.Template((_TEMPLATES / name).read_text(encoding="utf-8"))


def render(name: str, values: Mapping[str, object]) -> str:
    """Fill the template ``name`` with ``values``, each HTML-escaped.

    Raises:
        KeyError: the template names a value that was not given (a programming error).
    """
    return _template(name).substitute({key: escape(value) for key, value in values.items()})


def content_security_policy(frame_ancestors: Iterable[str] = ()) -> str:
    """The pages' CSP; ``frame_ancestors`` empty means the page may not be framed."""
    ancestors = " ".join(frame_ancestors) or "'none'"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        f"frame-ancestors {ancestors}"
    )


def page_headers(frame_ancestors: Iterable[str] = ()) -> dict[str, str]:
    """Security headers of every HTML page we serve."""
    return {
        "Content-Security-Policy": content_security_policy(frame_ancestors),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cache-Control": "no-store",
        "Vary": "Accept, Accept-Language",
    }


def html_response(
    body: str, *, status_code: int = 200, frame_ancestors: Iterable[str] = ()
) -> HTMLResponse:
    """An HTML response with `page_headers`."""
    return HTMLResponse(body, status_code=status_code, headers=page_headers(frame_ancestors))


def _quality(accept: str, wanted: str) -> float:
    best, best_specificity = 0.0, -1
    major = wanted.split("/", 1)[0]
    for item in accept.split(","):
        media, _, params = item.strip().partition(";")
        media = media.strip().lower()
        if media == wanted:
            specificity = 2
        elif media == f"{major}/*":
            specificity = 1
        elif media == "*/*":
            specificity = 0
        else:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if specificity > best_specificity:
            best, best_specificity = quality, specificity
    return best


def prefers_html(accept: str | None) -> bool:
    """True when ``Accept`` ranks ``text/html`` above ``application/json``.

    JSON wins ties and missing or oversized headers: API clients often send
    ``*/*``, while browsers navigating to a page name ``text/html`` explicitly.
    """
    if not accept or len(accept) > _MAX_ACCEPT:
        return False
    return _quality(accept, "text/html") > _quality(accept, "application/json")
