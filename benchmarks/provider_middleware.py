"""Cost of the provider middleware per request, in-process (no network in the way).

Run: ``python benchmarks/provider_middleware.py`` (about 20 seconds).

The same Starlette app is called directly through the ASGI interface (a minimal fake
server: one scope, one receive, a discarding send), bare and wrapped in
`ErrDiscountMiddleware` with a recording sink and a ``user_id`` callable. Rounds
alternate which goes first; the ratio of the median batch times is reported with the
spread (min-max of per-round ratios). Also: the error path (a `ProviderError` answered
with a locally signed EdDSA voucher) against the same app answering the same status
with a hand-written JSONResponse. Absolute times are machine-dependent; the ratios are
what to compare.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from errdiscount_sdk import ProviderError, TokenIssuer, generate_signing_key  # noqa: E402
from errdiscount_sdk.asgi import ErrDiscountMiddleware  # noqa: E402

ROUNDS = 41
BATCH = 300
PAY = ProviderError("PAY_001", "Insufficient balance.", status=402)


class Sink:
    def __init__(self) -> None:
        self.count = 0

    def record(self, event: Any) -> None:
        self.count += 1


def app(*, raise_error: bool, **middleware: Any) -> Starlette:
    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def fail(request: Request) -> JSONResponse:
        if raise_error:
            raise PAY
        return JSONResponse(
            {"error_code": "PAY_001", "message": "Insufficient balance."}, status_code=402
        )

    built = Starlette(routes=[Route("/ok/{id:int}", ok), Route("/fail/{id:int}", fail)])
    if middleware:
        # add_middleware puts it inside Starlette's error middleware, where it must be.
        built.add_middleware(ErrDiscountMiddleware, **middleware)
    return built


def scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"page=2&token=abc",
        "headers": [(b"host", b"bench"), (b"x-user-id", b"alice")],
        "server": ("bench", 80),
        "client": ("127.0.0.1", 1),
    }


async def batch(target: Any, path: str) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        pass

    start = time.perf_counter()
    for _ in range(BATCH):
        await target(scope(path), receive, send)
    return time.perf_counter() - start


def user(scope: Any) -> str | None:
    return dict(scope["headers"]).get(b"x-user-id", b"").decode() or None


async def compare(name: str, bare: Any, wrapped: Any, path: str) -> None:
    bare_times, wrapped_times, ratios = [], [], []
    for round_ in range(ROUNDS):
        if round_ % 2:
            w, b = await batch(wrapped, path), await batch(bare, path)
        else:
            b, w = await batch(bare, path), await batch(wrapped, path)
        bare_times.append(b)
        wrapped_times.append(w)
        ratios.append(w / b)
    ratio = statistics.median(wrapped_times) / statistics.median(bare_times)
    per_call = (statistics.median(wrapped_times) - statistics.median(bare_times)) / BATCH
    print(
        f"{name}: bare {statistics.median(bare_times) / BATCH * 1e6:.1f} us/req, "
        f"with middleware {statistics.median(wrapped_times) / BATCH * 1e6:.1f} us/req, "
        f"ratio {ratio:.3f} (per-round {min(ratios):.3f}-{max(ratios):.3f}), "
        f"+{per_call * 1e6:.1f} us/req"
    )


async def main() -> None:
    issuer = TokenIssuer(generate_signing_key(), issuer="https://api.example", audience="ed")
    ok_bare = app(raise_error=False)
    ok_wrapped = app(raise_error=False, reporter=Sink(), user_id=user)
    await compare("success", ok_bare, ok_wrapped, "/ok/1")
    fail_wrapped = app(raise_error=True, reporter=Sink(), user_id=user, issuer=issuer)
    await compare("error + EdDSA voucher", app(raise_error=False), fail_wrapped, "/fail/1")


if __name__ == "__main__":
    asyncio.run(main())
