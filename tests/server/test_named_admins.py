"""Named admin keys: NAME=KEY parsing, and the name recorded as the ledger's actor."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from errdiscount_sdk import ConfigurationError
from server_stub._settings import Settings, settings_from_args, worker_environment
from server_stub.web._named_keys import NamedKey, parse_named_key, parse_named_keys
from tests.support.server_support import ADMIN_KEY, running, token

OPS_KEY = "ops-key-0123456789abcdef"
AUDIT_KEY = "audit-key-0123456789abcdef"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (f"ops={OPS_KEY}", NamedKey("ops", OPS_KEY)),
        (OPS_KEY, NamedKey("admin", OPS_KEY)),
        # base64 padding: what follows "=" is no key, so the whole entry is the key
        ("c2VjcmV0LXNlY3JldC1rZXk=", NamedKey("admin", "c2VjcmV0LXNlY3JldC1rZXk=")),
        # a name must look like one; otherwise the "=" is part of a bare key
        (f"bad!name={OPS_KEY}", NamedKey("admin", f"bad!name={OPS_KEY}")),
        (f"=={OPS_KEY}", NamedKey("admin", f"=={OPS_KEY}")),
        (f"ci.bot@example={OPS_KEY}", NamedKey("ci.bot@example", OPS_KEY)),
    ],
)
def test_named_and_bare_entries(entry: str, expected: NamedKey) -> None:
    assert parse_named_key(entry, default="admin", what="--admin-key") == expected


@pytest.mark.parametrize("entry", ["short", "ops=short", f"ops={OPS_KEY} x", ""])
def test_bad_entries_are_refused_without_echoing_the_key(entry: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_named_key(entry, default="admin", what="--admin-key")
    assert "--admin-key" in str(caught.value)
    if entry:
        assert entry not in str(caught.value)


def test_a_key_given_twice_is_refused_and_a_name_may_have_two_keys() -> None:
    with pytest.raises(ConfigurationError, match="twice"):
        parse_named_keys([f"a={OPS_KEY}", f"b={OPS_KEY}"], default="admin", what="--admin-key")
    keys = parse_named_keys([f"ops={OPS_KEY}", f"ops={AUDIT_KEY}"], default="x", what="k")
    assert [k.name for k in keys] == ["ops", "ops"]
    assert OPS_KEY not in repr(keys)


def test_flags_repeat_and_the_environment_is_whitespace_separated() -> None:
    from_flags = settings_from_args(
        ["--admin-key", f"ops={OPS_KEY}", "--admin-key", ADMIN_KEY], environ={}
    )
    assert [(k.name, k.key) for k in from_flags.admin_keys()] == [
        ("ops", OPS_KEY),
        ("admin", ADMIN_KEY),
    ]
    from_env = settings_from_args(
        [], environ={"ERRDISCOUNT_ADMIN_KEY": f"ops={OPS_KEY} {ADMIN_KEY}"}
    )
    assert from_env == from_flags
    assert settings_from_args([], environ=worker_environment(from_flags)) == from_flags
    assert OPS_KEY not in repr(from_flags)
    with pytest.raises(ConfigurationError):
        Settings(admin_key=("ops=short-key",))


def _ledger(url: str, key: str) -> list[dict[str, object]]:
    response = httpx.get(f"{url}/v1/ledger", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    entries: list[dict[str, object]] = response.json()["entries"]
    return entries


def test_every_admin_action_records_the_key_name_as_actor(tmp_path) -> None:
    keys = (f"ops={OPS_KEY}", f"audit={AUDIT_KEY}", ADMIN_KEY)
    with running(tmp_path, admin_key=keys) as url, httpx.Client(base_url=url) as http:
        ops = {"Authorization": f"Bearer {OPS_KEY}"}
        audit = {"Authorization": f"Bearer {AUDIT_KEY}"}
        bare = {"Authorization": f"Bearer {ADMIN_KEY}"}
        assert http.put(
            "/v1/budgets/points/*", json={"total": 1000, "unit": "points"}, headers=ops
        ).is_success
        assert http.post("/v1/coupon-pools/coupon/codes", json={"codes": ["C1"]}, headers=audit)
        assert http.put(
            "/v1/user-caps/points", json={"max_redemptions": 5, "period_seconds": 60}, headers=bare
        ).is_success
        assert http.delete("/v1/user-caps/points", headers=ops).status_code == 204
        issued = http.post(
            "/v1/tokens",
            json={
                "subject": "bob",
                "error_code": "PAY_001",
                "category": "business",
                "severity": "minor",
            },
            headers=audit,
        )
        assert issued.status_code == 201
        redeemed = http.post("/v1/redemptions", json={"token": token("alice")})
        assert redeemed.status_code == 201
        reversed_ = http.post(
            f"/v1/redemptions/{redeemed.json()['id']}/reversal",
            json={"reason": "test"},
            headers=ops,
        )
        assert reversed_.status_code == 200
        entries = _ledger(url, AUDIT_KEY)
        csv_rows = list(
            csv.DictReader(io.StringIO(http.get("/v1/ledger?format=csv", headers=ops).text))
        )
    assert [(e["event"], e["actor"]) for e in entries] == [
        ("budget_set", "ops"),
        ("codes_loaded", "audit"),
        ("cap_set", "admin"),
        ("cap_removed", "ops"),
        ("issued", "audit"),
        ("redeemed", None),  # a token holder, not an admin
        ("reversed", "ops"),
    ]
    cap = entries[2]
    assert cap["detail"] == {"scope": "points", "max_redemptions": 5, "period_seconds": 60}
    assert [row["actor"] for row in csv_rows] == [
        "ops",
        "audit",
        "admin",
        "ops",
        "audit",
        "",
        "ops",
    ]


def test_removing_a_missing_cap_writes_no_ledger_row(tmp_path) -> None:
    with running(tmp_path) as url:
        response = httpx.delete(
            f"{url}/v1/user-caps/none", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        assert response.status_code == 404
        assert _ledger(url, ADMIN_KEY) == []
