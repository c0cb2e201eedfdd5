"""The webhook sink, per Standard Webhooks (https://www.standardwebhooks.com).

Each request is ``POST`` of the stored payload with three headers: ``webhook-id``
(the outbox id: receivers dedupe on it), ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` for every
secret of the endpoint, space-separated (during a rotation both old and new verify).

Policy: 2xx is delivered; 410 Gone disables the endpoint; anything else (3xx
included: redirects are not followed) is a failure, retried by the dispatcher, which
honours ``Retry-After``. 15 s timeout. SSRF guard: only ``https`` URLs, and every
address the name resolves to must be public (no private, loopback, link-local,
multicast or reserved address), checked after DNS resolution; the request then
connects to the very address checked (no second lookup an attacker could rebind),
with the original host name for SNI, certificate checking and ``Host``.
``allow_private`` (``--allow-private-webhooks``) lifts both rules, for tests and
private networks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import socket
import time
import urllib.parse
from collections.abc import Sequence

import httpx

from errdiscount_sdk import parse_retry_after
from errdiscount_sdk.wire import (
    WEBHOOK_ID_HEADER,
    WEBHOOK_SECRET_PREFIX,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
)

from ._base import Delivered, Failed, Gone, SinkOutcome

__all__ = ["WebhookSink", "WebhookUrlRefused", "check_webhook_url", "decode_secret", "sign"]

TIMEOUT_SECONDS = 15.0
MAX_URL = 2048
#: Standard Webhooks: secrets are 24 to 64 random bytes
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64
USER_AGENT = "errdiscount-webhooks/1"


class WebhookUrlRefused(ValueError):
    """The URL or an address it resolves to is not allowed (the message says why)."""


def decode_secret(secret: str) -> bytes:
    """The key bytes of a ``whsec_<base64>`` secret.

    Raises:
        ValueError: not ``whsec_`` + base64 of 24 to 64 bytes.
    """
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {WEBHOOK_SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret[len(WEBHOOK_SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is whsec_ followed by base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError("a webhook secret holds 24 to 64 bytes")
    return key


def sign(keys: Sequence[bytes], event_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one ``v1,<base64>`` per key, space-separated."""
    content = f"{event_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
        for key in keys
    )


def check_webhook_url(url: str, *, allow_private: bool) -> urllib.parse.SplitResult:
    """The parsed URL if its form is acceptable (addresses are checked when sending).

    Raises:
        WebhookUrlRefused: too long, not https (unless ``allow_private``), no host,
            credentials in it, or a literal address that is not public.
    """
    if len(url) > MAX_URL or any(not "!" <= ch <= "~" for ch in url):
        raise WebhookUrlRefused("a webhook URL is at most 2048 printable ASCII characters")
    parts = urllib.parse.urlsplit(url)
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise WebhookUrlRefused("a webhook URL must use https")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise WebhookUrlRefused("a webhook URL needs a host and no credentials")
    try:
        parts.port  # noqa: B018 -- raises on a bad port
    except ValueError:
        raise WebhookUrlRefused("a webhook URL has an invalid port") from None
    if not allow_private:
        try:
            literal = ipaddress.ip_address(parts.hostname)
        except ValueError:
            literal = None
        if literal is not None and not _public(literal):
            raise WebhookUrlRefused("a webhook URL must not name a private address")
    return parts


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


class WebhookSink:
    """One endpoint: its URL, its secrets (several during a rotation), its event filter."""

    def __init__(
        self,
        sink_id: str,
        url: str,
        secrets: Sequence[str],
        *,
        event_types: Sequence[str] = (),
        allow_private: bool = False,
        client: httpx.AsyncClient | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self._id = sink_id
        self.url = url
        self._parts = check_webhook_url(url, allow_private=allow_private)
        self._keys = tuple(decode_secret(secret) for secret in secrets)
        if not self._keys:
            raise ValueError("a webhook endpoint needs at least one secret")
        self._types = frozenset(event_types)
        self._allow_private = allow_private
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False
        )

    @property
    def id(self) -> str:
        return self._id

    def accepts(self, event_type: str) -> bool:
        return not self._types or event_type in self._types

    async def _target(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """The URL to connect to (the checked address), extra headers, request extensions."""
        host = self._parts.hostname
        assert host is not None
        if self._allow_private:
            return self.url, {}, {}
        port = self._parts.port or 443
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError:
            raise WebhookUrlRefused(f"cannot resolve {host}") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        if not addresses or not all(_public(address) for address in addresses):
            raise WebhookUrlRefused(f"{host} resolves to a private address")
        chosen = addresses[0]
        shown = f"[{chosen}]" if chosen.version == 6 else str(chosen)
        netloc = f"{shown}:{port}"
        url = urllib.parse.urlunsplit(
            ("https", netloc, self._parts.path or "/", self._parts.query, "")
        )
        host_header = host if self._parts.port in (None, 443) else f"{host}:{port}"
        return url, {"Host": host_header}, {"sni_hostname": host}

    async def deliver(self, event_id: str, event_type: str, body: bytes) -> SinkOutcome:
        timestamp = int(time.time())
        headers = {
            WEBHOOK_ID_HEADER: event_id,
            WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
            WEBHOOK_SIGNATURE_HEADER: sign(self._keys, event_id, timestamp, body),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            url, extra, extensions = await self._target()
            response = await self._client.post(
                url, content=body, headers={**headers, **extra}, extensions=extensions
            )
        except WebhookUrlRefused as exc:
            return Failed(f"refused: {exc}")
        except httpx.TimeoutException:
            return Failed("timeout")
        except httpx.HTTPError as exc:
            return Failed(f"network: {type(exc).__name__}")
        status = response.status_code
        if 200 <= status < 300:
            return Delivered()
        if status == 410:
            return Gone("HTTP 410 Gone")
        return Failed(f"HTTP {status}", parse_retry_after(response.headers.get("retry-after")))

    async def close(self) -> None:
        if self._own_client:
            await self._client.aclose()
