"""ES256 tokens as any JOSE library mints them: accepted, and the s -> n - s twin redeems once.

Redemption is keyed on (iss, jti), never on the token string, so accepting both
ECDSA spellings (as RFC 7518 does) cannot turn one voucher into two grants.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import jwt
import pytest

from errdiscount_sdk import generate_signing_key
from server_stub import create_app
from tests.support.server import serve
from tests.support.server_support import APP_KEY, AUDIENCE, ISSUER, issuer, settings
from tests.support.token_helpers import P256_N

ES_KEY = generate_signing_key("ES256")


@pytest.fixture
def url(tmp_path) -> Iterator[str]:
    with serve(create_app(settings(tmp_path), signing_key=ES_KEY)) as base:
        yield base


def _twin(token: str) -> str:
    head, payload, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    s = int.from_bytes(raw[32:], "big")
    flipped = raw[:32] + (P256_N - s).to_bytes(32, "big")
    return f"{head}.{payload}.{base64.urlsafe_b64encode(flipped).rstrip(b'=').decode()}"


def _voucher(subject: str) -> str:
    return issuer(ES_KEY).issue(
        subject=subject,
        error_code="PAY_001",
        category="business",
        severity="moderate",
        compensation={"kind": "points", "amount": 100, "unit": "points"},
    )


def _redeemed(url: str, subject: str) -> list[object]:
    listing = httpx.get(
        f"{url}/v1/users/{subject}/compensations", headers={"Authorization": f"Bearer {APP_KEY}"}
    ).json()
    return list(listing["redeemed"])


@pytest.mark.parametrize("twin_first", [False, True])
def test_the_twin_is_redeemed_once(url, twin_first) -> None:
    original = _voucher("tara")
    twin = _twin(original)
    assert twin != original
    first, second = (twin, original) if twin_first else (original, twin)
    granted = httpx.post(f"{url}/v1/redemptions", json={"token": first})
    assert granted.status_code == 201, granted.text  # both spellings verify
    again = httpx.post(f"{url}/v1/redemptions", json={"token": second})
    assert again.status_code == 409
    assert again.json()["error_code"] == "TOKEN_ALREADY_REDEEMED"
    assert len(_redeemed(url, "tara")) == 1


def test_a_pyjwt_minted_es256_token_redeems(url) -> None:
    """PyJWT does not normalise s: about half its ES256 tokens are high-S."""
    fresh = issuer(ES_KEY).issue(
        subject="uma",
        error_code="PAY_001",
        category="business",
        severity="moderate",
        compensation={"kind": "points", "amount": 100, "unit": "points"},
    )
    claims = jwt.decode(fresh, ES_KEY.private_key.public_key(), algorithms=["ES256"],
                        audience=AUDIENCE, issuer=ISSUER)  # fmt: skip
    outcomes = []
    for i in range(8):  # eight fresh tokens: P(no high-S among them) = 1/256
        claims["jti"] = f"pyjwt-minted-token-{i:04d}"
        token = jwt.encode(
            claims, ES_KEY.private_key, algorithm="ES256",
            headers={"kid": ES_KEY.kid, "typ": "errdiscount+jwt"},
        )  # fmt: skip
        outcomes.append(httpx.post(f"{url}/v1/redemptions", json={"token": token}).status_code)
    assert outcomes == [201] * 8
