"""Remote JWKS with a cache: `RemoteKeySet` (threads) and `AsyncRemoteKeySet` (asyncio).

Cache policy (the same for both):

- The parsed `KeySet` is kept for the response's ``Cache-Control: max-age``
  (minus ``Age``), bounded to [``min_ttl``, ``max_ttl``]; ``no-store`` or
  ``no-cache`` mean ``min_ttl``; no header means ``default_ttl``.
- An unknown ``kid`` triggers a refetch unless the last fetch (of any cause)
  started less than ``cooldown`` ago. So random kids cause at most one fetch
  per ``cooldown``, and a key published after the last fetch is found by the
  first lookup at or after ``last fetch + cooldown``: under steady traffic a new
  key is accepted within one ``cooldown`` of its first token, however long
  ``max-age`` is. (The only memory of a miss is the time of the last fetch: a
  per-kid negative cache re-armed on every miss would keep a busy kid refused
  for the whole ``max-age``.)
- A failed fetch (network, status other than 200, oversized or invalid JWKS,
  no usable keys) keeps the last good keys until ``stale_if_error`` seconds
  after they went stale, and is not retried before ``cooldown``.
- One fetch at a time (a lock; single-flight in asyncio). Redirects are never
  followed. Only https, or http to a loopback host with ``allow_http_loopback``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from .._model.errors import ConfigurationError, KeyLoadError, KeySetUnavailable, UnknownKey
from .keys import MAX_JWKS_BYTES, KeySet, VerificationKey

__all__ = ["AsyncRemoteKeySet", "RemoteKeySet"]

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_ACCEPT = {"Accept": "application/jwk-set+json, application/json"}


class _FetchFailed(Exception):
    """Internal: one fetch attempt failed; ``str`` is a short, secret-free reason."""


def _check_url(url: str, allow_http_loopback: bool) -> str:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise ConfigurationError("JWKS URL is not a valid URL") from None
    if parsed.scheme == "https" and parsed.host:
        return url
    if parsed.scheme == "http" and allow_http_loopback and parsed.host in _LOOPBACK:
        return url
    raise ConfigurationError(
        "JWKS URL must be https (http only to a loopback host with allow_http_loopback=True)"
    )


def cache_ttl(headers: httpx.Headers, *, default: float, minimum: float, maximum: float) -> float:
    """Seconds to keep a JWKS response, from Cache-Control/Age, bounded to [min, max]."""
    ttl = default
    directives = [d.strip().lower() for d in headers.get("cache-control", "").split(",")]
    if "no-store" in directives or "no-cache" in directives:
        return minimum
    for directive in directives:
        name, _, value = directive.partition("=")
        if name.strip() == "max-age" and value.strip().isdigit() and len(value.strip()) <= 12:
            ttl = float(value.strip())
            age = headers.get("age", "").strip()
            if age.isdigit() and len(age) <= 12:
                ttl -= float(age)
            break
    return min(max(ttl, minimum), maximum)


class _CacheCore:
    """The cache state machine; subclasses only add the I/O and the lock."""

    def __init__(
        self,
        url: str,
        *,
        min_ttl: float,
        max_ttl: float,
        default_ttl: float,
        cooldown: float,
        stale_if_error: float,
        max_bytes: int,
        timeout: float,
        allow_http_loopback: bool,
        clock: Callable[[], float] | None,
    ) -> None:
        if not 0 <= min_ttl <= default_ttl <= max_ttl:
            raise ConfigurationError("need 0 <= min_ttl <= default_ttl <= max_ttl")
        if cooldown < 0 or stale_if_error < 0 or timeout <= 0:
            raise ConfigurationError("cooldown and stale_if_error must be >= 0, timeout > 0")
        if not 0 < max_bytes <= 16 * MAX_JWKS_BYTES:
            raise ConfigurationError("max_bytes must be between 1 and 1 MiB")
        self.url = _check_url(url, allow_http_loopback)
        self.min_ttl, self.max_ttl, self.default_ttl = min_ttl, max_ttl, default_ttl
        self.cooldown = cooldown
        self.stale_if_error = stale_if_error
        self.max_bytes = min(max_bytes, MAX_JWKS_BYTES)
        self.timeout = timeout
        self._clock = clock or time.monotonic
        # (keys, fresh_until, stale_until) swapped as one tuple so readers need no lock.
        self._state: tuple[KeySet | None, float, float] = (None, float("-inf"), float("-inf"))
        self._last_fetch = float("-inf")
        self._last_error: str | None = None
        self.fetch_count = 0

    def cached_keys(self) -> KeySet | None:
        """The keys in the cache while still usable (fresh or within ``stale_if_error``).

        Never fetches and never blocks: for republishing what this cache trusts
        (the reference server lists its peers' keys this way).
        """
        keys, _, stale_until = self._state
        return keys if keys is not None and self._clock() < stale_until else None

    def _fast(self, kid: str, now: float) -> VerificationKey | None:
        keys, fresh_until, _ = self._state
        if keys is not None and now < fresh_until:
            return keys.get(kid)
        return None

    def _refresh_due(self, now: float) -> bool:
        keys, fresh_until, _ = self._state
        stale = keys is None or now >= fresh_until
        return stale and now - self._last_fetch >= self.cooldown

    def _may_force(self, now: float) -> bool:
        """A refetch for an unknown kid is allowed once ``cooldown`` has passed since the last."""
        return now - self._last_fetch >= self.cooldown

    def _begin_fetch(self, now: float) -> None:
        self._last_fetch = now
        self.fetch_count += 1

    def _on_success(self, keys: KeySet, ttl: float, now: float) -> None:
        self._state = (keys, now + ttl, now + ttl + self.stale_if_error)
        self._last_error = None

    def _on_failure(self, reason: str) -> None:
        self._last_error = reason

    def _resolve(self, kid: str, now: float, *, may_fetch: bool) -> VerificationKey | None:
        """The key, None if a forced refetch may find it, else a typed error."""
        keys, _, stale_until = self._state
        if keys is None or now >= stale_until:
            self._state = (None, float("-inf"), float("-inf"))
            reason = self._last_error or "no keys fetched yet"
            raise KeySetUnavailable(f"the JWKS could not be fetched ({reason})")
        key = keys.get(kid)
        if key is not None:
            return key
        if may_fetch and self._may_force(now):
            return None
        # No state changes on a miss: only a real fetch moves the cooldown.
        raise UnknownKey("no key in the JWKS has the token's kid")

    def _parse(self, status: int, headers: httpx.Headers, body: bytes) -> tuple[KeySet, float]:
        if status != 200:
            raise _FetchFailed(f"HTTP {status}")
        try:
            keys = KeySet.from_jwks(body)
        except KeyLoadError as exc:
            raise _FetchFailed(f"invalid JWKS: {exc}") from None
        if not len(keys):
            raise _FetchFailed("the JWKS has no usable signing keys")
        ttl = cache_ttl(
            headers, default=self.default_ttl, minimum=self.min_ttl, maximum=self.max_ttl
        )
        return keys, ttl

    def _check_length(self, headers: httpx.Headers) -> None:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise _FetchFailed(f"response larger than {self.max_bytes} bytes")

    def _add_chunk(self, body: bytearray, chunk: bytes) -> None:
        body += chunk
        if len(body) > self.max_bytes:
            raise _FetchFailed(f"response larger than {self.max_bytes} bytes")


class RemoteKeySet(_CacheCore):
    """A JWKS fetched with httpx and cached (see the module docstring). Thread-safe.

    Args:
        url: the JWKS URL (https).
        client: an `httpx.Client` to use (not closed by us); default: our own.
        min_ttl, max_ttl, default_ttl: cache lifetime bounds, seconds.
        cooldown: minimum seconds between a fetch and a refetch forced by an
            unknown kid or after a failure; also the longest a key published
            after the last fetch stays unknown under steady traffic.
        stale_if_error: how long after going stale last-good keys may still be
            used while fetches fail.
        max_bytes: response size cap (at most 64 KiB).
        timeout: per-fetch timeout, seconds.
        allow_http_loopback: allow ``http://127.0.0.1``-style URLs (tests).
        clock: the cache's monotonic clock in seconds (never used for token
            times); default `time.monotonic`; for tests.

    Raises:
        ConfigurationError: bad arguments or a URL that is not allowed.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None = None,
        min_ttl: float = 60.0,
        max_ttl: float = 86400.0,
        default_ttl: float = 300.0,
        cooldown: float = 30.0,
        stale_if_error: float = 3600.0,
        max_bytes: int = MAX_JWKS_BYTES,
        timeout: float = 5.0,
        allow_http_loopback: bool = False,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(
            url,
            min_ttl=min_ttl,
            max_ttl=max_ttl,
            default_ttl=default_ttl,
            cooldown=cooldown,
            stale_if_error=stale_if_error,
            max_bytes=max_bytes,
            timeout=timeout,
            allow_http_loopback=allow_http_loopback,
            clock=clock,
        )
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self._lock = threading.Lock()

    def get_key(self, kid: str) -> VerificationKey:
        """The trusted key for ``kid``, fetching the JWKS when the policy allows.

        Raises:
            UnknownKey: the JWKS has no such kid (after at most one refetch).
            KeySetUnavailable: no usable JWKS could be obtained.
        """
        key = self._fast(kid, self._clock())
        if key is not None:
            return key
        with self._lock:
            now = self._clock()
            if self._refresh_due(now):
                self._refresh(now)
            found = self._resolve(kid, now, may_fetch=True)
            if found is None:
                self._refresh(now)
                found = self._resolve(kid, now, may_fetch=False)
            assert found is not None
            return found

    def key_set(self) -> KeySet:
        """The current keys, fetching if none are fresh. Raises `KeySetUnavailable`."""
        with self._lock:
            now = self._clock()
            if self._refresh_due(now):
                self._refresh(now)
            keys, _, stale_until = self._state
            if keys is None or now >= stale_until:
                raise KeySetUnavailable(f"the JWKS could not be fetched ({self._last_error})")
            return keys

    def _refresh(self, now: float) -> None:
        self._begin_fetch(now)
        try:
            keys, ttl = self._fetch()
        except _FetchFailed as exc:
            self._on_failure(str(exc))
            return
        self._on_success(keys, ttl, now)

    def _fetch(self) -> tuple[KeySet, float]:
        body = bytearray()
        try:
            with self._client.stream(
                "GET", self.url, headers=_ACCEPT, follow_redirects=False, timeout=self.timeout
            ) as response:
                if response.status_code == 200:
                    self._check_length(response.headers)
                    for chunk in response.iter_bytes():
                        self._add_chunk(body, chunk)
                status, headers = response.status_code, response.headers
        except (httpx.HTTPError, httpx.StreamError, OSError) as exc:
            raise _FetchFailed(type(exc).__name__) from None
        return self._parse(status, headers, bytes(body))

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> RemoteKeySet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteKeySet({self.url!r})"


class AsyncRemoteKeySet(_CacheCore):
    """`RemoteKeySet` for asyncio: fetches with `httpx.AsyncClient`, single-flight.

    Same arguments as `RemoteKeySet` (``client`` is an `httpx.AsyncClient`).
    Concurrent lookups that need a fetch wait for the one fetch in progress.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        min_ttl: float = 60.0,
        max_ttl: float = 86400.0,
        default_ttl: float = 300.0,
        cooldown: float = 30.0,
        stale_if_error: float = 3600.0,
        max_bytes: int = MAX_JWKS_BYTES,
        timeout: float = 5.0,
        allow_http_loopback: bool = False,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(
            url,
            min_ttl=min_ttl,
            max_ttl=max_ttl,
            default_ttl=default_ttl,
            cooldown=cooldown,
            stale_if_error=stale_if_error,
            max_bytes=max_bytes,
            timeout=timeout,
            allow_http_loopback=allow_http_loopback,
            clock=clock,
        )
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._lock = asyncio.Lock()

    async def get_key(self, kid: str) -> VerificationKey:
        """See `RemoteKeySet.get_key`."""
        key = self._fast(kid, self._clock())
        if key is not None:
            return key
        async with self._lock:
            now = self._clock()
            if self._refresh_due(now):
                await self._refresh(now)
            found = self._resolve(kid, now, may_fetch=True)
            if found is None:
                await self._refresh(now)
                found = self._resolve(kid, now, may_fetch=False)
            assert found is not None
            return found

    async def _refresh(self, now: float) -> None:
        self._begin_fetch(now)
        try:
            keys, ttl = await self._fetch()
        except _FetchFailed as exc:
            self._on_failure(str(exc))
            return
        self._on_success(keys, ttl, now)

    async def _fetch(self) -> tuple[KeySet, float]:
        body = bytearray()
        try:
            async with self._client.stream(
                "GET", self.url, headers=_ACCEPT, follow_redirects=False, timeout=self.timeout
            ) as response:
                if response.status_code == 200:
                    self._check_length(response.headers)
                    async for chunk in response.aiter_bytes():
                        self._add_chunk(body, chunk)
                status, headers = response.status_code, response.headers
        except (httpx.HTTPError, httpx.StreamError, OSError) as exc:
            raise _FetchFailed(type(exc).__name__) from None
        return self._parse(status, headers, bytes(body))

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> AsyncRemoteKeySet:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncRemoteKeySet({self.url!r})"
