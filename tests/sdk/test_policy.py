from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from errdiscount_sdk import (
    Compensation,
    CompensationPolicy,
    PolicyError,
    Severity,
    TokenVerifier,
)
from errdiscount_sdk._provider.policy import DEFAULT_POLICY
from tests.support.token_helpers import AUDIENCE, ISSUER, issuer_for

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "policy.toml"


@pytest.fixture
def policy() -> CompensationPolicy:
    return CompensationPolicy.default()


@pytest.mark.parametrize(
    ("severity", "expected", "alternative"),
    [
        ("minor", Compensation("coupon", 2, "USD"), Compensation("trial_extension", 1, "days")),
        (
            "moderate",
            Compensation("membership_extension", 30, "days"),
            Compensation("points", 500, "points"),
        ),
        ("severe", Compensation("service_credit", 10, "USD"), None),
    ],
)
def test_graded_table(policy, severity, expected, alternative) -> None:
    decision = policy.decide("X_1", category="protocol", severity=severity)
    assert decision.compensable
    assert decision.reason == "graded"
    assert decision.compensation == expected
    assert decision.all_affected is (severity == "severe")
    assert not decision.priority
    assert not decision.support_flag
    if alternative is not None:
        chosen = policy.decide(
            "X_1", category="protocol", severity=severity, prefer=alternative.kind
        )
        assert chosen.compensation == alternative


def test_high_value_users_get_more_priority_and_support(policy) -> None:
    decision = policy.decide("X_1", category="network", severity="moderate", segment="high_value")
    assert decision.compensation == Compensation("membership_extension", 60, "days")
    assert decision.priority
    assert decision.support_flag


def test_new_users_get_a_retry_chance(policy) -> None:
    decision = policy.decide("X_1", category="network", severity="minor", segment="new")
    assert decision.compensation == Compensation("retry_chance", 7, "days")
    severe = policy.decide("X_1", category="network", severity="severe", segment="new")
    assert severe.compensation is not None
    assert severe.compensation.kind == "service_credit"


def test_transient_blips_are_not_compensated_unless_severe(policy) -> None:
    blip = policy.decide("X_1", category="network", severity="minor", transient=True)
    assert not blip.compensable
    assert blip.reason == "transient"
    assert blip.compensation is None
    outage = policy.decide("X_1", category="network", severity="severe", transient=True)
    assert outage.compensable
    generous = CompensationPolicy({**DEFAULT_POLICY, "compensate_transient": True})
    assert generous.is_compensable("X_1", category="network", severity="minor", transient=True)


def test_categories_and_code_rules() -> None:
    policy = CompensationPolicy.from_file(EXAMPLE)
    payment = policy.decide("PAY_001", category="business", severity="minor", segment="high_value")
    assert payment.severity is Severity.MODERATE
    assert payment.reason == "code_rule"
    assert payment.compensation == Compensation("points", 1600, "points")
    auth = policy.decide("AUTH_EXPIRED", category="protocol", severity="severe")
    assert not auth.compensable
    assert auth.reason == "code_rule"
    narrow = CompensationPolicy({**DEFAULT_POLICY, "compensable_categories": ["network"]})
    assert narrow.decide("X", category="business", severity="minor").reason == "category"


def test_example_file_equals_defaults_apart_from_codes() -> None:
    data = tomllib.loads(EXAMPLE.read_text())
    data.pop("codes")
    assert json.loads(json.dumps(data)) == json.loads(
        json.dumps({k: v for k, v in DEFAULT_POLICY.items() if k != "codes"})
    )


def test_json_file(tmp_path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(
        json.dumps({"version": 1, "token_ttl_days": 7, "severity": DEFAULT_POLICY["severity"]})
    )
    policy = CompensationPolicy.from_file(path)
    assert policy.token_ttl.days == 7


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"version": 2}, "version"),
        ({"token_ttl_days": 0}, "token_ttl_days"),
        ({"compensate_transient": "no"}, "compensate_transient"),
        ({"compensable_categories": ["cosmic"]}, "compensable_categories"),
        ({"surprise": 1}, "policy.surprise"),
        ({"severity": {"minor": [], "moderate": [], "severe": []}}, "severity.minor"),
        (
            {
                "severity": {
                    **DEFAULT_POLICY["severity"],
                    "minor": [{"kind": "coupon", "amount": -1, "unit": "USD"}],
                }
            },
            "severity.minor[0].amount",
        ),
        (
            {
                "severity": {
                    **DEFAULT_POLICY["severity"],
                    "severe": {"kind": "coupon", "amount": 1, "unit": "days"},
                }
            },
            "severity.severe[0].unit",
        ),
        ({"segments": {"vip": {}}}, "segments.vip"),
        ({"segments": {"high_value": {"multiplier": 0}}}, "segments.high_value.multiplier"),
        (
            {
                "segments": {
                    "new": {"compensation": {"minor": {"kind": "x", "amount": 1, "unit": "days"}}}
                }
            },
            "segments.new.compensation.minor.kind",
        ),
        ({"codes": {"PAY_001": {"compensable": "yes"}}}, "codes.PAY_001.compensable"),
        ({"codes": {"PAY_001": {"severity": "awful"}}}, "codes.PAY_001.severity"),
        ({"codes": {"PAY_001": {"refund": True}}}, "codes.PAY_001.refund"),
        (
            {
                "codes": {
                    "PAY_001": {"compensation": {"kind": "points", "amount": 5, "unit": "USD"}}
                }
            },
            "codes.PAY_001.compensation.unit",
        ),
    ],
)
def test_errors_name_the_bad_field(data, field) -> None:
    with pytest.raises(PolicyError) as info:
        CompensationPolicy(data)
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("p.toml", "version = ", "TOML"),
        ("p.json", "{", "JSON"),
        ("p.yaml", "version: 1", ".toml or .json"),
        ("p.toml", b"\xff\xfe", "UTF-8"),
    ],
)
def test_bad_files(tmp_path, name, content, match) -> None:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(PolicyError, match=match):
        CompensationPolicy.from_file(path)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        CompensationPolicy.from_file(tmp_path / "absent.toml")


def test_decide_rejects_unknown_inputs(policy) -> None:
    for kwargs in (
        {"category": "x", "severity": "minor"},
        {"category": "network", "severity": "x"},
    ):
        with pytest.raises(PolicyError):
            policy.decide("X", **kwargs)
    with pytest.raises(PolicyError, match="segment"):
        policy.decide("X", category="network", severity="minor", segment="vip")


def test_error_payload_with_a_verifiable_token(policy) -> None:
    issuer = issuer_for()
    body = policy.error_payload(
        "PAY_002",
        message="Payment failed",
        suggestion="Try another card",
        category="business",
        severity="moderate",
        subject="user-7",
        issuer=issuer,
        segment="high_value",
        alert_url="https://status.example.com/incidents/9",
        incident="INC-9",
    )
    assert set(body) == {"error_code", "message", "suggestion", "discount_token", "alert_url"}
    assert body["alert_url"] == "https://status.example.com/incidents/9"
    token = TokenVerifier(issuer.jwks(), issuer=ISSUER, audience=AUDIENCE).verify(
        body["discount_token"], subject="user-7"
    )
    assert token.compensation == Compensation("membership_extension", 60, "days")
    assert (token.segment, token.incident, token.error.code) == ("high_value", "INC-9", "PAY_002")
    assert token.expires_at - token.issued_at == policy.token_ttl


def test_error_payload_without_compensation(policy) -> None:
    blip = policy.error_payload(
        "NET_1",
        message="Timeout",
        category="network",
        severity="minor",
        transient=True,
        subject="u",
        issuer=issuer_for(),
    )
    assert blip["discount_token"] is None
    no_issuer = policy.error_payload("NET_1", message="x", category="network", severity="minor")
    assert no_issuer == {
        "error_code": "NET_1",
        "message": "x",
        "suggestion": None,
        "discount_token": None,
        "alert_url": None,
    }
