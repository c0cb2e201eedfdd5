"""The app as a whole: meta routes, error shapes, security headers, the catch-all handler."""

from __future__ import annotations

import logging
import re
import socket
from pathlib import Path

import httpx
from starlette.routing import Route

from server_stub import DEFAULT_ROUTE_GROUPS, create_app
from server_stub.routes._meta import openapi_text
from tests.support.server import serve
from tests.support.server_support import ROOT, running, settings, shared_key


def test_packaged_openapi_matches_docs() -> None:
    assert openapi_text() == (ROOT / "docs" / "openapi.yaml").read_bytes()


def test_meta_routes(tmp_path: Path) -> None:
    with running(tmp_path) as url, httpx.Client(base_url=url) as http:
        health = http.get("/healthz").json()
        jwks = http.get("/.well-known/jwks.json")
        spec = http.get("/openapi.yaml")
        missing = http.get("/nowhere")
        wrong_method = http.delete("/v1/redemptions")
    assert health == {
        "status": "ok",
        "backend": "sqlite",
        "schema_version": health["schema_version"],
    }
    assert jwks.headers["Cache-Control"] == "public, max-age=300"
    assert jwks.json() == {"keys": [shared_key().public_jwk()]}
    assert spec.content == openapi_text()
    assert (missing.status_code, missing.json()["error_code"]) == (404, "NOT_FOUND")
    assert (wrong_method.status_code, wrong_method.json()["error_code"]) == (
        405,
        "METHOD_NOT_ALLOWED",
    )
    assert missing.headers["X-Content-Type-Options"] == "nosniff"
    assert missing.headers["Cache-Control"] == "no-store"


def test_unexpected_errors_are_a_generic_500_and_logged(tmp_path: Path, caplog) -> None:
    async def broken(request):
        raise RuntimeError("secret internal detail")

    def group(state):
        return [Route("/boom", broken)]

    app = create_app(
        settings(tmp_path), signing_key=shared_key(), route_groups=(*DEFAULT_ROUTE_GROUPS, group)
    )
    with caplog.at_level(logging.ERROR, logger="server_stub"), serve(app) as url:
        response = httpx.get(f"{url}/boom")
    assert response.status_code == 500
    assert response.json()["error_code"] == "INTERNAL_ERROR"
    assert "secret" not in response.text
    assert any("secret internal detail" in r.getMessage() or r.exc_info for r in caplog.records)


def _exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send one HTTP/1.1 request on ``sock`` and read exactly its response."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        body += chunk
    return head


def test_a_500_keeps_the_connection_alive(tmp_path: Path) -> None:
    async def broken(request):
        raise RuntimeError("bug")

    def group(state):
        return [Route("/boom", broken)]

    app = create_app(
        settings(tmp_path), signing_key=shared_key(), route_groups=(*DEFAULT_ROUTE_GROUPS, group)
    )
    with serve(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            get = b"GET %s HTTP/1.1\r\nHost: test\r\n\r\n"
            first = _exchange(sock, get % b"/boom")
            assert first.startswith(b"HTTP/1.1 500")
            assert b"connection: close" not in first.lower()
            assert b"x-content-type-options: nosniff" in first.lower()
            # Same socket: the server answers the next request instead of hanging up.
            second = _exchange(sock, get % b"/healthz")
            assert second.startswith(b"HTTP/1.1 200")


def test_signing_key_file_is_created_with_owner_only_permissions(tmp_path: Path) -> None:
    key_path = tmp_path / "key.pem"
    first = create_app(settings(tmp_path, signing_key=str(key_path)))
    assert key_path.stat().st_mode & 0o777 == 0o600
    second = create_app(settings(tmp_path, signing_key=str(key_path)))
    assert first.state.server.jwks_body == second.state.server.jwks_body


def test_trusted_jwks_of_another_issuer_verify_only_that_issuer(tmp_path: Path) -> None:
    import json

    from errdiscount_sdk import TokenIssuer, generate_signing_key

    partner = generate_signing_key()
    jwks = tmp_path / "partner.json"
    jwks.write_text(json.dumps({"keys": [partner.public_jwk()]}))
    with running(tmp_path, trusted_jwks=(f"https://partner.example|{jwks}",)) as url:
        good = TokenIssuer(partner, issuer="https://partner.example", audience="errdiscount")
        forged = TokenIssuer(partner, issuer="errdiscount-server", audience="errdiscount")
        fields = {
            "error_code": "X",
            "category": "business",
            "severity": "minor",
            "compensation": {"kind": "points", "amount": 1, "unit": "points"},
        }
        ok = httpx.post(f"{url}/v1/redemptions", json={"token": good.issue(subject="p", **fields)})
        bad = httpx.post(
            f"{url}/v1/redemptions", json={"token": forged.issue(subject="p", **fields)}
        )
    assert ok.status_code == 201
    assert (bad.status_code, bad.json()["error_code"]) == (401, "TOKEN_UNKNOWN_KEY")


def test_405_names_every_method_of_the_path(tmp_path: Path) -> None:
    with running(tmp_path) as url, httpx.Client(base_url=url) as http:
        caps = http.post("/v1/user-caps/points", json={})
        redemptions = http.get("/v1/redemptions")
    # Two routes serve /v1/user-caps/{scope} (PUT, DELETE): Allow names both.
    assert (caps.status_code, caps.headers["Allow"]) == (405, "DELETE, PUT")
    assert (redemptions.status_code, redemptions.headers["Allow"]) == (405, "POST")


def test_integral_numbers_are_integers_and_empty_lists_are_refused(tmp_path: Path) -> None:
    from tests.support.server_support import admin

    with running(tmp_path) as url, httpx.Client(base_url=url, headers=admin()) as http:
        budget = http.put("/v1/budgets/points/spring", json={"total": 212.0, "unit": "points"})
        assert (budget.status_code, budget.json()["total"]) == (200, 212)
        fraction = http.put("/v1/budgets/points/spring", json={"total": 2.5, "unit": "points"})
        assert fraction.status_code == 422
        empty = http.post("/v1/coupon-pools/coupon/codes", json={"codes": []})
        assert (empty.status_code, empty.json()["error_code"]) == (422, "INVALID_BODY")
        other_unit = http.put("/v1/budgets/points/spring", json={"total": 1, "unit": "days"})
        assert (other_unit.status_code, other_unit.json()["error_code"]) == (
            409,
            "BUDGET_UNIT_CONFLICT",
        )
        cursor = http.get("/v1/ledger", params={"cursor": str(2**53)})
        assert cursor.status_code == 200
