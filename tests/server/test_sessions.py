"""Browser sessions and /v1/me: bound to one subject, short-lived, never a voucher."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from errdiscount_sdk import generate_signing_key
from server_stub.domain._sessions import SessionInvalid, SessionSigner
from tests.server.test_outbox_delivery import issue
from tests.support.server_support import APP_KEY, ORIGIN, admin, running


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def session(url: str, subject: str) -> str:
    response = httpx.post(f"{url}/v1/sessions", json={"subject": subject}, headers=bearer(APP_KEY))
    assert response.status_code == 201, response.text
    assert response.json()["expires_in"] == 900
    token: str = response.json()["session_token"]
    return token


def test_a_session_lists_only_its_own_pending_compensations_and_marks_them_seen(
    tmp_path: Path,
) -> None:
    with running(tmp_path) as url:
        mine = issue(url, "alice")
        theirs = issue(url, "bob")
        alice = session(url, "alice")
        listed = httpx.get(f"{url}/v1/me/compensations", headers=bearer(alice))
        assert listed.status_code == 200
        body = listed.json()
        assert body["subject"] == "alice"
        assert [p["jti"] for p in body["pending"]] == [mine["jti"]]
        [item] = body["pending"]
        assert item["seen"] is False
        assert item["alert_url"] == mine["alert_url"]
        assert item["error_code"] == "PAY_001"
        assert "token" not in item
        # Bob's compensation is not alice's to mark.
        other = httpx.post(f"{url}/v1/me/compensations/{theirs['jti']}/seen", headers=bearer(alice))
        assert other.status_code == 404
        seen = httpx.post(f"{url}/v1/me/compensations/{mine['jti']}/seen", headers=bearer(alice))
        assert seen.status_code == 204
        again = httpx.get(f"{url}/v1/me/compensations", headers=bearer(alice)).json()
        assert again["pending"][0]["seen"] is True
        bob = httpx.get(f"{url}/v1/me/compensations", headers=bearer(session(url, "bob"))).json()
        assert [p["jti"] for p in bob["pending"]] == [theirs["jti"]]
        assert bob["pending"][0]["seen"] is False


def test_tampered_missing_and_voucher_credentials_are_401(tmp_path: Path) -> None:
    with running(tmp_path) as url:
        voucher = issue(url, "alice")["token"]
        good = session(url, "alice")
        head, payload, mac = good.split(".")
        forged_payload = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
        for credential in (
            None,
            f"{head}.{forged_payload}.{mac}",
            f"{head}.{payload}.{mac[:-2]}xx",
            voucher,
            APP_KEY,
        ):
            headers = {} if credential is None else bearer(credential)
            response = httpx.get(f"{url}/v1/me/compensations", headers=headers)
            assert response.status_code == 401
            assert response.json()["error_code"] == "SESSION_INVALID"
        # And a session token is no voucher.
        refused = httpx.post(f"{url}/v1/redemptions", json={"token": good})
        assert refused.status_code in (401, 422)


def test_sessions_need_an_app_key(tmp_path: Path) -> None:
    with running(tmp_path) as url:
        assert httpx.post(f"{url}/v1/sessions", json={"subject": "a"}).status_code == 401
        ok = httpx.post(f"{url}/v1/sessions", json={"subject": "a"}, headers=admin())
        assert ok.status_code == 201


def test_cors_allows_the_session_header_on_me_only(tmp_path: Path) -> None:
    with running(tmp_path) as url:
        preflight = {
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        }
        me = httpx.options(f"{url}/v1/me/compensations", headers=preflight)
        assert me.status_code == 204
        assert "Authorization" in me.headers["access-control-allow-headers"]
        redeem = httpx.options(f"{url}/v1/redemptions", headers=preflight)
        assert redeem.status_code == 403


def test_expired_sessions_are_refused() -> None:
    now = [1_000_000.0]
    signer = SessionSigner(generate_signing_key(), ttl=60, clock=lambda: now[0])
    token = signer.issue("alice")
    assert signer.subject(token) == "alice"
    now[0] += 61
    with pytest.raises(SessionInvalid, match="expired"):
        signer.subject(token)


def test_another_servers_key_does_not_verify() -> None:
    token = SessionSigner(generate_signing_key()).issue("alice")
    with pytest.raises(SessionInvalid):
        SessionSigner(generate_signing_key()).subject(token)
