"""Text the database drivers cannot encode (lone surrogates) is a 4xx, on both stores."""

from __future__ import annotations

import httpx
import pytest

from tests.support.server_support import admin, running, token

LONE = "\\ud800"  # a JSON escape of an unpaired surrogate: valid JSON, not valid Unicode
ADMIN_BODIES = [
    ("POST", "/v1/tokens", '{"subject": "@", "error_code": "PAY_001", "category": "business",'
     ' "severity": "moderate"}'.replace("@", LONE)),
    ("POST", "/v1/tokens", '{"subject": "u", "error_code": "PAY_001", "category": "business",'
     ' "severity": "moderate", "message": "card @ declined"}'.replace("@", LONE)),
    ("POST", "/v1/tokens", '{"subject": "u", "error_code": "PAY_001", "category": "business",'
     ' "severity": "moderate", "incident": "i-@"}'.replace("@", LONE)),
    ("PUT", "/v1/budgets/points/spring", '{"total": 5, "unit": "@"}'.replace("@", LONE)),
    ("POST", "/v1/coupon-pools/coupon/codes", '{"codes": ["A-1", "B-@"]}'.replace("@", LONE)),
    ("POST", "/v1/redemptions/rdm_x/reversal", '{"reason": "fraud @"}'.replace("@", LONE)),
    ("PUT", "/v1/user-caps/points", '{"max_redemptions": 1, "period_seconds": 60, "@": 1}'.replace("@", LONE)),
]  # fmt: skip


@pytest.fixture
def client(tmp_path, store_url):
    with running(tmp_path, database=store_url) as url, httpx.Client(base_url=url) as http:
        yield http


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_BODIES)
def test_lone_surrogates_in_admin_bodies_are_4xx(client, method, path, body) -> None:
    response = client.request(
        method,
        path,
        content=body.encode(),
        headers={**admin(), "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error_code"] == "INVALID_JSON"
    # The connection stays usable: the next request on it is answered normally.
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    "body",
    ['{"token": "@"}'.replace("@", LONE), '{"token": "a.b.c", "x@": 1}'.replace("@", LONE)],
)
def test_lone_surrogates_in_redemption_bodies_are_4xx(client, body) -> None:
    response = client.post(
        "/v1/redemptions",
        content=body.encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": "k-1"},
    )
    assert (response.status_code, response.json()["error_code"]) == (400, "INVALID_JSON")


def test_a_token_whose_claims_hold_a_lone_surrogate_is_refused_not_500(client) -> None:
    import base64
    import json

    head, _, signature = token().split(".")
    payload = json.dumps({"sub": "\ud800"}).encode()  # ensure_ascii: the escape survives
    forged = f"{head}.{base64.urlsafe_b64encode(payload).rstrip(b'=').decode()}.{signature}"
    response = client.post(
        "/v1/redemptions", json={"token": forged}, headers={"Idempotency-Key": "k-2"}
    )
    assert 400 <= response.status_code < 500
    assert response.json()["error_code"].startswith("TOKEN_")
