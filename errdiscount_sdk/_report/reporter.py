"""`ErrorReporter`: records call outcomes in the app and sends them to the server in batches.

Policy (docs/client.md, "Reporter"; the wire contract is docs/events.md):
- Never blocks or slows the caller, never raises into it: `record` redacts,
  builds the event and hands it over with ``put_nowait``; everything else
  (``before_send``, encoding, gzip, HTTP, retries) runs in ONE background
  daemon thread, started on the first record. Whatever goes wrong is logged
  at DEBUG (never the app key) and counted as a loss.
- Successes are aggregated in the caller (a dict increment under a lock) per
  minute, user, endpoint, status and attempts into one event with ``count``;
  they carry no ``params``. Failures are sent one event each.
- Batches: up to ``batch_size`` events (and 512 KiB) or every
  ``flush_interval`` seconds; ``POST {url}/v1/events`` with ``Authorization:
  Bearer <app_key>``, gzip above 1 KiB, ``timeout`` per request.
- Retries: ``retries`` more tries on 408/429/5xx/network errors, waiting
  ``min(backoff·2^n, max_backoff)·U(0.8, 1.2)``, at least a capped Retry-After.
  A 429 pauses ALL sending for its Retry-After (60 s without one, 300 s at most).
- Losses are counted by reason (``queue_overflow``: the queue was full and the
  NEWEST event was dropped; ``network_error``: no response after the retries;
  ``ratelimited``: still 429 after the retries; ``send_error``: an error status,
  an invalid event or a failing ``before_send``) and travel with the next batch
  as its ``"dropped"`` member; a batch that fails gives them back.
- Fork-safe: every entry point compares ``os.getpid()`` with the pid that
  built the state; a forked child gets a fresh queue, lock and thread and
  does not resend its parent's events.
- `flush` sends everything recorded before it (including the current
  minute's successes) within its timeout; `close` flushes for at most its
  timeout (2 s) and stops the thread; an ``atexit`` hook closes with 2 s.
"""

from __future__ import annotations

import atexit
import contextlib
import gzip
import json
import logging
import os
import platform as platform_module
import queue
import random
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import attrs
import httpx

from .._model.errors import ApiError, ConfigurationError, InvalidEvent
from .._model.retry_after import parse_retry_after
from .._model.wire import (
    BATCH_DROPPED,
    BATCH_EVENTS,
    BATCH_SCHEMA_VERSION,
    EVENTS_PATH,
    MAX_EVENTS_PER_BATCH,
)
from .._model.wire import MAX_BATCH_BYTES as SERVER_MAX_BATCH_BYTES
from .calls import template_path
from .event import (
    EVENT_SCHEMA_VERSION,
    LOSS_REASONS,
    SDK_VERSION,
    CallEvent,
    Event,
    OutcomeEvent,
    format_ts,
    normalize_endpoint,
    parse_event,
)
from .redaction import Redactor

__all__ = ["ErrorReporter", "detected_os_type"]

logger = logging.getLogger("errdiscount_sdk.report")

GZIP_ABOVE: Final = 1024
MAX_BATCH_BYTES: Final = SERVER_MAX_BATCH_BYTES // 2
"""A batch's body before gzip: half the server's cap, so one oversized event past the
limit (a batch always takes at least one) still fits."""
DEFAULT_PAUSE: Final = 60.0
MAX_PAUSE: Final = 300.0
RETRY_STATUSES: Final = frozenset({408, 429})
SHUTDOWN_TIMEOUT: Final = 2.0
ENDPOINT_CACHE_SIZE: Final = 4096

_UNSET: Final[Any] = object()
UserId = str | Callable[[], str | None] | None
BeforeSend = Callable[[Event], "Event | Mapping[str, Any] | None"]


def detected_os_type() -> str:
    """This machine's OpenTelemetry ``os.type`` value (``linux``, ``darwin``, ``windows``, ...)."""
    name = sys.platform
    if name.startswith("linux"):
        return "linux"
    if name.startswith("win") or name == "cygwin":
        return "windows"
    if name.startswith("freebsd"):
        return "freebsd"
    return name


class _Flush:
    """A flush request travelling through the queue behind the events it covers."""

    __slots__ = ("deadline", "done", "ok")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.done = threading.Event()
        self.ok = False


_STOP: Final = object()


class _State:
    """Everything that must be rebuilt in a forked child (locks, queue, thread)."""

    def __init__(self, max_queue: int) -> None:
        self.pid = os.getpid()
        self.queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self.lock = threading.Lock()
        self.buckets: dict[tuple[Any, ...], list[float]] = {}
        self.dropped: dict[str, int] = {}
        self.thread: threading.Thread | None = None
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.paused_until = 0.0
        self.lost_total = 0  # events lost since start (what flush compares)
        self.lost_seen = 0  # lost_total at the end of the last flush

    def count_loss(self, reason: str, number: int = 1) -> None:
        if number <= 0:
            return
        with self.lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + number
            self.lost_total += number

    def flush_result(self, pending: list[Event]) -> bool:
        # True: nothing left behind and nothing lost since the previous flush.
        with self.lock:
            ok = not pending and self.lost_total == self.lost_seen
            self.lost_seen = self.lost_total
        return ok

    def take_dropped(self) -> dict[str, int]:
        with self.lock:
            taken, self.dropped = self.dropped, {}
        return taken

    def give_back(self, dropped: Mapping[str, int]) -> None:
        with self.lock:
            for reason, number in dropped.items():
                self.dropped[reason] = self.dropped.get(reason, 0) + number


@attrs.frozen
class _Settings:
    url: str
    sample_successes: float
    batch_size: int
    flush_interval: float
    timeout: float
    retries: int
    backoff: float
    max_backoff: float
    max_queue: int


class ErrorReporter:
    """Collects the final outcome of API calls and sends them to an errdiscount server.

    Args:
        url: the server's base URL (``https://errdiscount.example.com``); events
            go to ``{url}/v1/events``.
        app_key: the app key, sent as ``Authorization: Bearer``; never logged.
        user_id: the user of every call: a string, a callable returning one
            (called in the caller's thread and context, so a contextvar works),
            or None.
        platform: OpenTelemetry ``os.type`` style (``ios``, ``android``,
            ``linux``); None: this machine's (`detected_os_type`).
        os_version: None: this machine's ``platform.release()``.
        app_version: your app's version, or None.
        sample_successes: the share of successes counted (0..1); an aggregated
            event then carries ``extensions["errdiscount.sample_rate"]``.
        before_send: ``before_send(event) -> event | None``, run in the sender
            thread on every event about to be batched: return it (or an edited
            copy, e.g. ``attrs.evolve``), or None to drop it. One that raises
            drops the event (counted as ``send_error``).
        redactor: the `Redactor` applied to ``params`` in `record` (default: ``Redactor()``).
        endpoint_template: ``path -> route template`` when a call gives no
            ``endpoint=`` (default: `template_path`).
        max_queue: events waiting to be sent; beyond it the newest is dropped.
        batch_size: events per request (1 to `MAX_EVENTS_PER_BATCH`, the server's cap).
        flush_interval: seconds between sends of a partial batch.
        timeout: seconds per HTTP request.
        retries: extra tries of a failed request (0..10).
        backoff, max_backoff: the retry waits, seconds.
        transport: an httpx transport for the sender (tests, proxies).

    Raises:
        ConfigurationError: an invalid URL, app key or setting.
    """

    def __init__(
        self,
        url: str,
        *,
        app_key: str,
        user_id: UserId = None,
        platform: str | None = None,
        os_version: str | None = None,
        app_version: str | None = None,
        sample_successes: float = 1.0,
        before_send: BeforeSend | None = None,
        redactor: Redactor | None = None,
        endpoint_template: Callable[[str], str] = template_path,
        max_queue: int = 1000,
        batch_size: int = 100,
        flush_interval: float = 5.0,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._settings = _Settings(
            url=_events_url(url),
            sample_successes=_share(sample_successes),
            batch_size=_int_in("batch_size", batch_size, 1, MAX_EVENTS_PER_BATCH),
            flush_interval=_positive("flush_interval", flush_interval),
            timeout=_positive("timeout", timeout),
            retries=_int_in("retries", retries, 0, 10),
            backoff=_non_negative("backoff", backoff),
            max_backoff=_non_negative("max_backoff", max_backoff),
            max_queue=_int_in("max_queue", max_queue, 1, 1_000_000),
        )
        key: object = app_key
        if not isinstance(key, str) or not key or not key.isprintable():
            raise ConfigurationError("app_key must be a non-empty printable string")
        if user_id is not None and not isinstance(user_id, str) and not callable(user_id):
            raise ConfigurationError("user_id must be a string, a callable or None")
        if before_send is not None and not callable(before_send):
            raise ConfigurationError("before_send must be callable")
        if not callable(endpoint_template):
            raise ConfigurationError("endpoint_template must be callable")
        if redactor is not None and not isinstance(redactor, Redactor):
            raise ConfigurationError("redactor must be a Redactor")
        self._headers = {
            "Authorization": f"Bearer {app_key}",
            "Content-Type": "application/json",
            "User-Agent": f"errdiscount-sdk/{SDK_VERSION}",
        }
        self._user_id = user_id
        self._platform = platform if platform is not None else detected_os_type()
        self._os_version = os_version if os_version is not None else platform_module.release()
        self._app_version = app_version
        self._before_send = before_send
        self._redactor = redactor if redactor is not None else Redactor()
        self._endpoint_template = endpoint_template
        self._transport = transport
        self._closed = False
        self._state = _State(self._settings.max_queue)
        self._endpoints: dict[tuple[str, str | None, str | None], str] = {}

    # -- recording (caller's thread; never raises, never blocks) -----------------------

    def record(self, event: Event | Mapping[str, Any]) -> None:
        """Queue one event (a `CallEvent`, `OutcomeEvent` or a raw mapping), redacted.

        Successes (``outcome: "ok"``) are aggregated per minute into ``count``.
        """
        if self._closed:
            return
        state = self._current_state()
        try:
            if isinstance(event, Mapping):
                raw = dict(event)
                if isinstance(raw.get("params"), Mapping):
                    raw["params"] = self._redactor.params(raw["params"])
                parsed = parse_event(raw)
            elif isinstance(event, CallEvent):
                parsed = attrs.evolve(event, params=self._redactor.params(event.params))
            elif isinstance(event, OutcomeEvent):
                parsed = event
            else:
                raise InvalidEvent("type:event")
        except (InvalidEvent, ValueError, TypeError, RecursionError) as exc:
            logger.debug("event not recorded: %s", exc)
            state.count_loss("send_error")
            return
        if isinstance(parsed, CallEvent) and parsed.outcome == "ok":
            rate = self._settings.sample_successes
            if rate < 1.0 and random.random() >= rate:
                return
            self._aggregate(state, parsed)
        else:
            self._enqueue(state, parsed)

    def record_call(
        self,
        *,
        method: str,
        path: str | None = None,
        endpoint: str | None = None,
        outcome: str | None = None,
        status: int | None = None,
        error: ApiError | None = None,
        error_code: str | None = None,
        category: str | None = None,
        severity: str | None = None,
        transient: bool | None = None,
        attempts: int | None = None,
        duration_ms: float = 0.0,
        params: Mapping[Any, Any] | Callable[[], Mapping[Any, Any]] | None = None,
        user_id: str | None = _UNSET,
        source: str = "client",
        segment: str | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        """Record one finished call (after its retries). What the clients and middleware call.

        Args:
            method: the HTTP method.
            path: the raw path, turned into a template by ``endpoint_template``
                when ``endpoint`` is not given.
            endpoint: the route template (``"/api/pay/{id}"`` or ``"POST /api/pay/{id}"``).
            outcome: ``"ok"``/``"error"``; default: error when ``error`` is
                given or ``status >= 400``.
            status, error_code, category, severity, transient, attempts: from
                ``error`` (an `ApiError`) when given, else as passed.
            duration_ms: the whole call, retries included.
            params: raw parameters (or a callable returning them, called only
                for failures: successes carry no params); redacted here.
            user_id: overrides the reporter's ``user_id`` for this call.
            source: ``"client"`` or ``"provider"``.
            segment: the user's segment, if known.
            extensions: extra members (OpenTelemetry names welcome).
        """
        if self._closed:
            return
        state = self._current_state()
        if outcome == "ok" or (
            outcome is None and error is None and (status is None or status < 400)
        ):
            # The hot path (most calls succeed): a counter increment, no event object;
            # the aggregated event is built and validated in the sender thread.
            try:
                self._count_success(
                    state,
                    method,
                    path,
                    endpoint,
                    status,
                    attempts,
                    duration_ms,
                    user_id,
                    source,
                    segment,
                )
            except Exception as exc:  # the caller's code path must never see our failure
                logger.debug("call not recorded: %s", exc)
                state.count_loss("send_error")
            return
        try:
            event = self._call_event(
                method=method,
                path=path,
                endpoint=endpoint,
                outcome=outcome,
                status=status,
                error=error,
                error_code=error_code,
                category=category,
                severity=severity,
                transient=transient,
                attempts=attempts,
                duration_ms=duration_ms,
                params=params,
                user_id=user_id,
                source=source,
                segment=segment,
                extensions=extensions,
            )
        except Exception as exc:  # the caller's code path must never see our failure
            logger.debug("call not recorded: %s", exc)
            state.count_loss("send_error")
            return
        self._enqueue(state, event)

    def record_outcome(
        self,
        name: str,
        value: bool | int | float | str | None = None,
        *,
        user_id: str | None = _UNSET,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a business outcome of the user (``purchase``, ``churn``) as an `OutcomeEvent`."""
        if self._closed:
            return
        state = self._current_state()
        try:
            event = OutcomeEvent(
                name=name,
                value=value,
                user_id=self._resolve_user(user_id),
                extensions=extensions or {},
            )
        except (InvalidEvent, ValueError, TypeError) as exc:
            logger.debug("outcome not recorded: %s", exc)
            state.count_loss("send_error")
            return
        self._enqueue(state, event)

    def _call_event(
        self,
        *,
        method: str,
        path: str | None,
        endpoint: str | None,
        outcome: str | None,
        status: int | None,
        error: ApiError | None,
        error_code: str | None,
        category: str | None,
        severity: str | None,
        transient: bool | None,
        attempts: int | None,
        duration_ms: float,
        params: Mapping[Any, Any] | Callable[[], Mapping[Any, Any]] | None,
        user_id: str | None,
        source: str,
        segment: str | None,
        extensions: Mapping[str, Any] | None,
    ) -> CallEvent:
        verb = method.upper()
        if error is not None:
            status = error.status_code if status is None else status
            error_code = error.error_code if error_code is None else error_code
            category = error.category.value if category is None else category
            severity = error.severity.value if severity is None else severity
            transient = error.transient if transient is None else transient
            attempts = error.attempts if attempts is None else attempts
            extensions = {"error.type": error.error_type, **(extensions or {})}
        if outcome is None:
            outcome = "error"
        redacted: Mapping[str, Any] = {}
        if params is not None:
            raw = params() if callable(params) else params
            redacted = self._redactor.params(raw)
        return CallEvent(
            outcome=outcome,  # type: ignore[arg-type]  # validated by CallEvent
            method=verb,
            endpoint=self._endpoint_for(verb, path, endpoint),
            user_id=self._resolve_user(user_id),
            status=status,
            error_code=error_code,
            category=category,
            severity=severity,
            transient=transient,
            attempts=1 if attempts is None else attempts,
            duration_ms=round(float(duration_ms), 3),
            platform=self._platform or None,
            os_version=self._os_version or None,
            app_version=self._app_version,
            source=source,  # type: ignore[arg-type]
            params=redacted,
            segment=segment,
            extensions=extensions or {},
        )

    def _resolve_user(self, override: str | None) -> str | None:
        if override is not _UNSET:
            return override
        user = self._user_id
        if callable(user):
            try:
                return user()
            except Exception as exc:  # the app's callable: never let it break the call
                logger.debug("user_id callable raised: %s", type(exc).__name__)
                return None
        return user

    def _endpoint_for(self, method: str, path: str | None, endpoint: str | None) -> str:
        """``METHOD <template>``, memoised: templating a path costs more than the rest."""
        cache_key = (method, path, endpoint)
        cached = self._endpoints.get(cache_key)
        if cached is None:
            verb = method.upper()
            if endpoint is None:
                route = self._endpoint_template(path or "/")
            else:
                prefix = verb + " "
                route = endpoint[len(prefix) :] if endpoint.startswith(prefix) else endpoint
            cached = normalize_endpoint(verb, route)
            if len(self._endpoints) >= ENDPOINT_CACHE_SIZE:
                self._endpoints.clear()  # raw paths with ids churn it: start over, stay bounded
            self._endpoints[cache_key] = cached
        return cached

    def _count_success(
        self,
        state: _State,
        method: str,
        path: str | None,
        endpoint: str | None,
        status: int | None,
        attempts: int | None,
        duration_ms: float,
        user_id: str | None,
        source: str,
        segment: str | None,
    ) -> None:
        rate = self._settings.sample_successes
        if rate < 1.0 and random.random() >= rate:
            return
        text = self._endpoint_for(method, path, endpoint)
        key = (
            int(time.time() // 60),
            self._resolve_user(user_id),
            text,
            text.partition(" ")[0],
            status,
            1 if attempts is None else attempts,
            source,
            self._platform or None,
            self._os_version or None,
            self._app_version,
            SDK_VERSION,
            segment,
        )
        self._add_success(state, key, 1, float(duration_ms))

    def _aggregate(self, state: _State, event: CallEvent) -> None:
        key = (
            int(time.time() // 60),
            event.user_id,
            event.endpoint,
            event.method,
            event.status,
            event.attempts,
            event.source,
            event.platform,
            event.os_version,
            event.app_version,
            event.sdk_version,
            event.segment,
        )
        self._add_success(state, key, event.calls, event.duration_ms)

    def _add_success(
        self, state: _State, key: tuple[Any, ...], calls: int, duration_ms: float
    ) -> None:
        with state.lock:
            bucket = state.buckets.get(key)
            if bucket is None:
                state.buckets[key] = [calls, duration_ms * calls]
            else:
                bucket[0] += calls
                bucket[1] += duration_ms * calls
            thread = self._new_thread(state)
        if thread is not None:
            self._start(thread)

    def _enqueue(self, state: _State, event: Event) -> None:
        try:
            state.queue.put_nowait(event)
        except queue.Full:
            state.count_loss("queue_overflow")
            return
        self._ensure_thread(state)

    def _current_state(self) -> _State:
        state = self._state
        if state.pid != os.getpid():
            # A forked child: the parent's lock may be held and its thread is
            # gone. Start afresh; the parent sends what it had queued.
            state = self._state = _State(self._settings.max_queue)
        return state

    def _ensure_thread(self, state: _State) -> None:
        with state.lock:
            thread = self._new_thread(state)
        if thread is not None:
            self._start(thread)

    def _new_thread(self, state: _State) -> threading.Thread | None:
        """The sender to start, when there is none yet (call with ``state.lock`` held)."""
        if state.thread is not None:
            return None
        thread = threading.Thread(
            target=self._run, args=(state,), name="errdiscount-reporter", daemon=True
        )
        state.thread = thread
        return thread

    def _start(self, thread: threading.Thread) -> None:
        thread.start()
        atexit.register(self._at_exit)

    # -- flush and close ----------------------------------------------------------------

    @property
    def pending_losses(self) -> dict[str, int]:
        """Loss counters (reason → events) not yet delivered to the server."""
        state = self._current_state()
        with state.lock:
            return dict(state.dropped)

    def flush(self, timeout: float = SHUTDOWN_TIMEOUT) -> bool:
        """Send everything recorded so far, loss counters included.

        Returns True when every event recorded before the call was accepted in
        time and none was lost (dropped, refused) since the previous flush.
        Blocks for at most ``timeout`` seconds (from asyncio, run it in a
        thread: ``await asyncio.to_thread(reporter.flush)``). Unsent events
        stay queued.
        """
        state = self._current_state()
        if state.thread is None or not state.thread.is_alive():
            return state.thread is None and not state.buckets and state.queue.empty()
        started = time.monotonic()
        marker = _Flush(started + max(0.0, timeout))
        # Wake first: a retry wait in progress gives way, then the marker is read.
        state.wake.set()
        try:
            state.queue.put(marker, timeout=max(0.0, timeout))
        except queue.Full:
            return False
        remaining = marker.deadline - time.monotonic()
        # A little slack so the worker can report an answer that arrived at the deadline.
        return marker.done.wait(max(0.0, remaining) + 0.05) and marker.ok

    def close(self, timeout: float = SHUTDOWN_TIMEOUT) -> bool:
        """Flush for at most ``timeout`` seconds, then stop the sender; True if all was sent.

        Later records are ignored. Safe to call twice.
        """
        if self._closed:
            return True
        started = time.monotonic()
        # Leave room for the flush's slack and the join: close() itself keeps to ``timeout``.
        ok = self.flush(max(0.0, timeout - 0.1))
        self._closed = True
        state = self._current_state()
        state.stopping.set()
        state.wake.set()
        with contextlib.suppress(queue.Full):  # the worker also checks `stopping`
            state.queue.put_nowait(_STOP)
        if state.thread is not None:
            # A sender stuck in a request to a black-holed server is a daemon
            # thread: it ends with its request's timeout or with the process.
            state.thread.join(max(0.0, timeout - 0.02 - (time.monotonic() - started)))
        atexit.unregister(self._at_exit)
        return ok

    def _at_exit(self) -> None:
        try:
            self.close(SHUTDOWN_TIMEOUT)
        except Exception as exc:  # interpreter shutdown: nothing may escape
            logger.debug("close at exit failed: %s", type(exc).__name__)

    def __enter__(self) -> ErrorReporter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        # Never the app key.
        return f"ErrorReporter(url={self._settings.url!r})"

    # -- the sender thread ----------------------------------------------------------------

    def _run(self, state: _State) -> None:
        settings = self._settings
        pending: list[Event] = []
        next_tick = time.monotonic() + settings.flush_interval
        with httpx.Client(timeout=settings.timeout, transport=self._transport) as http:
            while not state.stopping.is_set():
                try:
                    item = state.queue.get(timeout=max(0.0, next_tick - time.monotonic()))
                except queue.Empty:
                    item = None
                if item is _STOP:
                    break
                if item is None:
                    pending.extend(self._admit(state, self._take_buckets(state, everything=False)))
                    pending = self._send(state, http, pending, deadline=None)
                    next_tick = time.monotonic() + settings.flush_interval
                elif isinstance(item, _Flush):
                    state.wake.clear()
                    drained, markers = self._drain(state)
                    pending.extend(self._admit(state, drained))
                    pending.extend(self._admit(state, self._take_buckets(state, everything=True)))
                    pending = self._send(state, http, pending, deadline=item.deadline)
                    ok = state.flush_result(pending)
                    for marker in (item, *markers):
                        marker.ok = ok
                        marker.done.set()
                else:
                    assert isinstance(item, CallEvent | OutcomeEvent)
                    pending.extend(self._admit(state, [item]))
                    if len(pending) >= settings.batch_size:
                        pending = self._send(state, http, pending, deadline=None)

    def _drain(self, state: _State) -> tuple[list[Event], list[_Flush]]:
        events: list[Event] = []
        markers: list[_Flush] = []  # later flushes: the one in progress covers them
        while True:
            try:
                item = state.queue.get_nowait()
            except queue.Empty:
                return events, markers
            if isinstance(item, CallEvent | OutcomeEvent):
                events.append(item)
            elif isinstance(item, _Flush):
                markers.append(item)
            elif item is _STOP:
                state.stopping.set()

    def _take_buckets(self, state: _State, *, everything: bool) -> list[Event]:
        current = int(time.time() // 60)
        with state.lock:
            if everything:
                taken, state.buckets = state.buckets, {}
            else:
                taken = {key: value for key, value in state.buckets.items() if key[0] < current}
                for key in taken:
                    del state.buckets[key]
        rate = self._settings.sample_successes
        extensions = {"errdiscount.sample_rate": rate} if rate < 1.0 else {}
        events: list[Event] = []
        for key, (calls, total_ms) in taken.items():
            minute, user, endpoint, method, status, attempts, source = key[:7]
            platform, os_version, app_version, sdk_version, segment = key[7:]
            count = int(calls)
            try:
                events.append(
                    CallEvent(
                        ts=format_ts_minute(minute),
                        outcome="ok",
                        method=method,
                        endpoint=endpoint,
                        user_id=user,
                        status=status,
                        attempts=attempts,
                        duration_ms=round(total_ms / max(count, 1), 3),
                        platform=platform,
                        os_version=os_version,
                        app_version=app_version,
                        sdk_version=sdk_version,
                        source=source,
                        count=count,
                        segment=segment,
                        extensions=extensions,
                    )
                )
            except InvalidEvent as exc:  # e.g. a count over the cap
                logger.debug("aggregate not sent: %s", exc)
                state.count_loss("send_error", count)
        return events

    def _admit(self, state: _State, events: list[Event]) -> list[Event]:
        hook = self._before_send
        if hook is None:
            return events
        admitted: list[Event] = []
        for event in events:
            try:
                result = hook(event)
                if result is None:
                    continue
                if isinstance(result, Mapping):
                    result = parse_event(result)
                if not isinstance(result, CallEvent | OutcomeEvent):
                    raise InvalidEvent("type:before_send")
            except Exception as exc:  # the app's hook: drop rather than send unredacted
                logger.debug("before_send failed (%s); event dropped", type(exc).__name__)
                state.count_loss("send_error")
                continue
            admitted.append(result)
        return admitted

    def _send(
        self, state: _State, http: httpx.Client, pending: list[Event], *, deadline: float | None
    ) -> list[Event]:
        """Send ``pending`` in batches; return what is left (deferred by a deadline or a flush)."""
        index = 0
        encoded = [_encode(event) for event in pending]
        while index < len(pending):
            end, size = index, 0
            while (
                end < len(pending)
                and end - index < self._settings.batch_size
                and (size + len(encoded[end]) <= MAX_BATCH_BYTES or end == index)
            ):
                size += len(encoded[end]) + 1
                end += 1
            if not self._post(state, http, encoded[index:end], deadline=deadline):
                return pending[index:]
            index = end
        # Loss counters with no batch to ride on still need to reach the server.
        if deadline is not None and state.dropped:
            self._post(state, http, [], deadline=deadline)
        return []

    def _post(
        self, state: _State, http: httpx.Client, events: list[bytes], *, deadline: float | None
    ) -> bool:
        """One batch with its retries. False: deferred (kept); True: sent or dropped."""
        settings = self._settings
        dropped = state.take_dropped()
        if not events and not dropped:
            return True
        body = _batch_body(events, dropped)
        headers = dict(self._headers)
        if len(body) > GZIP_ABOVE:
            body = gzip.compress(body, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        reason = "network_error"
        for attempt in range(settings.retries + 1):
            pause = state.paused_until - time.monotonic()
            if pause > 0 and not self._wait(state, pause, deadline):
                state.give_back(dropped)
                return False
            request_timeout = settings.timeout
            if deadline is not None:
                request_timeout = min(request_timeout, deadline - time.monotonic())
                if request_timeout <= 0:
                    state.give_back(dropped)
                    return False
            retry_after: float | None = None
            try:
                response = http.post(
                    settings.url, content=body, headers=headers, timeout=request_timeout
                )
            except httpx.HTTPError as exc:
                reason = "network_error"
                logger.debug("event batch not delivered: %s", type(exc).__name__)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return True
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                logger.debug("event batch answered %d", status)
                if status == 429:
                    reason = "ratelimited"
                    pause_for = DEFAULT_PAUSE if retry_after is None else retry_after
                    state.paused_until = time.monotonic() + min(pause_for, MAX_PAUSE)
                    retry_after = None  # the pause is the wait
                elif status in RETRY_STATUSES or status >= 500:
                    reason = "send_error"
                else:
                    reason = "send_error"
                    break  # 4xx: the same body will be refused again
            if attempt == settings.retries:
                break
            wait = min(settings.backoff * 2**attempt, settings.max_backoff)
            wait *= random.uniform(0.8, 1.2)
            if retry_after is not None:
                wait = max(wait, min(retry_after, settings.max_backoff))
            if state.paused_until > time.monotonic():
                wait = 0.0
            if not self._wait(state, wait, deadline):
                state.give_back(dropped)
                return False
        state.give_back(dropped)
        state.count_loss(reason, len(events))
        return True

    @staticmethod
    def _wait(state: _State, seconds: float, deadline: float | None) -> bool:
        """Sleep ``seconds``; False when a deadline or a flush/close request cut it short."""
        if seconds <= 0:
            return True
        if deadline is not None:
            if seconds > deadline - time.monotonic():
                return False  # sleeping until the deadline would change nothing
            return not state.stopping.wait(seconds)
        return not state.wake.wait(seconds)


def format_ts_minute(minute: int) -> str:
    """The RFC 3339 start of a Unix minute number."""
    return format_ts(datetime.fromtimestamp(minute * 60, UTC))


def _encode(event: Event) -> bytes:
    return json.dumps(event.to_json(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _batch_body(events: list[bytes], dropped: Mapping[str, int]) -> bytes:
    head = b'{"%s":%d,"%s":[' % (
        BATCH_SCHEMA_VERSION.encode(),
        EVENT_SCHEMA_VERSION,
        BATCH_EVENTS.encode(),
    )
    body = head + b",".join(events) + b"]"
    if dropped:
        counts = {reason: dropped[reason] for reason in LOSS_REASONS if dropped.get(reason)}
        body += b',"%s":' % BATCH_DROPPED.encode() + json.dumps(counts).encode()
    return body + b"}"


def _events_url(url: object) -> str:
    if not isinstance(url, str):
        raise ConfigurationError("url must be a string")
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError:
        raise ConfigurationError("url is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError("url must be an http(s) URL with a host")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigurationError("url must hold no credentials, query or fragment")
    return urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, parts.path.rstrip("/") + EVENTS_PATH, "", "")
    )


def _share(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigurationError("sample_successes must be a number in [0, 1]")
    return float(value)


def _int_in(name: str, value: object, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ConfigurationError(f"{name} must be an int in [{low}, {high}]")
    return value


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"{name} must be a number > 0")
    return float(value)


def _non_negative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigurationError(f"{name} must be a number >= 0")
    return float(value)
