"""POST and GET /v1/events against a real server: auth, batches, gzip caps, redaction."""

from __future__ import annotations

import gzip
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server_support import APP_KEY, admin, running

APP = {"Authorization": f"Bearer {APP_KEY}"}


def call(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "ts": datetime.now(UTC).isoformat(),
        "kind": "call",
        "outcome": "error",
        "user_id": "alice",
        "endpoint": "POST /api/pay",
        "method": "POST",
        "status": 503,
        "error_code": "PAY_DOWN",
        "category": "protocol",
        "severity": "severe",
        "transient": True,
        "attempts": 3,
        "duration_ms": 812.5,
        "platform": "ios",
        "os_version": "17.4",
        "app_version": "5.1.0",
        "sdk_version": "0.4.0",
        "source": "client",
        "params": {"amount": 12, "currency": "EUR"},
    }
    values.update(overrides)
    return values


def post(
    url: str, body: Any, headers: dict[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/events", json=body, headers=APP if headers is None else headers, **kwargs
    )


def test_a_batch_is_accepted_deduplicated_and_listed_redacted(tmp_path: Path) -> None:
    secret_params = {
        "amount": 12,
        "password": "hunter2",
        "card_number": "4111111111111111",
        "nested": {"X-Api-Key": "k-123", "list": [{"sessionId": "s-1"}]},
        "手机号": "13800000000",
    }
    first = call(params=secret_params, trace_hint="abc")
    second = call(outcome="ok", status=200, error_code=None, category=None, severity=None)
    with running(tmp_path) as url:
        answer = post(url, {"events": [first, second]})
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
        again = post(url, {"events": [first, second]})
        assert again.json() == {"accepted": 0, "duplicates": 2, "rejected": []}
        listed = httpx.get(f"{url}/v1/events", params={"user_id": "alice"}, headers=APP)
        assert listed.status_code == 200
        events = listed.json()["events"]
        assert len(events) == 2
        stored = next(e for e in events if e["event_id"] == first["event_id"])
        text = json.dumps(events, ensure_ascii=False)
        for secret in ("hunter2", "4111111111111111", "k-123", "s-1", "13800000000"):
            assert secret not in text
        assert stored["params"]["amount"] == 12
        assert stored["params"]["nested"]["X-Api-Key"] == "[Filtered]"
        assert stored["trace_hint"] == "abc"  # unknown members kept as extensions
        assert {k: stored[k] for k in ("status", "attempts", "transient", "source")} == {
            "status": 503,
            "attempts": 3,
            "transient": True,
            "source": "client",
        }
        # The admin key reads too.
        assert httpx.get(f"{url}/v1/events", headers=admin()).status_code == 200


def test_one_bad_event_does_not_reject_its_batch(tmp_path: Path) -> None:
    events = [
        call(),
        call(event_id="not-a-uuid"),
        call(endpoint="POST /api/pay?card=4111"),
        "not an object",
        call(status=True),
        call(),
    ]
    with running(tmp_path) as url:
        answer = post(url, {"events": events})
    assert answer.status_code == 202
    body = answer.json()
    assert body["accepted"] == 2 and body["duplicates"] == 0
    assert [r["index"] for r in body["rejected"]] == [1, 2, 3, 4]
    assert "event_id" in body["rejected"][0]["reason"]
    assert "4111" not in json.dumps(body)  # reasons never echo values


def test_ingestion_takes_app_keys_only(tmp_path: Path) -> None:
    with running(tmp_path) as url:
        assert post(url, {"events": []}, headers=admin()).status_code == 401
        assert post(url, {"events": []}, headers={}).status_code == 401
        assert (
            post(url, {"events": []}, headers={"Authorization": "Bearer " + "x" * 20}).status_code
            == 401
        )
        assert httpx.get(f"{url}/v1/events").status_code == 401
    with running(tmp_path, app_keys=()) as url:
        refused = post(url, {"events": []}, headers=admin())
        assert refused.status_code == 401
        assert refused.json()["error_code"] == "INGEST_DISABLED"


def test_named_app_keys_name_the_app_in_the_loss_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    named = "shop-ios=" + "n" * 24
    with (
        caplog.at_level(logging.INFO, logger="server_stub.events"),
        running(tmp_path, app_keys=(named,)) as url,
    ):
        answer = post(
            url,
            {"events": [call()], "dropped": {"queue_overflow": 7, "network_error": 0}},
            headers={"Authorization": "Bearer " + "n" * 24},
        )
        assert answer.status_code == 202 and answer.json()["accepted"] == 1
        # The name is not part of the key.
        assert (
            post(url, {"events": []}, headers={"Authorization": f"Bearer {named}"}).status_code
            == 401
        )
    lines = [r.getMessage() for r in caplog.records if "lost before sending" in r.getMessage()]
    assert lines and "shop-ios" in lines[0] and "queue_overflow" in lines[0]
    assert "nnnnnnnn" not in " ".join(r.getMessage() for r in caplog.records)


def test_gzip_bodies_are_accepted_and_zip_bombs_refused(tmp_path: Path) -> None:
    gz = {**APP, "Content-Type": "application/json", "Content-Encoding": "gzip"}
    with running(tmp_path) as url:
        body = gzip.compress(json.dumps({"events": [call(), call()]}).encode())
        answer = httpx.post(f"{url}/v1/events", content=body, headers=gz)
        assert answer.status_code == 202 and answer.json()["accepted"] == 2
        # 64 MiB of spaces compress to about 64 KiB: refused after 1 MiB is inflated.
        bomb = gzip.compress(b'{"events": [' + b" " * (64 * 1024 * 1024) + b"]}")
        assert len(bomb) < 1024 * 1024
        refused = httpx.post(f"{url}/v1/events", content=bomb, headers=gz)
        assert refused.status_code == 413 and refused.json()["error_code"] == "BODY_TOO_LARGE"
        broken = httpx.post(f"{url}/v1/events", content=body[: len(body) // 2], headers=gz)
        assert broken.status_code == 400 and broken.json()["error_code"] == "INVALID_ENCODING"
        brotli = httpx.post(
            f"{url}/v1/events", content=body, headers={**gz, "Content-Encoding": "br"}
        )
        assert brotli.status_code == 415


def test_batch_caps_and_envelope_errors(tmp_path: Path) -> None:
    with running(tmp_path) as url:
        many = post(url, {"events": [call() for _ in range(1001)]})
        assert many.status_code == 413 and many.json()["error_code"] == "TOO_MANY_EVENTS"
        big = post(url, {"events": [call(params={"p": "x" * 1024})] * 1000 + [call()]})
        assert big.status_code == 413
        assert post(url, [call()]).status_code == 422
        assert post(url, {"events": [], "extra": 1}).status_code == 422
        assert post(url, {}).status_code == 422
        assert post(url, {"events": [], "dropped": {"queue_overflow": -1}}).status_code == 422
        # The reporter's envelope names the schema version; only version 1 exists.
        versioned = post(url, {"schema_version": 1, "events": [call()]})
        assert versioned.status_code == 202 and versioned.json()["accepted"] == 1
        for version in (2, "1", True):
            assert post(url, {"schema_version": version, "events": []}).status_code == 422
        not_json = httpx.post(
            f"{url}/v1/events", content=b"{", headers={**APP, "Content-Type": "application/json"}
        )
        assert not_json.status_code == 400
        text = httpx.post(
            f"{url}/v1/events", content=b"{}", headers={**APP, "Content-Type": "text/plain"}
        )
        assert text.status_code == 415


def test_listing_filters_and_refuses_bad_parameters(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    events = [
        call(ts=(now - timedelta(minutes=i)).isoformat(), user_id="bob" if i % 2 else "alice",
             endpoint="GET /a" if i < 3 else "GET /b", method="GET")
        for i in range(6)
    ]  # fmt: skip
    with running(tmp_path) as url:
        assert post(url, {"events": events}).json()["accepted"] == 6

        def get(**params: Any) -> httpx.Response:
            return httpx.get(f"{url}/v1/events", params=params, headers=APP)

        listed = get().json()["events"]
        stamps = [e["ts"] for e in listed]
        assert stamps == sorted(stamps, reverse=True) and len(stamps) == 6
        assert {e["user_id"] for e in get(user_id="bob").json()["events"]} == {"bob"}
        assert len(get(endpoint="GET /b").json()["events"]) == 3
        window = get(since=(now - timedelta(minutes=2)).isoformat(), until=now.isoformat()).json()[
            "events"
        ]
        assert len(window) == 2  # minutes 2 and 1; until is exclusive
        assert len(get(limit="2").json()["events"]) == 2
        assert len(get(limit="5000").json()["events"]) == 6  # capped, not refused
        for bad in ({"limit": "0"}, {"limit": "x"}, {"since": "yesterday"},
                    {"since": "2030-01-01T00:00:00"}, {"colour": "red"}, {"user_id": ""}):  # fmt: skip
            refused = get(**bad)
            assert refused.status_code == 400, bad
            assert refused.json()["error_code"] == "INVALID_QUERY"


def test_outcome_events_are_accepted_deduplicated_and_rejected_one_by_one(
    tmp_path: Path,
) -> None:
    purchase = {"event_id": str(uuid.uuid4()), "ts": datetime.now(UTC).isoformat(),
                "kind": "outcome", "name": "purchase", "user_id": "alice", "value": 9.5}  # fmt: skip
    nameless = {**purchase, "event_id": str(uuid.uuid4()), "name": ""}
    with running(tmp_path) as url:
        answer = post(url, {"events": [call(), purchase, nameless, dict(purchase)]})
        assert answer.status_code == 202, answer.text
        assert answer.json() == {
            "accepted": 2,
            "duplicates": 1,  # the repeat of the purchase in the same batch
            "rejected": [{"index": 2, "reason": "empty:name"}],
        }
        again = post(url, {"events": [purchase]})
        assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
        # GET /v1/events lists the calls only.
        listed = httpx.get(f"{url}/v1/events", headers=APP).json()["events"]
        assert [event["kind"] for event in listed] == ["call"]
