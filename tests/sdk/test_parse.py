import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from errdiscount_sdk import ErrorPayload, parse_error_payload

SEED = {
    "error_code": "PAY_001",
    "message": "银行卡余额不足",
    "suggestion": "Change the payment method or top up, then retry",
    "discount_token": "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2ln",
    "alert_url": "https://alerts.example.com/v1/alerts/a1",
    "request_id": "r-1",
}


def parse(body: Any, **kwargs: Any) -> ErrorPayload | None:
    if isinstance(body, dict | list):
        body = json.dumps(body).encode()
    return parse_error_payload(body, **kwargs)


def test_flat_seed_shape() -> None:
    payload = parse(SEED, content_type="application/json", status=402)
    assert payload is not None
    assert payload.source_format == "flat"
    assert payload.error_code == "PAY_001"
    assert payload.message == "银行卡余额不足"
    assert payload.suggestion.startswith("Change")
    assert payload.discount_token == SEED["discount_token"]
    assert payload.alert_url == SEED["alert_url"]
    assert payload.status == 402
    assert dict(payload.extensions) == {"request_id": "r-1"}


def test_accepts_str_and_decoded_mapping() -> None:
    assert parse_error_payload(json.dumps(SEED)) == parse_error_payload(SEED)
    assert parse_error_payload(SEED).error_code == "PAY_001"  # type: ignore[union-attr]


def test_rfc9457_with_our_extensions() -> None:
    body = {
        "type": "https://errors.example.com/payment/insufficient-funds",
        "title": "Insufficient funds",
        "status": 400,
        "detail": "Your balance is 30, but that costs 50.",
        "instance": "/payments/123",
        "error_code": "PAY_001",
        "suggestion": "Top up",
        "discount_token": "a.b.c",
        "alert_url": "https://alerts.example.com/x",
        "balance": 30,
    }
    payload = parse(body, content_type="application/problem+json", status=402)
    assert payload is not None
    assert payload.source_format == "problem"
    assert payload.error_code == "PAY_001"
    assert payload.message == "Your balance is 30, but that costs 50."
    assert payload.title == "Insufficient funds"
    assert payload.type_uri == body["type"]
    assert payload.instance == "/payments/123"
    assert payload.suggestion == "Top up"
    assert payload.discount_token == "a.b.c"
    assert payload.status == 402  # the HTTP status wins over the body's
    assert dict(payload.extensions) == {"balance": 30}


def test_rfc9457_code_defaults_to_type_and_ignores_wrong_types() -> None:
    body = {"type": "https://e.example/probs/x", "title": 42, "detail": ["no"], "status": "400"}
    payload = parse(body, content_type="application/problem+json")
    assert payload is not None
    assert payload.error_code == "https://e.example/probs/x"
    assert payload.message is None
    assert payload.title is None
    assert payload.status is None


def test_rfc9457_about_blank_uses_title() -> None:
    payload = parse({"type": "about:blank", "title": "Not Found", "status": 404})
    assert payload is not None
    assert payload.error_code is None
    assert payload.message == "Not Found"
    assert payload.status == 404


def test_google_aip193() -> None:
    body = {
        "error": {
            "code": 429,
            "message": "Quota exceeded.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "RATE_LIMIT_EXCEEDED",
                    "domain": "googleapis.com",
                    "metadata": {"service": "x.googleapis.com"},
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3.5s"},
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [{"description": "docs", "url": "https://docs.example.com/q"}],
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "zh-CN",
                    "message": "配额已用尽",
                },
            ],
        }
    }
    payload = parse(body)
    assert payload is not None
    assert payload.source_format == "google"
    assert payload.error_code == "RATE_LIMIT_EXCEEDED"
    assert payload.message == "Quota exceeded."
    assert payload.retry_after == 3.5
    assert payload.help_url == "https://docs.example.com/q"
    assert payload.localized_message == "配额已用尽"
    assert payload.status == 429
    assert "details" in payload.extensions


def test_google_without_error_info_uses_status_enum() -> None:
    payload = parse({"error": {"code": 404, "message": "gone", "status": "NOT_FOUND"}})
    assert payload is not None
    assert payload.error_code == "NOT_FOUND"


def test_google_rewrapped_as_a_string() -> None:
    inner = {
        "error": {
            "code": 400,
            "message": "API key not valid.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            ],
        }
    }
    body = {"error": {"message": json.dumps(inner), "code": 400, "status": "Bad Request"}}
    payload = parse(body)
    assert payload is not None
    assert payload.error_code == "API_KEY_INVALID"
    assert payload.message == "API key not valid."


def test_microsoft() -> None:
    body = {
        "error": {
            "code": "BadArgument",
            "message": "Multiple errors in ContactInfo data",
            "target": "ContactInfo",
            "details": [{"code": "NullValue", "target": "PhoneNumber", "message": "x"}],
            "innererror": {"code": "PasswordReuseNotAllowed"},
        }
    }
    payload = parse(body, status=400)
    assert payload is not None
    assert payload.source_format == "microsoft"
    assert payload.error_code == "BadArgument"
    assert payload.target == "ContactInfo"
    assert set(payload.extensions) == {"details", "innererror"}


def test_stripe() -> None:
    body = {
        "error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card was declined.",
            "param": "card",
            "doc_url": "https://stripe.com/docs/error-codes/card-declined",
        }
    }
    payload = parse(body, status=402)
    assert payload is not None
    assert payload.source_format == "stripe"
    assert payload.error_code == "card_declined"
    assert payload.target == "card"
    assert payload.help_url.endswith("card-declined")
    assert payload.extensions["decline_code"] == "insufficient_funds"


def test_stripe_type_only_falls_back_to_type() -> None:
    payload = parse({"error": {"type": "idempotency_error"}})
    assert payload is not None
    assert payload.error_code == "idempotency_error"


def test_our_members_inside_an_envelope() -> None:
    payload = parse({"error": {"code": "PAY_001", "message": "m", "discount_token": "t.t.t"}})
    assert payload is not None
    assert payload.discount_token == "t.t.t"
    assert "discount_token" not in payload.extensions


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"error": "invalid_grant", "error_description": "expired"}, "invalid_grant", "expired"),
        ({"ok": False, "error": "channel_not_found"}, "channel_not_found", None),
        ({"status": 404, "error": "Not Found", "path": "/x"}, None, "Not Found"),
        (
            {"__type": "com.amazon#ResourceNotFoundException", "message": "m"},
            "ResourceNotFoundException",
            "m",
        ),
        ({"__type": "ns#FooError:http://internal/x"}, "FooError", None),
        (
            {
                "kind": "Status",
                "status": "Failure",
                "reason": "NotFound",
                "message": "m",
                "code": 404,
            },
            "NotFound",
            "m",
        ),
        ({"code": 20404, "message": "not found", "more_info": "https://x"}, "20404", "not found"),
        ({"errcode": 40013, "errmsg": "invalid appid"}, "40013", "invalid appid"),
        ({"error_code": 110, "error_msg": "Access token invalid"}, "110", "Access token invalid"),
        (
            {"Code": "InvalidImageId.NotFound", "Message": "m", "RequestId": "r"},
            "InvalidImageId.NotFound",
            "m",
        ),
        (
            {"Response": {"Error": {"Code": "AuthFailure", "Message": "m"}, "RequestId": "r"}},
            "AuthFailure",
            "m",
        ),
        (
            {
                "alipay_trade_pay_response": {
                    "code": "40004",
                    "msg": "Business Failed",
                    "sub_code": "ACQ.X",
                    "sub_msg": "m",
                },
                "sign": "s",
            },
            "ACQ.X",
            "m",
        ),
        (
            {
                "message": "Validation Failed",
                "errors": [{"resource": "Issue", "code": "missing_field"}],
            },
            "missing_field",
            "Validation Failed",
        ),
        (
            {"errors": [{"status": "422", "detail": "First name too short"}]},
            None,
            "First name too short",
        ),
        (
            {
                "errors": [{"message": "cannot fetch", "extensions": {"code": "CAN_NOT_FETCH"}}],
                "data": None,
            },
            "CAN_NOT_FETCH",
            "cannot fetch",
        ),
        ({"errors": "Invalid API key"}, None, "Invalid API key"),
        ({"errors": {"title": ["can't be blank"]}}, None, "can't be blank"),
        ({"detail": "Item not found"}, None, "Item not found"),
        (
            {"detail": [{"loc": ["body", "x"], "msg": "not an int", "type": "int_parsing"}]},
            "int_parsing",
            "not an int",
        ),
        ({"amount": ["A valid integer is required."]}, None, "A valid integer is required."),
        (
            {
                "name": "INVALID_REQUEST",
                "message": "m",
                "details": [{"issue": "CAPTURE_STATUS_NOT_VALID", "description": "d"}],
            },
            "CAPTURE_STATUS_NOT_VALID",
            "d",
        ),
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "overloaded_error",
            "Overloaded",
        ),
        (
            {"code": "unavailable", "message": "overloaded: back off and retry"},
            "unavailable",
            "overloaded: back off and retry",
        ),
    ],
)
def test_common_flat_families(body: dict[str, Any], code: str | None, message: str | None) -> None:
    payload = parse(body)
    assert payload is not None
    assert payload.error_code == code
    assert payload.message == message


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
        (b"<html><body><h1>502 Bad Gateway</h1></body></html>", None),
        (b"upstream connect error or disconnect/reset before headers", "text/plain"),
        (b'{"error_code": "X"}', "text/html"),  # the media type says it is not JSON
        (b"", "application/json"),
        (b"   ", None),
        (None, None),
        (b"null", None),
        (b"42", None),
        (b'"just a string"', None),
        (b"[]", None),
        (b"{}", None),
        (b'{"foo": 1, "bar": [1, 2]}', None),
        (b'{"error_code": "X"', "application/json"),  # truncated
        (b"\xff\xfe{}", None),
        (b'{"message": 5, "code": true}', None),
    ],
)
def test_not_structured(body: bytes | None, content_type: str | None) -> None:
    assert parse_error_payload(body, content_type=content_type) is None


def test_trailing_commas_are_tolerated() -> None:
    payload = parse_error_payload(b'{"error": {"code": "Bad", "message": "m",},}')
    assert payload is not None
    assert payload.error_code == "Bad"


def test_json_wrapped_in_an_array() -> None:
    payload = parse_error_payload(
        b'[{"error": {"code": 400, "message": "m", "status": "INVALID_ARGUMENT"}}]'
    )
    assert payload is not None
    assert payload.error_code == "INVALID_ARGUMENT"


def test_body_over_the_size_cap_is_not_parsed() -> None:
    body = json.dumps({"error_code": "X", "message": "m", "pad": "x" * 70_000}).encode()
    assert parse_error_payload(body) is None
    assert parse_error_payload(body.decode()) is None


def test_deep_nesting_is_refused_quickly() -> None:
    deep = b'{"error_code": "X", "a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    assert parse_error_payload(deep[: 64 * 1024]) is None
    nested: dict[str, Any] = {"error_code": "X"}
    node = nested
    for _ in range(100):
        node["n"] = {}
        node = node["n"]
    assert parse_error_payload(nested) is None


def test_long_strings_are_truncated() -> None:
    payload = parse({"error_code": "X", "message": "m" * 20_000})
    assert payload is not None
    assert len(payload.message) <= 4096


def test_oversized_or_non_ascii_token_is_dropped_but_the_rest_kept() -> None:
    payload = parse({"error_code": "X", "discount_token": "t" * 9000})
    assert payload is not None
    assert payload.discount_token is None
    assert payload.error_code == "X"
    payload = parse({"error_code": "X", "discount_token": "tök.en.x"})
    assert payload is not None and payload.discount_token is None


def test_repr_hides_the_token() -> None:
    payload = parse(SEED)
    assert SEED["discount_token"] not in repr(payload)


def test_payload_is_frozen() -> None:
    payload = parse(SEED)
    assert payload is not None
    with pytest.raises(AttributeError):
        payload.error_code = "Y"  # type: ignore[misc]
    with pytest.raises(TypeError):
        payload.extensions["x"] = 1  # type: ignore[index]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                [
                    "error",
                    "error_code",
                    "code",
                    "message",
                    "type",
                    "title",
                    "status",
                    "detail",
                    "details",
                    "errors",
                    "discount_token",
                    "alert_url",
                    "@type",
                    "reason",
                    "Response",
                    "Error",
                    "x_response",
                    "__type",
                    "kind",
                    "links",
                    "retryDelay",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=300)
@given(
    json_values,
    st.sampled_from([None, "application/json", "application/problem+json", "text/html"]),
    st.one_of(st.none(), st.integers()),
)
def test_arbitrary_json_never_raises(
    value: Any, content_type: str | None, status: int | None
) -> None:
    result = parse_error_payload(json.dumps(value), content_type=content_type, status=status)
    assert result is None or isinstance(result, ErrorPayload)
    if isinstance(value, dict):
        assert parse_error_payload(value) is None or isinstance(
            parse_error_payload(value), ErrorPayload
        )


@settings(max_examples=300)
@given(st.binary(max_size=2048), st.one_of(st.none(), st.text(max_size=30)))
def test_arbitrary_bytes_never_raise(body: bytes, content_type: str | None) -> None:
    result = parse_error_payload(body, content_type=content_type)
    assert result is None or isinstance(result, ErrorPayload)


@given(st.one_of(st.integers(), st.floats(), st.lists(st.integers()), st.just(object())))
def test_wrong_argument_types_never_raise(body: Any) -> None:
    assert parse_error_payload(body, content_type=body, status=body) is None
