"""Security headers and an allow-list CORS policy, as small pure-ASGI middlewares.

Both are reusable by any route group (the alert pages add their own CSP by setting
the header themselves: `SecurityHeaders` only fills in headers a response lacks).

CORS: only origins on the allow-list get ``Access-Control-Allow-Origin``; a preflight
from any other origin is answered 403 with our error payload and no CORS headers,
so the browser blocks the call. ``Authorization`` is never an allowed request header:
browsers cannot carry admin or app keys cross-origin.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errdiscount_sdk.wire import IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAYED_HEADER

from ._problems import error_response

__all__ = ["DEFAULT_SECURITY_HEADERS", "CorsPolicy", "SecurityHeaders", "frame_options"]

DEFAULT_SECURITY_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}


def frame_options(csp: str) -> str | None:
    """The ``X-Frame-Options`` that agrees with a CSP's ``frame-ancestors``; None: omit it.

    Browsers that know CSP ignore X-Frame-Options when ``frame-ancestors`` is present;
    older ones obey it. So the two must never disagree: ``'none'`` is DENY, ``'self'``
    alone is SAMEORIGIN, and an allow-list of other origins cannot be said in
    X-Frame-Options at all (ALLOW-FROM is obsolete), so the header is left out and
    the CSP decides. No ``frame-ancestors`` directive: DENY, our default.
    """
    for directive in csp.split(";"):
        name, _, value = directive.strip().partition(" ")
        if name.lower() != "frame-ancestors":
            continue
        sources = value.split()
        if sources in ([], ["'none'"]):
            return "DENY"
        if sources == ["'self'"]:
            return "SAMEORIGIN"
        return None
    return "DENY"


class SecurityHeaders:
    """Adds `DEFAULT_SECURITY_HEADERS` (or ``headers``) to responses lacking them.

    ``X-Frame-Options`` follows the response's own CSP when it has one (`frame_options`),
    so a page that allows framing is not denied it by the older header.
    """

    def __init__(self, app: ASGIApp, headers: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.headers = dict(DEFAULT_SECURITY_HEADERS if headers is None else headers)
        # Encoded once: a response only needs a set of the names it has, not a scan of
        # its headers per default (this ran on every response).
        self._encoded = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in self.headers.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower(): value for name, value in headers}
                own_csp = present.get(b"content-security-policy")
                for name, value in self._encoded:
                    if name in present:
                        continue
                    if name == b"x-frame-options" and own_csp is not None:
                        derived = frame_options(own_csp.decode("latin-1"))
                        if derived is not None:
                            headers.append((name, derived.encode("latin-1")))
                        continue
                    headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CorsPolicy:
    """Allow-list CORS for the paths starting with one of ``path_prefixes``.

    Args:
        origins: exact origins (``https://shop.example``); ``*`` allows any origin
            (responses then carry ``*``; credentials are never allowed).
        path_prefixes: where CORS applies (the public, front-end facing endpoints).
        methods, request_headers, expose_headers: what preflights may allow.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        origins: Iterable[str],
        path_prefixes: Iterable[str] = ("/",),
        methods: Iterable[str] = ("GET", "POST"),
        request_headers: Iterable[str] = (
            "Content-Type",
            IDEMPOTENCY_KEY_HEADER,
            "Accept-Language",
        ),
        expose_headers: Iterable[str] = ("Retry-After", IDEMPOTENT_REPLAYED_HEADER),
        max_age: int = 600,
    ) -> None:
        self.app = app
        self.origins = frozenset(origins)
        self.any_origin = "*" in self.origins
        self.prefixes = tuple(path_prefixes)
        self.methods = tuple(m.upper() for m in methods)
        self.request_headers = tuple(request_headers)
        self._allowed_headers = frozenset(h.lower() for h in self.request_headers)
        self.expose_headers = ", ".join(expose_headers)
        self.max_age = str(max_age)

    def allowed(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins

    def _allow_value(self, origin: str) -> str:
        return "*" if self.any_origin else origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        if preflight:
            await self._preflight(scope, receive, send, headers, origin)
            return
        if not self.allowed(origin):
            # The request runs (a browser blocks the response without our header);
            # non-browser clients are not subject to CORS anyway.
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["Access-Control-Allow-Origin"] = self._allow_value(origin)
                out["Access-Control-Expose-Headers"] = self.expose_headers
                out.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, origin: str
    ) -> None:
        method = headers["access-control-request-method"].upper()
        asked = [
            h.strip().lower()
            for h in headers.get("access-control-request-headers", "").split(",")
            if h.strip()
        ]
        if not self.allowed(origin):
            reason = "This origin is not allowed to call the API from a browser."
        elif method not in self.methods:
            reason = "This method is not allowed cross-origin."
        elif any(h not in self._allowed_headers for h in asked):
            reason = "A requested header is not allowed cross-origin."
        else:
            response_headers = {
                "Access-Control-Allow-Origin": self._allow_value(origin),
                "Access-Control-Allow-Methods": ", ".join(self.methods),
                "Access-Control-Allow-Headers": ", ".join(self.request_headers),
                "Access-Control-Max-Age": self.max_age,
                "Vary": "Origin",
            }
            await Response(status_code=204, headers=response_headers)(scope, receive, send)
            return
        denied = error_response(
            403,
            "CORS_ORIGIN_DENIED",
            reason,
            "Ask the operator to add your origin with --cors-origin.",
            {"Vary": "Origin"},
        )
        await denied(scope, receive, send)
