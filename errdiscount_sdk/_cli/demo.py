"""``errdiscount demo``: the whole loop, on loopback, with nothing to set up.

It starts the reference redemption server (``python -m server_stub``) as a
child process with a temporary SQLite database, a fresh signing key and an app
key, runs the demo payment API (`_demo_api`), calls it through `Client` (with
an `ErrorReporter` sending each call's outcome to the server), redeems the
voucher it got, and shows the events the server collected. A CRM stand-in
(`demo_receiver`) receives the signed webhooks; with ``amqp_url``, a queue bound
to the server's RabbitMQ exchange (`demo_queue`) receives the same events.
Everything it started is stopped, its temporary folder removed (and the exchange
it named deleted), before it returns — also on Ctrl-C or failure.

The SDK never imports ``server_stub``: the server runs as its own process,
exactly as an operator would run it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import json
import os
import queue
import secrets
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import attrs
import httpx

from .._http.client import Client
from .._http.retry import RetryDetails, RetryPolicy
from .._model.alert_url import AlertUrlPolicy
from .._model.errors import AlreadyRedeemed, ApiError, ErrDiscountError
from .._redeem.client import RedemptionClient
from .._report.reporter import ErrorReporter
from .._tokens.spec import DiscountToken
from .._tokens.verifier import TokenVerifier
from .demo_api import PAY_MESSAGE, PAY_SUGGESTION, run_payment_api
from .demo_queue import BINDING, QueueUnavailable, QueueWatch, queue_watch
from .demo_receiver import DemoReceiver, demo_receiver

__all__ = ["run_demo"]

ISSUER = "errdiscount-demo"
AUDIENCE = "errdiscount"
DEMO_APP = "demo-shop"
DEMO_USER = "user-42"
_START_TIMEOUT = 60.0
#: how long the RabbitMQ step waits for the messages (the webhooks arrived already)
_QUEUE_TIMEOUT = 15.0
#: what the message-queue step suggests when no broker was given
AMQP_HINT = "amqp://guest:guest@127.0.0.1:5672/"


class _DemoFailed(ErrDiscountError):
    """The demo could not run (its own fault, not the user's)."""


class _Tour:
    """Prints the tour: numbered steps, each with a short explanation."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.step = 0

    def heading(self, title: str, why: str) -> None:
        self.step += 1
        number = f"{self.step}. "
        self.say(f"\n{number}{title}")
        for line in textwrap.wrap(why, 88):
            self.say(" " * len(number) + line)

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def item(self, label: str, value: object) -> None:
        self.say(f"     {label:<22} {value}")


@attrs.frozen(slots=True)
class _Broker:
    """The RabbitMQ sink the demo's server publishes to (``--amqp-url``, ``--amqp-exchange``)."""

    url: str = attrs.field(repr=False)  # may hold a password
    exchange: str


@contextlib.contextmanager
def _redemption_server(
    workdir: Path,
    admin_key: str,
    app_key: str,
    receiver: DemoReceiver | None = None,
    broker: _Broker | None = None,
) -> Iterator[str]:
    """Run ``python -m server_stub`` on a free loopback port; yields its base URL.

    The detector runs every second and compensates automatically (a later step).

    With a ``receiver``, the server delivers its outbox to it (a loopback webhook:
    ``--allow-private-webhooks``, retried after 0.5 s and 2 s); with a ``broker``, to
    that RabbitMQ exchange too.
    """
    log_path = workdir / "server.log"
    env = {  # the keys are not on the command line (``--admin-key``, ``--app-key``)
        **os.environ,
        "ERRDISCOUNT_ADMIN_KEY": admin_key,
        "ERRDISCOUNT_APP_KEY": f"{DEMO_APP}={app_key}",
    }
    # Only the broker given to the demo (its URL, like the keys, stays off the command
    # line); never one inherited from the caller's environment.
    env.pop("ERRDISCOUNT_AMQP_URL", None)
    env.pop("ERRDISCOUNT_AMQP_EXCHANGE", None)
    if broker is not None:
        env.update(ERRDISCOUNT_AMQP_URL=broker.url, ERRDISCOUNT_AMQP_EXCHANGE=broker.exchange)
    if receiver is not None:
        env.update(
            ERRDISCOUNT_WEBHOOK_URL=receiver.url,
            ERRDISCOUNT_WEBHOOK_SECRET=receiver.secret,
            ERRDISCOUNT_ALLOW_PRIVATE_WEBHOOKS="1",
            ERRDISCOUNT_WEBHOOK_RETRY_SCHEDULE="0.5,2",
        )
    command = [
        sys.executable,
        "-m",
        "server_stub",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--database",
        f"sqlite:///{workdir / 'demo.db'}",
        "--signing-key",
        str(workdir / "signing-key.pem"),
        "--issuer",
        ISSUER,
        "--audience",
        AUDIENCE,
        "--no-access-log",
        "--auto-compensate",
        "on",
        "--detector-interval",
        "1",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, stdout=subprocess.PIPE, stderr=log, text=True, env=env
        )
        try:
            yield _wait_until_listening(process, log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def _wait_until_listening(process: subprocess.Popen[str], log_path: Path) -> str:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="demo-server-stdout", daemon=True).start()
    while True:
        try:
            line = lines.get(timeout=_START_TIMEOUT)
        except queue.Empty:
            line = None
        if line is None:
            log = log_path.read_text(errors="replace")[-2000:]
            raise _DemoFailed(f"the redemption server did not start:\n{log}")
        marker = "listening on "
        if marker in line:
            return line.split(marker, 1)[1].split()[0].strip()


def _mint(server: str, admin_key: str) -> Any:
    """What a provider does on a compensable failure: ask the server for a voucher."""

    def mint(subject: str) -> dict[str, Any]:
        response = httpx.post(
            f"{server}/v1/tokens",
            headers={"Authorization": f"Bearer {admin_key}"},
            json={
                "subject": subject,
                "error_code": "PAY_001",
                "category": "business",
                "severity": "moderate",
                # The popup shows the provider's own words, not a generic text.
                "message": PAY_MESSAGE,
                "suggestion": PAY_SUGGESTION,
            },
            timeout=10,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    return mint


def run_demo(
    out: TextIO | None = None, *, amqp_url: str | None = None, amqp_exchange: str | None = None
) -> int:
    """Run the guided tour; returns the process exit code (0 when every step worked).

    With ``amqp_url``, the server also publishes to RabbitMQ and a step shows a queue
    receiving the events. The exchange is ``amqp_exchange``, or a fresh
    ``errdiscount-demo-<random>`` one, deleted at the end (a named one is left alone).
    """
    tour = _Tour(out or sys.stdout)
    needed = ("server_stub", "starlette", "uvicorn", *(("aio_pika",) if amqp_url else ()))
    missing = [name for name in needed if not _importable(name)]
    if missing:
        tour.say(
            "errdiscount demo needs the server extra: pip install 'errdiscount-sdk[server]' "
            f"(missing: {', '.join(missing)})"
        )
        return 2
    admin_key, app_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    try:
        with contextlib.ExitStack() as stack:
            broker, watch = None, None
            if amqp_url is not None:
                # Bound before anything is paid: the broker drops what no queue is bound to.
                broker = _Broker(
                    amqp_url, amqp_exchange or f"errdiscount-demo-{secrets.token_hex(4)}"
                )
                watch = stack.enter_context(
                    queue_watch(broker.url, broker.exchange, delete_exchange=amqp_exchange is None)
                )
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="errdiscount-demo-"))
            return _tour(tour, Path(folder), admin_key, app_key, broker, watch)
    except QueueUnavailable as failure:  # before the tour started: one line
        tour.say(f"The demo failed: {failure}")
        return 1
    except _DemoFailed as failure:
        tour.say(f"\nThe demo failed: {failure}")
        return 1


def _importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _tour(
    tour: _Tour,
    workdir: Path,
    admin_key: str,
    app_key: str,
    broker: _Broker | None,
    watch: QueueWatch | None,
) -> int:
    tour.say("errdiscount demo — API error discounts, end to end, on this machine only")
    with (
        demo_receiver() as crm,
        _redemption_server(workdir, admin_key, app_key, crm, broker) as server,
    ):
        tour.heading(
            "Started the redemption server",
            "A temporary SQLite database and a fresh Ed25519 signing key; its public key "
            "is published as a JWKS, so anyone can verify its vouchers offline.",
        )
        tour.item("server", server)
        tour.item("JWKS", f"{server}/.well-known/jwks.json")
        with run_payment_api(_mint(server, admin_key)) as (api_url, api):
            tour.heading(
                "Started a payment API that fails like the article describes",
                "GET /api/balance is flaky (a dropped connection, then a 503); "
                "POST /api/pay refuses with PAY_001 and a compensation voucher.",
            )
            tour.item("payment API", api_url)
            verifier = TokenVerifier.from_jwks_url(
                f"{server}/.well-known/jwks.json",
                issuer=ISSUER,
                audience=AUDIENCE,
                allow_http_loopback=True,
            )
            alerts: list[str] = []
            # The app's reporter: each call's final outcome, redacted, to POST /v1/events.
            reporter = ErrorReporter(server, app_key=app_key, user_id=DEMO_USER, timeout=5)
            client = Client(
                reporter=reporter,
                base_url=api_url,
                timeout=10,
                retry=RetryPolicy(max_attempts=4, initial_backoff=0.2, max_backoff=1.0),
                verifier=verifier,
                alert_policy=AlertUrlPolicy(
                    allowed_hosts={"127.0.0.1"}, http_allowed_hosts={"127.0.0.1"}
                ),
                on_retry=lambda details: _show_retry(tour, details),
                on_alert=lambda url, error: alerts.append(url),
                # The demo API honours Idempotency-Key: POSTs may be resent, with one key.
                retry_non_idempotent=True,
            )
            try:
                with client:
                    _balance(tour, client, api.balance_calls)
                    token = _pay(tour, client, alerts, api.pay_idempotency_keys)
                if token is None:
                    return 1
                status = _redeem_twice(tour, server, admin_key, token)
                if status == 0:
                    status = _crm_heard(tour, crm)
                if status == 0:
                    status = _queue_heard(tour, watch, crm)
                if status == 0:
                    status = _collected(tour, server, admin_key, reporter)
                if status == 0:
                    status = _auto_compensation(tour, server, admin_key, app_key)
            finally:
                reporter.close(timeout=2.0)
        if status == 0:
            _done(tour)
        return status


def _show_retry(tour: _Tour, details: RetryDetails) -> None:
    cause = details.cause
    tour.say(
        f"     attempt {details.attempt} failed: {cause.category.value}/{cause.severity.value}, "
        f"{type(cause).__name__} (error.type={cause.error_type}); "
        f"transient, safe to retry — waiting {details.wait:.2f}s"
    )


def _balance(tour: _Tour, client: Client, calls_before: int) -> None:
    tour.heading(
        "GET /api/balance through errdiscount's Client",
        "Transient failures of an idempotent request are retried with jittered backoff, "
        "honouring Retry-After, within a retry budget shared by the whole client.",
    )
    response = client.get("/api/balance")
    tour.item("result", f"HTTP {response.status_code} {response.json()}")


def _pay(tour: _Tour, client: Client, alerts: list[str], keys: list[str]) -> str | None:
    tour.heading(
        "POST /api/pay: a business error with a voucher",
        "A 4xx naming a business error_code is not retried: retrying cannot top up a card. "
        "The structured payload is parsed, the voucher verified offline against the JWKS, "
        "and the alert_url checked against an allow-list before anyone may open it.",
    )
    try:
        # The card number is a secret: the reporter's redaction keeps it in the app.
        client.post(
            "/api/pay",
            json={"amount": "99.00", "currency": "CNY", "card_number": "6222020000001234"},
        )
    except ApiError as error:
        tour.item("raised", type(error).__name__)
        tour.item("category / severity", f"{error.category.value} / {error.severity.value}")
        tour.item("transient", error.transient)
        tour.item("attempts", error.attempts)
        payload = error.payload
        if payload is not None:
            tour.item("error_code", payload.error_code)
            tour.item("message", payload.message)
            tour.item("suggestion", payload.suggestion)
        tour.item("Idempotency-Key sent", keys[-1][:8] + "…" if keys and keys[-1] else "none")
        discount = error.discount
        if not isinstance(discount, DiscountToken):
            tour.item("voucher", f"NOT verified: {error.discount_rejection}")
            return None
        comp = discount.compensation
        tour.item("voucher verified", f"jti={discount.jti[:10]}… sub={discount.sub}")
        tour.item("compensation", f"{comp.kind}: {comp.amount:g} {comp.unit}")
        tour.item("alert_url (allowed)", alerts[0] if alerts else "none")
        if alerts:
            _popup(tour, alerts[0])
        return discount.raw
    tour.say("     unexpected: the payment succeeded")
    return None


def _popup(tour: _Tour, alert_url: str) -> None:
    """What the popup shows: the provider's own words, as given to POST /v1/tokens."""
    for lang in ("zh-CN", "en"):
        try:
            response = httpx.get(
                alert_url, params={"lang": lang}, headers={"Accept": "application/json"}, timeout=10
            )
            error = response.json()["error"]
            shown = f"{error['explanation']} {error['suggestion']}"
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            shown = "unavailable"
        tour.item(f"popup ({lang})", shown)


def _redeem_twice(tour: _Tour, server: str, admin_key: str, token: str) -> int:
    tour.heading(
        "Redeem the voucher at the redemption server",
        "Possession of the token is enough; the grant always goes to the token's subject. "
        "The request carries an Idempotency-Key, so a retried redemption cannot apply twice.",
    )
    redeemer = RedemptionClient(server)
    redemption = redeemer.redeem(token)
    grant = {k: v for k, v in attrs.asdict(redemption.grant).items() if v is not None}
    tour.item("redemption", redemption.id)
    tour.item("granted to", redemption.subject)
    tour.item("grant", grant)
    tour.heading(
        "Redeem the same voucher again",
        "Single use is enforced by a UNIQUE key on the token's jti, in one transaction "
        "with the budget and the ledger: the second attempt is refused.",
    )
    try:
        redeemer.redeem(token)
    except AlreadyRedeemed as refused:
        tour.item("raised", type(refused).__name__)
        tour.item("error_code", refused.error_code)
    else:
        tour.say("     unexpected: redeemed twice")
        return 1
    tour.heading(
        "The ledger (append-only audit trail)",
        "Every issuance and redemption is recorded; reversals add entries, never delete.",
    )
    ledger = httpx.get(
        f"{server}/v1/ledger",
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=10,
    ).json()
    for entry in ledger["entries"]:
        tour.say(
            f"     #{entry['seq']:<3} {entry['event']:<10} subject={entry['subject']} "
            f"{entry['kind'] or ''} {entry['amount'] if entry['amount'] is not None else ''} "
            f"{entry['unit'] or ''}".rstrip()
        )
    return 0


def _crm_heard(tour: _Tour, crm: DemoReceiver) -> int:
    tour.heading(
        "The CRM heard about it (transactional outbox → Standard Webhooks)",
        "Each issuance and redemption wrote an outbox event in its own transaction; the "
        "server's dispatcher delivered them, signed (webhook-signature v1, HMAC-SHA256), "
        "with the outbox id as webhook-id so a redelivery is recognised. This receiver "
        "checked every signature.",
    )
    if not crm.wait_for(2, timeout=15):
        tour.say(f"     only {len(crm.events)} of 2 deliveries arrived")
        return 1
    for event_id, payload in sorted(crm.events.items()):
        data = payload.get("data", {})
        tour.say(
            f"     {payload.get('type', '?'):<22} webhook-id={event_id} "
            f"subject={data.get('subject')} signature verified"
        )
    return 0 if crm.refused == 0 else 1


def _queue_heard(tour: _Tour, watch: QueueWatch | None, crm: DemoReceiver) -> int:
    tour.heading(
        "The message queue got it too (RabbitMQ → the CRM's SMS/email)",
        "The dispatcher also published each event to a durable topic exchange — routing key "
        "= event type, persistent, the outbox id as message_id — and counted it delivered "
        "only once the broker confirmed it. Like a CRM, the demo bound its own queue with "
        f"{BINDING} before anything was paid.",
    )
    if watch is None:
        tour.say(f"     pass --amqp-url {AMQP_HINT} to watch a RabbitMQ queue too")
        return 0
    tour.item("exchange / binding", f"{watch.exchange} / {BINDING}")
    webhook_ids = set(crm.events)
    if not watch.wait_for(webhook_ids, timeout=_QUEUE_TIMEOUT):
        arrived = len(webhook_ids & watch.messages.keys())
        tour.say(f"     only {arrived} of {len(webhook_ids)} events arrived on the queue")
        return 1
    for event_id in sorted(webhook_ids):
        message = watch.messages[event_id]
        mode = "persistent" if message.persistent else "NOT persistent"
        tour.say(
            f"     {message.routing_key:<22} message_id={message.message_id} "
            f"{mode} (delivery mode {message.delivery_mode}), same id as its webhook"
        )
    return 0 if all(watch.messages[i].persistent for i in webhook_ids) else 1


def _collected(tour: _Tour, server: str, admin_key: str, reporter: ErrorReporter) -> int:
    tour.heading(
        "What the server collected (GET /v1/events)",
        "The client's ErrorReporter recorded each call's final outcome — after its retries, "
        "with the route template, not the raw path — redacted in the app before sending: "
        "secrets become [Filtered], other values only their type and length.",
    )
    if not reporter.flush(timeout=5.0):
        tour.say("     unexpected: the reporter could not deliver its events")
        return 1
    answer = httpx.get(
        f"{server}/v1/events",
        params={"user_id": DEMO_USER},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=10,
    )
    events = answer.json()["events"] if answer.status_code == 200 else []
    if not events:
        tour.say("     unexpected: no events were collected")
        return 1
    for event in reversed(events):  # oldest first, as the tour went
        tour.say(
            f"     {event['source']:<8} {event['endpoint']:<18} {event['outcome']:<5} "
            f"status={event['status']} attempts={event['attempts']} "
            f"error_code={event['error_code'] or '-'}"
        )
        if event["params"]:
            tour.item("params", json.dumps(event["params"], ensure_ascii=False))
    return 0


def _done(tour: _Tour) -> None:
    tour.say(
        "\nDone. Everything the demo started has been stopped. To see the popup widget in a "
        "browser, run:  errdiscount-server --demo --admin-key <16+ chars>  and open /demo."
    )


#: the user whose payments keep failing in the automatic-compensation step
AUTO_USER = "user-7"


def _auto_compensation(tour: _Tour, server: str, admin_key: str, app_key: str) -> int:
    tour.heading(
        "A persistent failure, compensated automatically",
        "The app's reporter sends each call's final outcome to POST /v1/events. Three "
        "failures of one user on POST /api/pay spanning 6 minutes are persistent, not a "
        "blip: the server's detector (every second here; --auto-compensate on) opens an "
        "episode and issues one voucher, exactly once.",
    )
    now = dt.datetime.now(dt.UTC)
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "ts": (now - dt.timedelta(minutes=minutes)).isoformat(),
            "kind": "call",
            "method": "POST",
            "outcome": "error",
            "user_id": AUTO_USER,
            "endpoint": "POST /api/pay",
            "status": 503,
            "category": "protocol",
            "error_code": "PAY_UNAVAILABLE",
            "attempts": 3,
            "source": "client",
        }
        for minutes in (9, 6, 3)
    ]
    posted = httpx.post(
        f"{server}/v1/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {app_key}"},
        timeout=10,
    )
    if posted.status_code != 202:
        tour.say(f"     unexpected: POST /v1/events answered {posted.status_code}: {posted.text}")
        return 1
    tour.item("events posted", f"{posted.json()['accepted']} failures of {AUTO_USER}")
    headers = {"Authorization": f"Bearer {admin_key}"}
    deadline = time.monotonic() + 30
    issued: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = httpx.get(
            f"{server}/v1/users/{AUTO_USER}/compensations", headers=headers, timeout=10
        ).json()
        issued = [c for c in found.get("issued", []) if c.get("reason") == "episode"]
        if issued:
            break
        time.sleep(0.2)
    if not issued:
        tour.say("     unexpected: no automatic compensation")
        return 1
    (episode,) = httpx.get(
        f"{server}/v1/episodes", params={"user_id": AUTO_USER}, headers=headers, timeout=10
    ).json()["episodes"]
    voucher = issued[0]
    tour.item("episode", f"{episode['id']} ({episode['failures']} failures, {episode['rule']})")
    tour.item("voucher", f"{voucher['jti']} for {AUTO_USER}")
    tour.item("compensation", voucher["compensation"])
    tour.item("reason / ref", f"{voucher['reason']} / {voucher['ref']}")
    tour.item("popup", f"{server}/v1/alerts/{voucher['alert_id']}")
    return 0
