"""Admin endpoints: authentication, issuing, reversal, budgets, pools, caps."""

from __future__ import annotations

import base64
import hmac
import json

import httpx
import pytest

from errdiscount_sdk import TokenVerifier
from tests.support.server_support import ADMIN_KEY, APP_KEY, admin, running, shared_key, token


@pytest.fixture
def client(tmp_path):
    with (
        running(tmp_path, public_url="https://redeem.example") as url,
        httpx.Client(base_url=url) as http,
    ):
        yield http


ISSUE = {"subject": "alice", "error_code": "PAY_001", "category": "business", "severity": "minor"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key-0123456789"},
        {"Authorization": f"Basic {ADMIN_KEY}"},
        {"Authorization": f"Bearer {APP_KEY}"},  # app keys read, they never administer
    ],
)
def test_admin_endpoints_refuse_without_the_admin_key(client, headers) -> None:
    response = client.post("/v1/tokens", json=ISSUE, headers=headers)
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHORIZED"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_admin_disabled_without_a_configured_key(tmp_path) -> None:
    with running(tmp_path, admin_key=None) as url:
        response = httpx.get(f"{url}/v1/budgets", headers=admin())
    assert (response.status_code, response.json()["error_code"]) == (401, "ADMIN_DISABLED")


def test_admin_key_is_compared_in_constant_time(client, monkeypatch) -> None:
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert client.get("/v1/budgets", headers=admin()).status_code == 200
    # Digests are compared, so the presented key's length does not matter.
    assert calls == [(32, 32)]


def test_issue_token_records_it_with_an_alert_id(client) -> None:
    response = client.post("/v1/tokens", json=ISSUE, headers=admin())
    assert response.status_code == 201
    body = response.json()
    assert len(body["alert_id"]) >= 22
    assert body["alert_url"] == f"https://redeem.example/v1/alerts/{body['alert_id']}"
    assert body["compensation"] == {"kind": "coupon", "amount": 2, "unit": "USD"}
    verified = TokenVerifier(
        {"keys": [shared_key().public_jwk()]}, issuer="errdiscount-server", audience="errdiscount"
    ).verify(body["token"])
    assert verified.jti == body["jti"]
    assert verified.sub == "alice"
    assert verified.alert == body["alert_url"]
    ledger = client.get("/v1/ledger", headers=admin()).json()["entries"]
    assert [e["event"] for e in ledger] == ["issued"]


def test_issue_with_override_and_not_compensable(client) -> None:
    override = dict(ISSUE, compensation={"kind": "points", "amount": 7, "unit": "points"}, ttl=60)
    body = client.post("/v1/tokens", json=override, headers=admin()).json()
    assert body["compensation"] == {"kind": "points", "amount": 7, "unit": "points"}
    transient = dict(ISSUE, category="network", transient=True)
    refused = client.post("/v1/tokens", json=transient, headers=admin())
    assert (refused.status_code, refused.json()["error_code"]) == (422, "NOT_COMPENSABLE")
    bad = client.post("/v1/tokens", json=dict(ISSUE, severity="apocalyptic"), headers=admin())
    assert (bad.status_code, bad.json()["error_code"]) == (422, "INVALID_BODY")


def test_reversal_restores_the_budget_and_keeps_history(client) -> None:
    client.put("/v1/budgets/points/*", json={"total": 100, "unit": "points"}, headers=admin())
    redeemed = client.post("/v1/redemptions", json={"token": token()}).json()
    url = f"/v1/redemptions/{redeemed['id']}/reversal"
    reversed_ = client.post(url, json={"reason": "support ticket 7"}, headers=admin())
    assert reversed_.status_code == 200
    assert reversed_.json()["reversed_at"] is not None
    again = client.post(url, json={"reason": "twice"}, headers=admin())
    assert (again.status_code, again.json()["error_code"]) == (409, "ALREADY_REVERSED")
    missing = client.post("/v1/redemptions/rdm_x/reversal", json={"reason": "x"}, headers=admin())
    assert missing.status_code == 404
    assert client.get("/v1/budgets", headers=admin()).json()["budgets"][0]["remaining"] == 100
    events = [e["event"] for e in client.get("/v1/ledger", headers=admin()).json()["entries"]]
    assert events == ["budget_set", "redeemed", "reversed"]


def test_pools_and_caps(client) -> None:
    loaded = client.post(
        "/v1/coupon-pools/spring/codes", json={"codes": ["A", "B", "A"]}, headers=admin()
    ).json()
    assert (loaded["added"], loaded["duplicates"], loaded["remaining"]) == (2, 1, 2)
    pool = client.get("/v1/coupon-pools/spring", headers=admin()).json()
    assert pool == {"pool": "spring", "remaining": 2, "total": 2}
    assert client.get("/v1/coupon-pools/none", headers=admin()).status_code == 404
    cap = {"max_redemptions": 3, "period_seconds": 3600}
    assert client.put("/v1/user-caps/points", json=cap, headers=admin()).json()["scope"] == "points"
    assert client.get("/v1/user-caps", headers=admin()).json()["user_caps"] == [
        dict(cap, scope="points")
    ]
    assert client.delete("/v1/user-caps/points", headers=admin()).status_code == 204
    assert client.delete("/v1/user-caps/points", headers=admin()).status_code == 404


def test_admin_bodies_are_validated(client) -> None:
    wrong = client.put(
        "/v1/budgets/points/*", json={"total": "10", "unit": "points"}, headers=admin()
    )
    negative = client.put(
        "/v1/budgets/points/*", json={"total": -1, "unit": "points"}, headers=admin()
    )
    control = client.post("/v1/coupon-pools/p/codes", json={"codes": ["a\nb"]}, headers=admin())
    for response in (wrong, negative, control):
        assert (response.status_code, response.json()["error_code"]) == (422, "INVALID_BODY")


def test_ledger_filters_pages_and_csv(client) -> None:
    for subject in ("ann", "ben", "ann"):
        client.post("/v1/redemptions", json={"token": token(subject)})
    page = client.get("/v1/ledger", params={"subject": "ann", "limit": 1}, headers=admin()).json()
    assert [e["subject"] for e in page["entries"]] == ["ann"]
    rest = client.get(
        "/v1/ledger", params={"subject": "ann", "cursor": page["next_cursor"]}, headers=admin()
    ).json()
    assert [e["subject"] for e in rest["entries"]] == ["ann"]
    assert rest["next_cursor"] is None
    future = client.get("/v1/ledger", params={"since": "2999-01-01T00:00:00Z"}, headers=admin())
    assert future.json()["entries"] == []
    csv = client.get("/v1/ledger", params={"format": "csv"}, headers=admin())
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("seq,at,event,subject")
    assert len(csv.text.splitlines()) == 4
    for params in ({"since": "yesterday"}, {"limit": "0"}, {"format": "xml"}, {"x": "1"}):
        bad = client.get("/v1/ledger", params=params, headers=admin())
        assert (bad.status_code, bad.json()["error_code"]) == (422, "INVALID_QUERY")


def test_issue_keeps_the_providers_message_and_suggestion_for_the_alert(client) -> None:
    body = {
        **ISSUE,
        "message": {"en": "Insufficient card balance.", "zh-CN": "银行卡余额不足"},
        "suggestion": "请更换支付方式或充值后重试",
        "lang": "zh-CN",
    }
    issued = client.post("/v1/tokens", json=body, headers=admin())
    assert issued.status_code == 201, issued.text
    alert = f"/v1/alerts/{issued.json()['alert_id']}"
    accept = {"Accept": "application/json"}
    english = client.get(alert, params={"lang": "en"}, headers=accept).json()["error"]
    chinese = client.get(alert, params={"lang": "zh-CN"}, headers=accept).json()["error"]
    assert english["explanation"] == "Insufficient card balance."
    assert chinese["explanation"] == "银行卡余额不足"
    # The only suggestion is Chinese: the English reader still gets the provider's words.
    assert english["suggestion"] == chinese["suggestion"] == "请更换支付方式或充值后重试"
    # The texts stay with the record: the token itself does not carry them.
    claims = json.dumps(token_claims(issued.json()["token"]), ensure_ascii=False)
    assert "银行卡" not in claims
    assert "Insufficient" not in claims


def token_claims(jws: str) -> dict:
    segment = jws.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


@pytest.mark.parametrize(
    "extra",
    [
        {"message": "line one\nline two"},
        {"message": "bidi \u202e override"},
        {"message": "zero\u200bwidth"},
        {"message": "x" * 501},
        {"message": ""},
        {"message": 5},
        {"message": ["a"]},
        {"message": {}},
        {"message": {"en": "a", "EN": "b"}},
        {"message": {"english!": "a"}},
        {"message": {"en": 1}},
        {"message": {f"l{i:02d}": "x" for i in range(9)}},
        {"suggestion": "tab\there"},
        {"message": "ok", "lang": "not a tag"},
        {"message": "ok", "lang": "x" * 36},
        {"message": {"en": "ok"}, "lang": "en"},
        {"lang": "en"},
    ],
)
def test_bad_provider_texts_are_invalid_body(client, extra) -> None:
    response = client.post("/v1/tokens", json={**ISSUE, **extra}, headers=admin())
    assert (response.status_code, response.json()["error_code"]) == (422, "INVALID_BODY")


def test_unicode_spaces_and_punctuation_are_fine(client) -> None:
    text = "银行卡余额不足\u3000— «insufficient» balance: 100 % (¥)"
    response = client.post("/v1/tokens", json={**ISSUE, "message": text}, headers=admin())
    assert response.status_code == 201, response.text


def _claims_of(token_text: str) -> dict:
    payload = token_text.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_high_value_care_flags_reach_token_alert_ledger_and_pending(client) -> None:
    high = client.post("/v1/tokens", json={**ISSUE, "segment": "high_value"}, headers=admin())
    assert high.status_code == 201, high.text
    issued = high.json()
    assert (issued["priority"], issued["support_flag"]) == (True, True)
    claims = _claims_of(issued["token"])
    assert (claims["priority"], claims["support_flag"]) == (True, True)
    verified = TokenVerifier(
        {"keys": [shared_key().public_jwk()]}, issuer="errdiscount-server", audience="errdiscount"
    ).verify(issued["token"])
    assert (verified.priority, verified.support_flag) == (True, True)

    alert_id = issued["alert_id"]
    alert = client.get(f"/v1/alerts/{alert_id}", headers={"Accept": "application/json"}).json()
    assert (alert["priority"], alert["support_flag"]) == (True, True)
    pending = client.get("/v1/users/alice/compensations", headers=admin()).json()["pending"]
    assert [(p["priority"], p["support_flag"]) for p in pending] == [(True, True)]

    regular = client.post("/v1/tokens", json={**ISSUE, "subject": "bob"}, headers=admin()).json()
    assert "priority" not in _claims_of(regular["token"])
    assert (regular["priority"], regular["support_flag"]) == (False, False)

    assert client.post("/v1/redemptions", json={"token": issued["token"]}).status_code == 201
    entries = client.get("/v1/ledger", params={"subject": "alice"}, headers=admin()).json()
    details = {e["event"]: e["detail"] for e in entries["entries"]}
    for event in ("issued", "redeemed"):
        assert (details[event]["priority"], details[event]["support_flag"]) == (True, True)
    bob = client.get("/v1/ledger", params={"subject": "bob"}, headers=admin()).json()
    assert bob["entries"][0]["detail"]["support_flag"] is False
