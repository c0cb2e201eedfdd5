"""Business or data format? The word-level rules measured on a table of real-looking bodies.

Each row is a 400/422 body as providers write them (English and Chinese) and the category
a developer reading it would pick: ``data_format`` when the request itself is malformed
(a format, a type, a schema, a required field, invalid JSON), ``business`` when a well-formed
request was refused. The rules are in `errdiscount_sdk._model.rules` and docs/errors.md.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from errdiscount_sdk import BusinessError, ErrorCategory, MalformedRequest, build_error, classify

B, D = ErrorCategory.BUSINESS, ErrorCategory.DATA_FORMAT

TABLE: list[tuple[int, dict[str, Any], ErrorCategory]] = [
    # -- English, business ------------------------------------------------------------------
    (400, {"error_code": "COUPON_NOT_APPLICABLE",
           "message": "This coupon is not valid for items in your cart"}, B),
    (400, {"error_code": "COUPON_EXPIRED", "message": "This coupon expired on 2024-05-01"}, B),
    (400, {"error_code": "PAY_001", "message": "Insufficient balance"}, B),
    (422, {"error_code": "OUT_OF_STOCK", "message": "Only 2 items left in stock"}, B),
    (400, {"error_code": "ORDER_ALREADY_PAID", "message": "The order has already been paid"}, B),
    (400, {"code": "card_declined", "message": "Your card was declined."}, B),
    (400, {"error_code": "MIN_ORDER_AMOUNT",
           "message": "The order total must exceed 50.00 to use this voucher"}, B),
    (400, {"error_code": "LIMIT_REACHED", "message": "You can redeem this offer once per day"}, B),
    (422, {"error_code": "ACCOUNT_FROZEN", "message": "The account is frozen; contact support"}, B),
    (400, {"error_code": "REFUND_WINDOW_CLOSED",
           "message": "Refunds are accepted within 30 days of delivery"}, B),
    (400, {"error_code": "INVALID_COUPON", "message": "The coupon code does not exist"}, B),
    (400, {"error_code": "ADDRESS_UNSERVICEABLE",
           "message": "We do not deliver to this postal code yet"}, B),
    # -- English, data format --------------------------------------------------------------
    (400, {"error_code": "BAD_AMOUNT", "message": "amount must be an integer"}, D),
    (400, {"error_code": "INVALID_JSON", "message": "Request body is not valid JSON"}, D),
    (400, {"error_code": "E1001", "message": "Unexpected token } in JSON at position 42"}, D),
    (422, {"error_code": "VALIDATION_ERROR", "message": "email: value is not a valid email"}, D),
    (400, {"error_code": "MISSING_FIELD", "message": "Field 'currency' is required"}, D),
    (400, {"code": "parameter_missing", "message": "Missing required param: amount."}, D),
    (422, {"error_code": "SCHEMA_MISMATCH", "message": "Body does not match the schema"}, D),
    (400, {"error_code": "InvalidParameterValue",
           "message": "The value of ExpiresAt should be a timestamp"}, D),
    (400, {"error_code": "DATE_FORMAT", "message": "start_date has the wrong format, use YYYY-MM-DD"}, D),
    (400, {"error_code": "E42", "message": "quantity: expected number, got string"}, D),
    (400, {"error_code": "NAME_TOO_LONG", "message": "name is too long (maximum is 64 characters)"}, D),
    (400, {"error_code": "MalformedRequestBody", "message": "Could not parse the request"}, D),
    # -- Chinese, business -----------------------------------------------------------------
    (400, {"error_code": "PAY_001", "message": "银行卡余额不足"}, B),
    (400, {"error_code": "COUPON_EXPIRED", "message": "优惠券已过期"}, B),
    (400, {"error_code": "ORDER_PAID", "message": "该订单已支付，请勿重复支付"}, B),
    (400, {"error_code": "STOCK_EMPTY", "message": "库存不足，请减少购买数量"}, B),
    (400, {"error_code": "COUPON_TYPE", "message": "该优惠券类型不适用于当前商品"}, B),
    (400, {"error_code": "DAILY_LIMIT", "message": "今日领取次数已达上限"}, B),
    (422, {"error_code": "USER_BLOCKED", "message": "账户已被冻结，请联系客服"}, B),
    (400, {"error_code": "ACTIVITY_ENDED", "message": "活动已结束"}, B),
    # -- Chinese, data format --------------------------------------------------------------
    (400, {"error_code": "E400", "message": "数据格式错误"}, D),
    (400, {"error_code": "PARAM_ERROR", "message": "参数错误"}, D),
    (400, {"error_code": "INVALID_PARAMETER", "message": "参数无效：amount 必须为整数"}, D),
    (400, {"error_code": "40035", "message": "不合法的参数"}, D),
    (400, {"error_code": "MISSING_ARG", "message": "缺少必选参数 out_trade_no"}, D),
    (400, {"error_code": "E1002", "message": "请求体解析失败"}, D),
    (422, {"error_code": "E1003", "message": "手机号不能为空"}, D),
    (400, {"error_code": "E1004", "message": "字段类型不匹配：price"}, D),
]  # fmt: skip


def _verdict(status: int, body: dict[str, Any]) -> ErrorCategory:
    request = httpx.Request("POST", "https://api.example.com/v1/pay")
    return classify(httpx.Response(status, json=body, request=request)).category


def _precision(expected: ErrorCategory) -> tuple[float, float]:
    """(precision, recall) of the rules for one category over TABLE."""
    got = [(_verdict(status, body), want) for status, body, want in TABLE]
    said = [want for verdict, want in got if verdict is expected]
    truth = [verdict for verdict, want in got if want is expected]
    precision = sum(want is expected for want in said) / len(said)
    recall = sum(verdict is expected for verdict in truth) / len(truth)
    return precision, recall


def test_the_table_covers_both_languages_and_both_categories() -> None:
    assert len(TABLE) >= 30
    chinese = [row for row in TABLE if any("\u4e00" <= ch <= "\u9fff" for ch in str(row[1]))]
    english = [row for row in TABLE if row not in chinese]
    assert {want for _, _, want in chinese} == {B, D}
    assert {want for _, _, want in english} == {B, D}


@pytest.mark.parametrize(
    ("status", "body", "expected"), TABLE, ids=[b["message"][:40] for _, b, _ in TABLE]
)
def test_each_row(status: int, body: dict[str, Any], expected: ErrorCategory) -> None:
    assert _verdict(status, body) is expected


@pytest.mark.parametrize("category", [B, D])
def test_precision_and_recall_are_perfect_on_the_table(category: ErrorCategory) -> None:
    assert _precision(category) == (1.0, 1.0)


def test_the_issue_examples_raise_the_right_classes() -> None:
    request = httpx.Request("POST", "https://api.example.com/v1/pay")

    def error(body: dict[str, Any]) -> Exception:
        return build_error(httpx.Response(400, json=body, request=request))

    coupon = {"error_code": "C1", "message": "This coupon is not valid for items in your cart"}
    assert isinstance(error(coupon), BusinessError)
    assert isinstance(
        error({"error_code": "A1", "message": "amount must be an integer"}), MalformedRequest
    )
    assert isinstance(error({"error_code": "E400", "message": "数据格式错误"}), MalformedRequest)


@pytest.mark.parametrize(
    ("stated", "status", "expected"),
    [
        ("business", 400, BusinessError),
        ("business", 403, BusinessError),
        ("data_format", 409, MalformedRequest),
        ("Data-Format", 400, MalformedRequest),
    ],
)
def test_a_stated_category_wins(stated: str, status: int, expected: type[Exception]) -> None:
    # Our provider middleware states the category; the words then do not matter.
    body = {"error_code": "X1", "message": "数据格式错误 / amount must be an integer",
            "category": stated}  # fmt: skip
    request = httpx.Request("POST", "https://api.example.com/v1/pay")
    error = build_error(httpx.Response(status, json=body, request=request))
    assert type(error) is expected


def test_a_stated_protocol_category_leaves_the_status_to_decide() -> None:
    body = {"error_code": "X1", "message": "Insufficient balance", "category": "protocol"}
    request = httpx.Request("POST", "https://api.example.com/v1/pay")
    verdict = classify(httpx.Response(400, json=body, request=request))
    assert verdict.category is ErrorCategory.PROTOCOL
