"""Reading a possibly gzip-compressed request body with caps before and after decompression.

The body as sent is capped while streaming (`_body`); a ``Content-Encoding: gzip`` body
is then inflated at most ``decoded_limit + 1`` bytes at a time, so a zip bomb costs
the server no more than the cap before it is refused with 413. Encodings other than
``gzip`` and ``identity`` are refused (415); a broken or truncated gzip stream, or
bytes after its end, is 400.
"""

from __future__ import annotations

import zlib

from starlette.requests import Request

from ._body import _read_capped
from ._problems import HttpProblem

__all__ = ["UnsupportedEncoding", "read_encoded"]

_GZIP_WBITS = 16 + zlib.MAX_WBITS


class UnsupportedEncoding(HttpProblem):
    """415: the Content-Encoding is neither gzip nor identity."""

    def __init__(self) -> None:
        super().__init__(
            415,
            "UNSUPPORTED_ENCODING",
            "The body's Content-Encoding is not supported.",
            "Send it uncompressed or with Content-Encoding: gzip.",
        )


def _encoding(request: Request) -> str:
    value = request.headers.get("content-encoding", "identity").strip().lower()
    if value not in ("gzip", "identity", ""):
        raise UnsupportedEncoding()
    return value or "identity"


def inflate(raw: bytes, decoded_limit: int) -> bytes:
    """Decompress one gzip member of at most ``decoded_limit`` bytes.

    Raises:
        HttpProblem: 413 BODY_TOO_LARGE past the cap, 400 INVALID_ENCODING if broken.
    """
    inflater = zlib.decompressobj(_GZIP_WBITS)
    try:
        data = inflater.decompress(raw, decoded_limit + 1)
    except zlib.error:
        raise _broken() from None
    if len(data) > decoded_limit:
        raise HttpProblem(
            413,
            "BODY_TOO_LARGE",
            f"The decompressed body is larger than {decoded_limit} bytes.",
            "Send smaller batches.",
        )
    if not inflater.eof or inflater.unused_data or inflater.unconsumed_tail:
        raise _broken()
    return data


def _broken() -> HttpProblem:
    return HttpProblem(
        400,
        "INVALID_ENCODING",
        "The gzip body is broken or truncated.",
        "Compress the whole body as one gzip stream.",
    )


async def read_encoded(request: Request, *, limit: int, decoded_limit: int) -> bytes:
    """The request body, decompressed if it is gzip; both sizes capped.

    Raises:
        HttpProblem: 413 BODY_TOO_LARGE, 415 UNSUPPORTED_ENCODING, 400 INVALID_ENCODING.
    """
    encoding = _encoding(request)
    raw = await _read_capped(request, limit)
    if encoding == "identity":
        if len(raw) > decoded_limit:
            raise HttpProblem(
                413,
                "BODY_TOO_LARGE",
                f"The request body is larger than {decoded_limit} bytes.",
                "Send smaller batches.",
            )
        return raw
    return inflate(raw, decoded_limit)
