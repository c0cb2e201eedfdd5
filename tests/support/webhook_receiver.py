"""A CRM stand-in: a webhook receiver on loopback that verifies with `standardwebhooks`.

It answers each delivery from a script of statuses (then 204 forever), verifies every
request with the official Standard Webhooks library (not our code) and records what
it got: the ``webhook-id`` of every request, and the verified payloads.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import attrs
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.server import serve


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@attrs.define
class Receiver:
    secret: str
    script: list[int] = attrs.field(factory=list)
    retry_after: str | None = None
    ids: list[str] = attrs.field(factory=list)
    verified: list[dict[str, Any]] = attrs.field(factory=list)
    refused: int = 0
    url: str = ""
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    arrived: threading.Condition = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    def types(self) -> list[str]:
        with self.lock:
            return [payload["type"] for payload in self.verified]

    def unique_ids(self) -> set[str]:
        with self.lock:
            return set(self.ids)

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Until ``count`` distinct event ids were verified (False on timeout)."""
        with self.arrived:
            return self.arrived.wait_for(
                lambda: len({p["_id"] for p in self.verified}) >= count, timeout
            )


def _app(receiver: Receiver) -> Starlette:
    hook = Webhook(receiver.secret)

    async def receive(request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        with receiver.lock:
            receiver.ids.append(headers.get("webhook-id", ""))
            status = receiver.script.pop(0) if receiver.script else 204
        if status >= 300:
            extra = {"Retry-After": receiver.retry_after} if receiver.retry_after else {}
            return Response(status_code=status, headers=extra)
        try:
            payload = hook.verify(body, headers)
        except WebhookVerificationError:
            with receiver.lock:
                receiver.refused += 1
            return Response(status_code=400)
        with receiver.arrived:
            receiver.verified.append({**payload, "_id": headers["webhook-id"]})
            receiver.arrived.notify_all()
        return Response(status_code=204)

    return Starlette(routes=[Route("/hooks", receive, methods=["POST"])])


@contextlib.contextmanager
def receiving(secret: str | None = None, **kwargs: Any) -> Iterator[Receiver]:
    receiver = Receiver(secret or new_secret(), **kwargs)
    with serve(_app(receiver)) as base:
        receiver.url = base + "/hooks"
        yield receiver
