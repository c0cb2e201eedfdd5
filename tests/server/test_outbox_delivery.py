"""The outbox end to end in one server: events, Standard Webhooks delivery, retries,
dead letters, requeue, 410, event filters, and the honest grant_delivery state.

Real server (uvicorn on loopback), real receiver verifying with `standardwebhooks`,
real SQLite. Retry schedules are short (the flag), so nothing sleeps for minutes;
waits are bounded polls for a state, never timed assertions.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest

from server_stub._commands import outbox_main
from tests.support.server_support import ADMIN_KEY, admin, running
from tests.support.waiting import wait_until
from tests.support.webhook_receiver import Receiver, new_secret, receiving

FAST = (0.05, 0.05, 0.05, 0.05)


def issue(url: str, subject: str = "alice", **extra: Any) -> dict[str, Any]:
    body = {
        "subject": subject,
        "error_code": "PAY_001",
        "category": "business",
        "severity": "moderate",
        "compensation": {"kind": "points", "amount": 100, "unit": "points"},
        **extra,
    }
    response = httpx.post(f"{url}/v1/tokens", json=body, headers=admin())
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def redeem(url: str, token: str) -> dict[str, Any]:
    response = httpx.post(f"{url}/v1/redemptions", json={"token": token})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def events(url: str, status: str | None = None) -> list[dict[str, Any]]:
    params = {"status": status} if status else {}
    response = httpx.get(f"{url}/v1/outbox", params=params, headers=admin())
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def sink_flags(receiver: Receiver, schedule: tuple[float, ...] = FAST) -> dict[str, Any]:
    return {
        "webhook_urls": (receiver.url,),
        "webhook_secrets": (receiver.secret,),
        "allow_private_webhooks": True,
        "webhook_retry_schedule": schedule,
    }


def test_issued_and_redeemed_reach_a_verifying_receiver_without_the_token(
    tmp_path: Path,
) -> None:
    with receiving() as crm, running(tmp_path, **sink_flags(crm)) as url:
        issued = issue(url, incident="inc-7")
        redemption = redeem(url, issued["token"])
        assert crm.wait_for(2)
        assert sorted(crm.types()) == ["compensation.issued", "compensation.redeemed"]
        assert crm.refused == 0
        by_type = {p["type"]: p for p in crm.verified}
        sent = by_type["compensation.redeemed"]["data"]
        assert sent["jti"] == issued["jti"]
        assert sent["subject"] == "alice"
        assert sent["redemption_id"] == redemption["id"]
        assert sent["error_code"] == "PAY_001"
        assert sent["incident"] == "inc-7"
        assert sent["alert_url"] == issued["alert_url"]
        assert sent["compensation"] == {"kind": "points", "amount": 100, "unit": "points"}
        assert sent["grant"] == {"kind": "points", "points": 100}
        assert by_type["compensation.issued"]["data"]["jti"] == issued["jti"]
        # Never the bearer credential, in any event.
        assert all(issued["token"] not in str(p) for p in crm.verified)
        # The webhook-id is the outbox id.
        assert {p["_id"] for p in crm.verified} == {e["id"] for e in events(url)}
        done = wait_until(lambda: len(events(url, "delivered")) == 2 and events(url, "delivered"))
        assert all(e["delivered_to"] for e in done)
        # The alert now says the grant reached the user.
        state = httpx.get(issued["alert_url"]).json()
        assert state["status"] == "redeemed"
        assert state["grant_delivery"] == "delivered"


def test_a_receiver_failing_three_times_gets_the_event_on_the_fourth_attempt(
    tmp_path: Path,
) -> None:
    with receiving(script=[500, 502, 503]) as crm, running(tmp_path, **sink_flags(crm)) as url:
        issued = issue(url)
        assert crm.wait_for(1)
        [event] = wait_until(lambda: events(url, "delivered"))
        assert event["attempts"] == 4
        assert crm.ids == [event["id"]] * 4  # every attempt carries the same id
        assert event["payload"]["data"]["jti"] == issued["jti"]


def test_after_the_last_attempt_the_event_is_a_dead_letter_until_requeued(
    tmp_path: Path,
) -> None:
    with (
        receiving(script=[500] * 6) as crm,
        running(tmp_path, **sink_flags(crm, (0.05, 0.05))) as url,
    ):
        issue(url)
        [dead] = wait_until(lambda: events(url, "failed"))
        assert dead["attempts"] == 3
        assert "HTTP 500" in dead["last_error"]
        assert crm.verified == []
        requeued = httpx.post(f"{url}/v1/outbox/{dead['id']}/requeue", headers=admin())
        assert requeued.status_code == 200
        assert requeued.json()["attempts"] == 0
        # Three more failures: dead again; the command line requeues it this time.
        wait_until(lambda: events(url, "failed"))
        database = f"sqlite:///{tmp_path}/server.db"
        assert outbox_main(["requeue", dead["id"], "--database", database]) == 0
        assert crm.wait_for(1)
        [event] = wait_until(lambda: events(url, "delivered"))
        assert event["id"] == dead["id"]
        again = httpx.post(f"{url}/v1/outbox/{dead['id']}/requeue", headers=admin())
        assert again.status_code == 409
        assert outbox_main(["requeue", "evt_nope", "--database", database]) == 1


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    with (
        receiving(script=[503], retry_after="120") as crm,
        running(tmp_path, **sink_flags(crm)) as url,
    ):
        before = dt.datetime.now(dt.UTC)
        issue(url)
        [event] = wait_until(lambda: [e for e in events(url, "pending") if e["attempts"] == 1])
        due = dt.datetime.fromisoformat(event["next_attempt_at"].replace("Z", "+00:00"))
        # The schedule says 0.05 s; the receiver asked for 120 s.
        assert due - before >= dt.timedelta(seconds=119)


def test_410_disables_a_registered_endpoint_and_filters_choose_event_types(
    tmp_path: Path,
) -> None:
    with (
        receiving(script=[410]) as gone,
        receiving() as picky,
        running(tmp_path, allow_private_webhooks=True, webhook_retry_schedule=FAST) as url,
    ):
        added = httpx.post(
            f"{url}/v1/webhook-endpoints",
            json={"url": gone.url, "secret": gone.secret},
            headers=admin(),
        )
        assert added.status_code == 201
        assert added.json()["secret"] == gone.secret
        filtered = httpx.post(
            f"{url}/v1/webhook-endpoints",
            json={
                "url": picky.url,
                "secret": picky.secret,
                "event_types": ["compensation.redeemed"],
            },
            headers=admin(),
        )
        assert filtered.status_code == 201
        issued = issue(url)
        redeem(url, issued["token"])
        assert picky.wait_for(1)
        assert picky.types() == ["compensation.redeemed"]

        def disabled() -> list[dict[str, Any]]:
            found = httpx.get(f"{url}/v1/webhook-endpoints", headers=admin()).json()
            return [e for e in found["endpoints"] if not e["enabled"]]

        [endpoint] = wait_until(disabled)
        assert endpoint["id"] == added.json()["id"]
        assert endpoint["disabled_reason"] == "HTTP 410 Gone"
        assert "secret" not in endpoint
        # One round may send it the events it claimed together; once disabled, never again.
        calls_when_disabled = len(gone.ids)
        assert 1 <= calls_when_disabled <= 2
        redeem(url, issue(url)["token"])
        assert picky.wait_for(2)
        assert len(gone.ids) == calls_when_disabled
        listed = httpx.get(f"{url}/v1/webhook-endpoints", headers=admin()).json()
        assert all("secret" not in e for e in listed["endpoints"])
        removed = httpx.delete(f"{url}/v1/webhook-endpoints/{endpoint['id']}", headers=admin())
        assert removed.status_code == 204


OPS_KEY = "ops-key-0123456789abcdef"


def test_a_disabled_endpoint_is_enabled_again_by_a_named_admin_and_gets_its_events(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ops = {"Authorization": f"Bearer {OPS_KEY}"}
    with (
        receiving(script=[410]) as crm,
        running(
            tmp_path,
            admin_key=(ADMIN_KEY, f"ops={OPS_KEY}"),
            allow_private_webhooks=True,
            webhook_retry_schedule=FAST,
        ) as url,
    ):
        added = httpx.post(
            f"{url}/v1/webhook-endpoints", json={"url": crm.url, "secret": crm.secret}, headers=ops
        ).json()
        enable_url = f"{url}/v1/webhook-endpoints/{added['id']}/enable"

        def listed() -> dict[str, Any]:
            found: dict[str, Any] = httpx.get(f"{url}/v1/webhook-endpoints", headers=ops).json()
            return found["endpoints"][0]

        issue(url)
        assert wait_until(lambda: not listed()["enabled"])
        [dead] = wait_until(lambda: events(url, "failed"))  # sent to a disabled endpoint
        assert httpx.post(enable_url).status_code == 401
        with caplog.at_level("INFO", logger="server_stub.outbox"):
            enabled = httpx.post(enable_url, headers=ops)
        assert enabled.status_code == 200, enabled.text
        body = enabled.json()
        assert (body["enabled"], body["disabled_reason"], body["failing_since"]) == (
            True,
            None,
            None,
        )
        assert "secret" not in body
        assert f"webhook endpoint {added['id']} enabled by ops" in caplog.text
        assert listed()["enabled"] is True
        # The dead letters of the disabled period go out once requeued, all at once.
        database = f"sqlite:///{tmp_path}/server.db"
        assert outbox_main(["requeue", "--all-failed", "--database", database]) == 0
        assert crm.wait_for(1)
        assert crm.ids[-1] == dead["id"]
        with pytest.raises(SystemExit):  # ids or --all-failed, not both
            outbox_main(["requeue", dead["id"], "--all-failed", "--database", database])
        missing = httpx.post(f"{url}/v1/webhook-endpoints/we_missing/enable", headers=ops)
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "ENDPOINT_NOT_FOUND"
        assert outbox_main(["enable", added["id"], "--database", database]) == 0
        assert outbox_main(["enable", "we_missing", "--database", database]) == 1
        assert outbox_main(["enable", "x" * 300, "--database", database]) == 1


def test_with_no_sink_events_are_settled_until_an_endpoint_is_registered(
    tmp_path: Path,
) -> None:
    with (
        receiving() as crm,
        running(tmp_path, allow_private_webhooks=True, webhook_retry_schedule=FAST) as url,
    ):
        before = issue(url, "before")
        [settled] = wait_until(lambda: events(url, "delivered"))
        assert settled["payload"]["data"]["jti"] == before["jti"] and settled["attempts"] == 1
        assert settled["delivered_to"] == []
        added = httpx.post(
            f"{url}/v1/webhook-endpoints",
            json={"url": crm.url, "secret": crm.secret},
            headers=admin(),
        )
        assert added.status_code == 201
        after = issue(url, "after")
        assert crm.wait_for(1)
        assert [p["data"]["jti"] for p in crm.verified] == [after["jti"]]
        delivered = wait_until(lambda: len(events(url, "delivered")) == 2 and events(url))
        assert {e["payload"]["data"]["jti"]: e["delivered_to"] for e in delivered} == {
            before["jti"]: [],
            after["jti"]: [added.json()["id"]],
        }


def test_a_refused_redemption_writes_no_redeemed_event(tmp_path: Path) -> None:
    with running(tmp_path) as url:
        issued = issue(url)
        redeem(url, issued["token"])
        again = httpx.post(f"{url}/v1/redemptions", json={"token": issued["token"]})
        assert again.status_code in (200, 201, 409)
        types = [e["type"] for e in events(url)]
        assert types.count("compensation.redeemed") == 1


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ({"kind": "coupon", "amount": 5, "unit": "USD"}, "delivered"),
        ({"kind": "points", "amount": 5, "unit": "points"}, "pending"),
    ],
)
def test_without_sinks_only_the_servers_own_grant_counts_as_delivered(
    tmp_path: Path, kind: dict[str, Any], expected: str
) -> None:
    with running(tmp_path) as url:
        httpx.post(
            f"{url}/v1/coupon-pools/coupon/codes", json={"codes": ["SAVE-1"]}, headers=admin()
        )
        issued = issue(url, compensation=kind)
        redeem(url, issued["token"])
        state = httpx.get(issued["alert_url"]).json()
        assert state["grant_delivery"] == expected
        # Pending alerts carry no such member.
        fresh = issue(url)
        assert "grant_delivery" not in httpx.get(fresh["alert_url"]).json()


def test_with_a_sink_that_has_not_acknowledged_the_grant_is_pending(tmp_path: Path) -> None:
    with (
        receiving(script=[500] * 10) as crm,
        running(tmp_path, **sink_flags(crm, (60.0,))) as url,
    ):
        httpx.post(
            f"{url}/v1/coupon-pools/coupon/codes", json={"codes": ["SAVE-2"]}, headers=admin()
        )
        issued = issue(url, compensation={"kind": "coupon", "amount": 5, "unit": "USD"})
        redeem(url, issued["token"])
        assert httpx.get(issued["alert_url"]).json()["grant_delivery"] == "pending"


def test_outbox_listing_checks_its_parameters_and_needs_the_admin_key(tmp_path: Path) -> None:
    with running(tmp_path) as url:
        assert httpx.get(f"{url}/v1/outbox").status_code == 401
        bad = httpx.get(f"{url}/v1/outbox", params={"status": "lost"}, headers=admin())
        assert bad.status_code == 422
        missing = httpx.post(f"{url}/v1/outbox/evt_missing/requeue", headers=admin())
        assert missing.status_code == 404
        refused = httpx.post(
            f"{url}/v1/webhook-endpoints",
            json={"url": "http://127.0.0.1:9/hooks", "secret": new_secret()},
            headers=admin(),
        )
        assert refused.status_code == 422  # http and loopback without --allow-private-webhooks
