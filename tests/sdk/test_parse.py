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


# -- issue 10: any bytes from the wire → ErrorPayload or None, nothing else ----------------

_ANY_KEY = st.one_of(
    st.text(max_size=8), st.integers(), st.none(), st.booleans(), st.tuples(st.integers())
)
foreign_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**5000), max_value=10**5000)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=8)
    | st.just(object()),
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(
            st.sampled_from(["error", "error_code", "code", "message", "data", "x_response",
                             "Response", "errors", "category", "sub_code", "return_code"])
            | _ANY_KEY,
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)  # fmt: skip


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(["error", "code", "msg"]) | _ANY_KEY, foreign_values))
def test_any_decoded_mapping_never_raises(value: dict[Any, Any]) -> None:
    # Non-str keys, huge ints, NaN, bytes, objects: ignored, never raised.
    result = parse_error_payload(value)
    assert result is None or isinstance(result, ErrorPayload)
    if result is not None:
        assert all(isinstance(key, str) for key in result.extensions)


def test_brackets_inside_strings_do_not_fool_the_depth_cap() -> None:
    # ~60 KB: strings full of "]" then 3 000 real levels. The old counter counted the
    # string brackets, went negative and let json.loads recurse: RecursionError.
    body = '{"error_code": "X", "a": [' + '"]]]]]]]]",' * 5000 + "[" * 3000 + "]" * 3000 + "]}"
    assert 50_000 < len(body) < 64 * 1024
    assert parse_error_payload(body.encode()) is None


def test_brackets_inside_strings_do_not_refuse_a_shallow_body() -> None:
    body = {"error_code": "X", "message": "[" * 500 + "{" * 500, "hint": "see [docs]"}
    payload = parse(body)
    assert payload is not None
    assert payload.error_code == "X"


def test_an_unterminated_string_cannot_hide_depth() -> None:
    body = b'{"error_code": "X", "a": "' + b"[" * 100
    assert parse_error_payload(body) is None


@pytest.mark.parametrize(
    "value",
    [
        {1: "x", "error_code": "E", (2,): 3},
        {2: 3, "x_response": {"code": "E"}, None: {}},
        {"code": 10**5000, "msg": "m"},
        {"error": {"code": 10**5000, "message": "m"}},
        {"error_code": "E", "n": float("nan"), "b": b"\x00", "o": object()},
    ],
)
def test_foreign_mappings_are_read_as_plain_json(value: dict[Any, Any]) -> None:
    payload = parse_error_payload(value)
    assert payload is not None
    assert all(isinstance(key, str) for key in payload.extensions)
    assert payload.error_code in (None, "E")


def test_huge_integers_in_json_text_do_not_sink_the_body() -> None:
    payload = parse_error_payload(b'{"code": ' + b"9" * 5000 + b', "msg": "too big"}')
    assert payload is not None
    assert payload.error_code is None
    assert payload.message == "too big"


# -- more of the real world: families the parser was not tuned on ------------------------


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"code": "A0400", "msg": "用户请求参数错误", "data": None}, "A0400", "用户请求参数错误"),
        ({"err_no": 40014, "err_tips": "bad params"}, "40014", "bad params"),
        ({"err_no": 11009, "err_msg": "参数不合法"}, "11009", "参数不合法"),
        ({"data": {"error_code": 2100005, "description": "参数不合法"}, "message": "error"},
         "2100005", "参数不合法"),
        ({"errorCode": "E1", "errorMessage": "Something broke"}, "E1", "Something broke"),
        ({"error_response": {"code": "19", "zh_desc": "token已过期", "en_desc": "Invalid token"}},
         "19", "token已过期"),
        ({"error_response": {"error_msg": "非法参数", "sub_msg": "", "sub_code": "",
                             "error_code": 10000}}, "10000", "非法参数"),
        ({"error": "RecordInvalid", "description": "Record validation errors"},
         "RecordInvalid", "Record validation errors"),
        ({"code": 99991663, "msg": "Invalid access token", "error": {"log_id": "L1"}},
         "99991663", "Invalid access token"),
        ({"errcode": 88, "sub_code": "60011", "sub_msg": "没有调用该接口的权限",
          "errmsg": "ding talk error"}, "60011", "没有调用该接口的权限"),
        ([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
         "INVALID_SESSION_ID", "Session expired or invalid"),
    ],
)  # fmt: skip
def test_more_generic_families(body: Any, code: str, message: str) -> None:
    payload = parse(body)
    assert payload is not None
    assert (payload.error_code, payload.message) == (code, message)


S3_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
    b"<Message>The resource you requested does not exist</Message>"
    b"<Resource>/mybucket/myfoto.jpg</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>"
)


@pytest.mark.parametrize("content_type", ["application/xml", "text/xml; charset=utf-8", None])
def test_s3_style_xml(content_type: str | None) -> None:
    payload = parse_error_payload(S3_ERROR, content_type=content_type, status=404)
    assert payload is not None
    assert payload.source_format == "xml"
    assert payload.error_code == "NoSuchKey"
    assert payload.message == "The resource you requested does not exist"
    assert payload.extensions["RequestId"] == "4442587FB7D0A2F9"


def test_wechat_pay_style_xml() -> None:
    body = (
        "<xml><return_code><![CDATA[SUCCESS]]></return_code><result_code>FAIL</result_code>"
        "<err_code>ORDERPAID</err_code><err_code_des>该订单已支付</err_code_des></xml>"
    ).encode()
    payload = parse_error_payload(body, content_type="text/xml")
    assert payload is not None
    assert (payload.error_code, payload.message) == ("ORDERPAID", "该订单已支付")
    ok = b"<xml><return_code>SUCCESS</return_code><result_code>SUCCESS</result_code></xml>"
    assert parse_error_payload(ok, content_type="text/xml") is None


def test_namespaced_problem_xml() -> None:
    body = (
        b'<problem xmlns="urn:ietf:rfc:7807"><type>https://example.com/probs/out-of-credit</type>'
        b"<title>You do not have enough credit.</title><detail>Balance 30, cost 50.</detail>"
        b"</problem>"
    )
    payload = parse_error_payload(body, content_type="application/problem+xml")
    assert payload is not None
    assert payload.source_format == "problem"
    assert payload.error_code == "https://example.com/probs/out-of-credit"


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n<Error><Code>&lol9;</Code><Message>m</Message></Error>"
)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_billion_laughs_is_refused_before_any_expansion(encoding: str) -> None:
    # UTF-16 hides "<!DOCTYPE" from a byte search: the parser's own handler refuses it.
    body = BILLION_LAUGHS.decode().replace('version="1.0"', f'version="1.0" encoding="{encoding}"')
    assert parse_error_payload(body.encode(encoding), content_type="application/xml") is None


def test_external_entities_are_refused() -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<Error><Code>&x;</Code></Error>"
    )
    assert parse_error_payload(xxe, content_type="application/xml") is None
    undefined = b"<Error><Code>&x;</Code><Message>m</Message></Error>"
    assert parse_error_payload(undefined, content_type="application/xml") is None


def test_xml_caps() -> None:
    deep = b"<Error>" + b"<a>" * 100 + b"</a>" * 100 + b"<Code>X</Code></Error>"
    assert parse_error_payload(deep, content_type="application/xml") is None
    wide = b"<Error><Code>X</Code>" + b"<i/>" * 5000 + b"</Error>"
    assert parse_error_payload(wide, content_type="application/xml") is None


@pytest.mark.parametrize(
    "body",
    [
        b"<html><head><title>502 Bad Gateway</title></head><body><h1>502</h1></body></html>",
        b"<Error><Code>X</Code>",  # not well-formed
        b"<Error/>",
    ],
)
def test_xml_that_is_not_a_structured_error(body: bytes) -> None:
    assert parse_error_payload(body) is None


@settings(max_examples=200)
@given(st.binary(max_size=512))
def test_arbitrary_xml_bytes_never_raise(tail: bytes) -> None:
    result = parse_error_payload(b"<Error>" + tail, content_type="application/xml")
    assert result is None or isinstance(result, ErrorPayload)


def test_a_stated_category_is_read_and_normalised() -> None:
    assert parse({"error_code": "E", "category": "Data-Format"}).category == "data_format"  # type: ignore[union-attr]
    payload = parse({"error_code": "E", "category": "INVALID_REQUEST_ERROR"})
    assert payload is not None
    assert payload.category is None
    assert payload.extensions["category"] == "INVALID_REQUEST_ERROR"
