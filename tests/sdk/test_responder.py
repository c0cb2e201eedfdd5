import json
import logging
from typing import Any

import pytest

from errdiscount_sdk import CompensationPolicy, ProviderError, Severity, parse_error_payload
from errdiscount_sdk._provider.negotiate import choose_language, prefers_problem_json
from errdiscount_sdk._provider.responder import Responder
from errdiscount_sdk._provider.vouchers import Voucher

PAY = ProviderError(
    "PAY_001",
    "Insufficient balance.",
    suggestion="Top up your card.",
    status=402,
    messages={"zh-CN": "银行卡余额不足。"},
    suggestions={"zh-CN": "请充值后重试。"},
)


def _responder(**kwargs: Any) -> Responder:
    values: dict[str, Any] = {"policy": CompensationPolicy.default(), "compensate": True}
    values.update(kwargs)
    return Responder(**values)


def _body(responder: Responder, exc: BaseException, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    values: dict[str, Any] = {"accept": None, "accept_language": None, "user_id": "alice"}
    values.update(kwargs)
    plan = responder.plan(exc, **values)
    answer = responder.render(plan, Voucher("tok.en.sig") if plan.voucher_request else None)
    return answer, json.loads(answer.body)


@pytest.mark.parametrize(
    ("accept", "problem"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("application/problem+json", True),
        ("application/problem+json, application/json", True),
        ("application/json, application/problem+json", False),
        ("application/json;q=0.5, application/problem+json", True),
        ("application/problem+json;q=0.5, application/json", False),
        ("application/problem+json;q=0", False),
        ("application/problem+json, */*;q=0.1", True),
        ("application/*, application/problem+json;q=0.9", False),
        ("application/problem+json;q=bogus", False),
        ("APPLICATION/PROBLEM+JSON", True),
        ("text/html," * 5000 + "application/problem+json", False),  # past the caps
    ],
)
def test_problem_json_only_when_the_client_prefers_it(accept: str | None, problem: bool) -> None:
    assert prefers_problem_json(accept) is problem


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("zh-CN", "zh-CN"),
        ("zh-cn", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("en;q=0.9, zh-CN", "zh-CN"),
        ("fr, zh-CN;q=0.5", "zh-CN"),
        ("fr", "en"),
        ("en-GB", "en"),
        ("*", "en"),
        ("zh-CN;q=0, fr", "en"),
    ],
)
def test_language_lookup(header: str | None, expected: str) -> None:
    assert choose_language(header, ["en", "zh-CN"], "en") == expected


def test_seed_payload_with_a_token_for_a_compensated_error() -> None:
    answer, body = _body(_responder(), PAY)
    assert answer.status == 402
    assert dict(answer.headers)["content-type"] == "application/json"
    assert dict(answer.headers)["cache-control"] == "no-store"
    assert body == {
        "error_code": "PAY_001",
        "message": "Insufficient balance.",
        "suggestion": "Top up your card.",
        "category": "business",
        "discount_token": "tok.en.sig",
        "alert_url": None,
    }
    assert (answer.error_code, answer.category, answer.severity) == ("PAY_001", "business", "minor")


def test_messages_follow_accept_language() -> None:
    answer, body = _body(_responder(), PAY, accept_language="zh-CN,zh;q=0.9")
    assert body["message"] == "银行卡余额不足。" and body["suggestion"] == "请充值后重试。"
    assert dict(answer.headers)["content-language"] == "zh-CN"
    assert answer.body.decode("utf-8").count("银行卡") == 1  # UTF-8, not \\u escapes


def test_problem_json_carries_our_members_as_extensions() -> None:
    responder = _responder(problem_type_base="https://api.example.com/problems/")
    answer, body = _body(responder, PAY, accept="application/problem+json")
    assert dict(answer.headers)["content-type"] == "application/problem+json"
    assert body["type"] == "https://api.example.com/problems/PAY_001"
    assert body["title"] == "Payment Required" and body["status"] == 402
    assert body["detail"] == "Insufficient balance."
    assert body["error_code"] == "PAY_001" and body["discount_token"] == "tok.en.sig"
    # What a client reads from it: our error_code wins over the type URI.
    payload = parse_error_payload(answer.body, content_type="application/problem+json", status=402)
    assert payload.error_code == "PAY_001" and payload.discount_token == "tok.en.sig"
    assert payload.suggestion == "Top up your card."


def test_about_blank_without_a_type_base() -> None:
    _, body = _body(_responder(), PAY, accept="application/problem+json")
    assert body["type"] == "about:blank"


def test_unhandled_exceptions_reveal_nothing_and_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "password=hunter2 at db.internal:5432"
    with caplog.at_level(logging.ERROR, logger="errdiscount_sdk.provider"):
        answer, body = _body(_responder(), RuntimeError(secret), accept_language="zh-CN")
    assert answer.status == 500
    assert body["error_code"] == "INTERNAL_ERROR" and body["message"] == "服务处理请求时出错。"
    assert body["discount_token"] is None  # not compensated by default
    text = answer.body.decode()
    assert "hunter2" not in text and "RuntimeError" not in text and "Traceback" not in text
    assert "hunter2" in caplog.text  # the log keeps what the client must not see


def test_unhandled_compensated_only_when_asked() -> None:
    _, body = _body(_responder(compensate_unhandled=True), RuntimeError("x"))
    assert body["discount_token"] == "tok.en.sig"


@pytest.mark.parametrize(
    ("kwargs", "error", "compensated"),
    [
        ({}, PAY, True),
        ({"compensate": False}, PAY, False),
        ({"policy": None}, PAY, False),
        ({}, ProviderError("PAY_001", "m", compensable=False), False),
        # transient minor errors are not compensated by the default policy ...
        ({}, ProviderError("BUSY", "m", status=503, severity=Severity.MINOR), False),
        # ... unless the provider insists
        ({}, ProviderError("BUSY", "m", status=503, compensable=True), True),
        (
            {
                "policy": CompensationPolicy.from_mapping(
                    {"codes": {"PAY_001": {"compensable": False}}}
                )
            },
            PAY,
            False,
        ),
    ],
)
def test_who_gets_a_voucher(
    kwargs: dict[str, Any], error: ProviderError, compensated: bool
) -> None:
    plan = _responder(**kwargs).plan(error, accept=None, accept_language=None, user_id="alice")
    assert (plan.voucher_request is not None) is compensated


def test_no_user_no_voucher() -> None:
    plan = _responder().plan(PAY, accept=None, accept_language=None, user_id=None)
    assert plan.voucher_request is None


def test_the_voucher_request_carries_the_policy_decision_and_texts() -> None:
    plan = _responder().plan(
        PAY, accept=None, accept_language=None, user_id="alice", segment="high_value"
    )
    request = plan.voucher_request
    assert request is not None
    assert request.subject == "alice" and request.segment == "high_value"
    # minor → 2 USD coupon, doubled for high-value users
    assert (request.compensation.kind, request.compensation.amount) == ("coupon", 4)
    assert request.messages == {"en": "Insufficient balance.", "zh-CN": "银行卡余额不足。"}
    assert request.suggestions == {"en": "Top up your card.", "zh-CN": "请充值后重试。"}


def test_an_unknown_segment_gives_no_voucher_rather_than_an_error() -> None:
    plan = _responder().plan(
        PAY, accept=None, accept_language=None, user_id="alice", segment="platinum"
    )
    assert plan.voucher_request is None
