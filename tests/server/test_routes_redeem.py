"""POST /v1/redemptions and the read endpoints, against a real server on a real SQLite file."""

from __future__ import annotations

import time

import httpx
import pytest

from errdiscount_sdk import generate_signing_key
from tests.support.server_support import (
    APP_KEY,
    ORIGIN,
    admin,
    issuer,
    running,
    token,
)


@pytest.fixture
def url(tmp_path):
    with running(tmp_path) as base:
        yield base


@pytest.fixture
def client(url):
    with httpx.Client(base_url=url) as http:
        yield http


def error_of(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error_code", "message", "suggestion"}
    return str(body["error_code"])


def test_redeem_returns_the_grant_for_the_tokens_subject(client) -> None:
    response = client.post("/v1/redemptions", json={"token": token("alice")})
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("rdm_")
    assert body["subject"] == "alice"
    assert body["compensation"] == {"kind": "points", "amount": 100, "unit": "points"}
    assert body["grant"] == {"kind": "points", "points": 100}
    assert body["redeemed_at"].endswith("Z")


def test_second_redemption_is_409_already_redeemed(client) -> None:
    minted = token()
    assert client.post("/v1/redemptions", json={"token": minted}).status_code == 201
    again = client.post("/v1/redemptions", json={"token": minted})
    assert again.status_code == 409
    assert error_of(again) == "TOKEN_ALREADY_REDEEMED"


def test_currency_coupon_is_counted_in_cents_and_takes_a_pool_code(client) -> None:
    loaded = client.post(
        "/v1/coupon-pools/coupon/codes", json={"codes": ["SAVE-1"]}, headers=admin()
    )
    assert loaded.json()["added"] == 1
    coupon = {"kind": "coupon", "amount": 2.5, "unit": "USD"}
    first = client.post("/v1/redemptions", json={"token": token(compensation=coupon)})
    assert first.json()["grant"] == {
        "kind": "coupon",
        "coupon_code": "SAVE-1",
        "amount": 2.5,
        "unit": "USD",
    }
    empty = client.post("/v1/redemptions", json={"token": token(compensation=coupon)})
    assert (empty.status_code, error_of(empty)) == (409, "INVENTORY_EXHAUSTED")


def test_budget_exhausted_is_its_own_409(client) -> None:
    client.put("/v1/budgets/points/*", json={"total": 150, "unit": "points"}, headers=admin())
    assert client.post("/v1/redemptions", json={"token": token()}).status_code == 201
    refused = client.post("/v1/redemptions", json={"token": token()})
    assert (refused.status_code, error_of(refused)) == (409, "BUDGET_EXHAUSTED")
    budgets = client.get("/v1/budgets", headers=admin()).json()["budgets"]
    assert budgets[0]["remaining"] == 50


def test_user_cap_reached_is_its_own_409(client) -> None:
    cap = {"max_redemptions": 1, "period_seconds": 86400}
    assert client.put("/v1/user-caps/*", json=cap, headers=admin()).status_code == 200
    assert client.post("/v1/redemptions", json={"token": token("bob")}).status_code == 201
    refused = client.post("/v1/redemptions", json={"token": token("bob")})
    assert (refused.status_code, error_of(refused)) == (409, "USER_CAP_REACHED")
    assert client.post("/v1/redemptions", json={"token": token("carol")}).status_code == 201


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda: token(issuer=issuer(generate_signing_key())), 401, "TOKEN_UNKNOWN_KEY"),
        (
            lambda: token(issuer=issuer(clock=lambda: time.time() - 10 * 86400), ttl=86400),
            422,
            "TOKEN_EXPIRED",
        ),
        (lambda: token(audience="someone-else"), 401, "TOKEN_WRONG_AUDIENCE"),
        (lambda: "not.a.token", 422, "TOKEN_MALFORMED"),
        (lambda: "x" * 9000, 422, "TOKEN_TOO_LARGE"),
        (
            lambda: token(compensation={"kind": "points", "amount": 1.5, "unit": "points"}),
            422,
            "TOKEN_INVALID_CLAIMS",
        ),
    ],
)
def test_refused_tokens_get_specific_codes(client, make, status, code) -> None:
    response = client.post("/v1/redemptions", json={"token": make()})
    assert (response.status_code, error_of(response)) == (status, code)


def test_tampered_signature_is_401_bad_signature(client) -> None:
    head, body, signature = token().split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    response = client.post("/v1/redemptions", json={"token": f"{head}.{body}.{flipped}"})
    assert (response.status_code, error_of(response)) == (401, "TOKEN_BAD_SIGNATURE")


# -- idempotency (IETF draft) ------------------------------------------------------


def test_same_key_same_body_replays_status_and_body_byte_for_byte(client) -> None:
    minted = token()
    headers = {"Idempotency-Key": "key-1"}
    first = client.post("/v1/redemptions", json={"token": minted}, headers=headers)
    second = client.post("/v1/redemptions", json={"token": minted}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers


def test_replay_also_replays_a_refusal(client) -> None:
    minted = token()
    client.post("/v1/redemptions", json={"token": minted})
    headers = {"Idempotency-Key": '"quoted-key"'}
    first = client.post("/v1/redemptions", json={"token": minted}, headers=headers)
    second = client.post("/v1/redemptions", json={"token": minted}, headers=headers)
    assert first.status_code == second.status_code == 409
    assert second.content == first.content
    assert second.headers["Idempotent-Replayed"] == "true"


def test_same_key_different_body_is_422(client) -> None:
    headers = {"Idempotency-Key": "key-2"}
    assert (
        client.post("/v1/redemptions", json={"token": token()}, headers=headers).status_code == 201
    )
    reused = client.post("/v1/redemptions", json={"token": token()}, headers=headers)
    assert (reused.status_code, error_of(reused)) == (422, "IDEMPOTENCY_KEY_REUSED")


def test_keys_are_scoped_per_subject(client) -> None:
    headers = {"Idempotency-Key": "shared"}
    assert (
        client.post("/v1/redemptions", json={"token": token("a")}, headers=headers).status_code
        == 201
    )
    assert (
        client.post("/v1/redemptions", json={"token": token("b")}, headers=headers).status_code
        == 201
    )


@pytest.mark.parametrize("key", ["", "k" * 256, "caf\u00e9", "tab\there"])
def test_invalid_idempotency_keys_are_400(client, key) -> None:
    response = client.post(
        "/v1/redemptions",
        json={"token": token()},
        headers={"Idempotency-Key": key.encode("utf-8")},
    )
    assert (response.status_code, error_of(response)) == (400, "IDEMPOTENCY_KEY_INVALID")


def test_key_in_flight_is_409(tmp_path) -> None:
    # A claim left by a crashed process (older store API: begin without redeem).
    from server_stub.store import open_store

    with running(tmp_path) as url, httpx.Client(base_url=url) as http:
        minted = token("dave")
        import hashlib

        with open_store(f"sqlite:///{tmp_path}/server.db") as store:
            fingerprint = hashlib.sha256(minted.encode()).hexdigest()
            store.begin_idempotent("redeem:dave", "busy", fingerprint)
        response = http.post(
            "/v1/redemptions", json={"token": minted}, headers={"Idempotency-Key": "busy"}
        )
        assert (response.status_code, error_of(response)) == (409, "IDEMPOTENCY_KEY_IN_FLIGHT")
        assert response.headers["Retry-After"] == "1"


class TokenClock:
    """The server's token clock: real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_a_retry_after_the_token_expired_replays_the_grant(tmp_path) -> None:
    from server_stub import create_app
    from tests.support.server import serve
    from tests.support.server_support import settings, shared_key

    clock = TokenClock()
    app = create_app(settings(tmp_path), signing_key=shared_key(), token_clock=clock)
    with serve(app) as url, httpx.Client(base_url=url) as http:
        minted = token("erin", ttl=3600)
        headers = {"Idempotency-Key": "pay-1"}
        first = http.post("/v1/redemptions", json={"token": minted}, headers=headers)
        assert first.status_code == 201
        clock.offset = 2 * 86400  # the token expired long ago; the key is still remembered
        retry = http.post("/v1/redemptions", json={"token": minted}, headers=headers)
        assert (retry.status_code, retry.content) == (201, first.content)
        assert retry.headers["Idempotent-Replayed"] == "true"
        # Without the key, or with another one, the expired token is refused as before.
        bare = http.post("/v1/redemptions", json={"token": minted})
        assert (bare.status_code, error_of(bare)) == (422, "TOKEN_EXPIRED")
        other = http.post(
            "/v1/redemptions", json={"token": minted}, headers={"Idempotency-Key": "pay-2"}
        )
        assert (other.status_code, error_of(other)) == (422, "TOKEN_EXPIRED")


def test_a_forged_token_naming_the_subject_cannot_reach_its_stored_response(client) -> None:
    headers = {"Idempotency-Key": "pay-1"}
    assert (
        client.post("/v1/redemptions", json={"token": token("frank")}, headers=headers).status_code
        == 201
    )
    # Same subject and key, signed by a key the server does not trust: the stored
    # response belongs to another token (fingerprint), so the forgery's refusal stands.
    forged = token("frank", issuer=issuer(generate_signing_key()))
    response = client.post("/v1/redemptions", json={"token": forged}, headers=headers)
    assert (response.status_code, error_of(response)) == (401, "TOKEN_UNKNOWN_KEY")
    assert "Idempotent-Replayed" not in response.headers


# -- bad input: always 4xx with our payload, never 500 -----------------------------


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b"x" * 17000, "application/json", 413, "BODY_TOO_LARGE"),
        (b"{not json", "application/json", 400, "INVALID_JSON"),
        (b"\xff\xfe", "application/json", 400, "INVALID_JSON"),
        (b'{"token": NaN}', "application/json", 400, "INVALID_JSON"),
        (b"[1, 2]", "application/json", 422, "INVALID_BODY"),
        (b'{"token": 5}', "application/json", 422, "INVALID_BODY"),
        (b'{"token": null}', "application/json", 422, "INVALID_BODY"),
        (b'{"token": "a", "subject": "me"}', "application/json", 422, "INVALID_BODY"),
        (b"{}", "application/json", 422, "INVALID_BODY"),
        (b'{"token": "a"}', "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b'{"token": "a"}', "application/json; charset=latin-1", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b"[" * 5000 + b"]" * 5000, "application/json", 422, "INVALID_BODY"),
    ],
)
def test_bad_input_table(client, content, content_type, status, code) -> None:
    response = client.post(
        "/v1/redemptions", content=content, headers={"Content-Type": content_type}
    )
    assert (response.status_code, error_of(response)) == (status, code)


def test_missing_content_type_is_415(client) -> None:
    response = client.post("/v1/redemptions", content=b'{"token": "a"}')
    assert (response.status_code, error_of(response)) == (415, "UNSUPPORTED_MEDIA_TYPE")


def test_streamed_oversized_body_without_length_is_413(client) -> None:
    def chunks():
        for _ in range(40):
            yield b"x" * 1024

    response = client.post(
        "/v1/redemptions", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, error_of(response)) == (413, "BODY_TOO_LARGE")


# -- rate limits --------------------------------------------------------------------


def test_rate_limit_per_ip_is_429_with_retry_after(tmp_path) -> None:
    with (
        running(tmp_path, rate_ip_per_minute=1.0, rate_burst=2.0) as url,
        httpx.Client(base_url=url) as http,
    ):
        codes = [http.post("/v1/redemptions", json={"token": "x"}).status_code for _ in range(3)]
        limited = http.post("/v1/redemptions", json={"token": "x"})
    assert codes[:2] == [422, 422]
    assert (limited.status_code, error_of(limited)) == (429, "RATE_LIMITED")
    assert int(limited.headers["Retry-After"]) >= 1


def test_rate_limit_per_subject(tmp_path) -> None:
    with (
        running(tmp_path, rate_subject_per_minute=1.0, rate_burst=1.0) as url,
        httpx.Client(base_url=url) as http,
    ):
        assert http.post("/v1/redemptions", json={"token": token("eve")}).status_code == 201
        limited = http.post("/v1/redemptions", json={"token": token("eve")})
        other = http.post("/v1/redemptions", json={"token": token("frank")})
    assert (limited.status_code, error_of(limited)) == (429, "RATE_LIMITED")
    assert limited.headers["Retry-After"] == "60"
    assert other.status_code == 201


# -- CORS -----------------------------------------------------------------------------


def test_preflight_from_an_allowed_origin(client) -> None:
    response = client.options(
        "/v1/redemptions",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, idempotency-key",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Idempotency-Key" in response.headers["Access-Control-Allow-Headers"]


@pytest.mark.parametrize(
    ("origin", "method", "asked"),
    [
        ("https://evil.example", "POST", "content-type"),
        (ORIGIN, "DELETE", "content-type"),
        (ORIGIN, "POST", "authorization"),
    ],
)
def test_preflight_denied(client, origin, method, asked) -> None:
    response = client.options(
        "/v1/redemptions",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": asked,
        },
    )
    assert (response.status_code, error_of(response)) == (403, "CORS_ORIGIN_DENIED")
    assert "Access-Control-Allow-Origin" not in response.headers


def test_actual_request_gets_cors_headers_only_for_allowed_origins(client) -> None:
    allowed = client.post("/v1/redemptions", json={"token": token()}, headers={"Origin": ORIGIN})
    denied = client.post(
        "/v1/redemptions", json={"token": token()}, headers={"Origin": "https://evil.example"}
    )
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Idempotent-Replayed" in allowed.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Origin" not in denied.headers


# -- reads ------------------------------------------------------------------------------


def test_get_redemption_needs_a_key(client) -> None:
    created = client.post("/v1/redemptions", json={"token": token()}).json()
    anonymous = client.get(f"/v1/redemptions/{created['id']}")
    assert (anonymous.status_code, error_of(anonymous)) == (401, "UNAUTHORIZED")
    found = client.get(
        f"/v1/redemptions/{created['id']}", headers={"Authorization": f"Bearer {APP_KEY}"}
    )
    assert found.json() == created | {"reversed_at": None}
    missing = client.get("/v1/redemptions/rdm_nope", headers=admin())
    assert (missing.status_code, error_of(missing)) == (404, "REDEMPTION_NOT_FOUND")


def test_compensations_list_redeemed_and_pending(client) -> None:
    issued = client.post(
        "/v1/tokens",
        json={
            "subject": "gina",
            "error_code": "PAY_001",
            "category": "business",
            "severity": "moderate",
        },
        headers=admin(),
    ).json()
    client.post("/v1/redemptions", json={"token": token("gina")})
    listing = client.get(
        "/v1/users/gina/compensations", headers={"Authorization": f"Bearer {APP_KEY}"}
    ).json()
    assert len(listing["redeemed"]) == 1
    assert [p["alert_id"] for p in listing["pending"]] == [issued["alert_id"]]
    assert listing["pending"][0]["alert_url"] == issued["alert_url"]
