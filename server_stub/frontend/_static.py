"""``/static/*`` and ``/favicon.ico``: the widget's files, from an allow-list, with caching.

Only the files named in `STATIC_FILES` are served (no directory walking, so no
path tricks). They are read once; each response carries its exact type, a
strong ETag (``If-None-Match`` gets a 304), ``Cache-Control`` and ``nosniff``.
The widget is meant to be embedded by other origins: ``<script src>`` needs no
CORS, but ``import`` of the ES module does, so these public, credential-free
files carry ``Access-Control-Allow-Origin: *``. ``/favicon.ico`` is where browsers look
for the icon (every page also links it), so the console shows no 404.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import attrs
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["STATIC_FILES", "static_routes"]

_DIRECTORY = Path(__file__).parent / "static"
_JS = "text/javascript; charset=utf-8"

STATIC_FILES = {
    "errdiscount.js": _JS,
    "errdiscount.mjs": _JS,
    "errdiscount.css": "text/css; charset=utf-8",
    "demo.js": _JS,
    "favicon.ico": "image/x-icon",
    "dashboard.css": "text/css; charset=utf-8",
}
"""File name → Content-Type of everything served under /static."""

# Unversioned URLs: cache for a while, then revalidate cheaply with the ETag.
CACHE_CONTROL = "public, max-age=3600, must-revalidate"


@attrs.frozen
class _File:
    body: bytes
    media_type: str
    etag: str


@functools.cache
def _load(name: str) -> _File:
    body = (_DIRECTORY / name).read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return _File(body=body, media_type=STATIC_FILES[name], etag=etag)


def _headers(file: _File) -> dict[str, str]:
    return {
        "ETag": file.etag,
        "Cache-Control": CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }


async def _static(request: Request) -> Response:
    return _serve(request, request.path_params["name"])


async def _favicon(request: Request) -> Response:
    return _serve(request, "favicon.ico")


def _serve(request: Request, name: str) -> Response:
    if name not in STATIC_FILES:
        return Response(
            b'{"error_code":"NOT_FOUND","message":"No such file.","suggestion":"Check the URL."}',
            status_code=404,
            media_type="application/json",
            headers={"X-Content-Type-Options": "nosniff"},
        )
    file = _load(name)
    tags = request.headers.get("if-none-match", "")
    if file.etag in (tag.strip().removeprefix("W/") for tag in tags.split(",")):
        return Response(status_code=304, headers=_headers(file))
    return Response(file.body, media_type=file.media_type, headers=_headers(file))


def static_routes() -> list[Route]:
    """The ``GET /static/{name}`` and ``GET /favicon.ico`` routes."""
    return [
        Route("/static/{name}", _static, methods=["GET", "HEAD"], name="static"),
        Route("/favicon.ico", _favicon, methods=["GET", "HEAD"], name="favicon"),
    ]
