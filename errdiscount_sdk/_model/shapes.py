"""Shape recognisers for `parse_error_payload`: one decoded JSON object in, `Fields` out.

Each recogniser reads members defensively: a member of the wrong type counts
as absent (RFC 9457 §3.1), never as an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from .wire import CATEGORY, PAYLOAD_MEMBERS, STATED_CATEGORIES

__all__ = ["Fields", "recognise_document"]

_OUR_MEMBERS = PAYLOAD_MEMBERS
# Read in this order; the first member present (and of the right type) wins.
_CODE_KEYS = (
    "code", "errcode", "errorCode", "error_code", "err_code", "errCode", "err_no", "errNo",
    "Code", "name",
)  # fmt: skip
_MESSAGE_KEYS = (
    "message", "msg", "errmsg", "error_msg", "errMsg", "err_msg", "errorMessage",
    "error_message", "errorMsg", "err_tips", "Message", "error_description", "description",
    "zh_desc", "en_desc", "error_summary",
)  # fmt: skip
# Integers wider than this are not codes (and str() of a huge int raises).
_MAX_CODE_INT_BITS = 128
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
_OAUTH_CODES = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
        "unsupported_response_type",
        "server_error",
        "temporarily_unavailable",
        "invalid_token",
        "insufficient_scope",
    }
)
_GOOGLE_DURATION = re.compile(r"(\d{1,9})(?:\.(\d{1,9}))?s")


@attrs.define
class Fields:
    """What a recogniser found; `_parse._build` turns it into an `ErrorPayload`."""

    source_format: str
    error_code: str | None = None
    message: str | None = None
    suggestion: str | None = None
    discount_token: str | None = None
    alert_url: str | None = None
    status: int | None = None
    title: str | None = None
    type_uri: str | None = None
    instance: str | None = None
    retry_after: float | None = None
    help_url: str | None = None
    localized_message: str | None = None
    target: str | None = None
    category: str | None = None
    extensions: dict[str, Any] = attrs.Factory(dict)

    def found_anything(self) -> bool:
        return self.error_code is not None or self.message is not None


def _text(value: object) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _code(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if value.bit_length() <= _MAX_CODE_INT_BITS else None
    return _text(value)


def _status(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return value
    return None


def _first(mapping: Mapping[str, Any], keys: tuple[str, ...], read: Any = _text) -> str | None:
    for key in keys:
        value = read(mapping.get(key))
        if value is not None:
            return value  # type: ignore[no-any-return]
    return None


def _rest(mapping: Mapping[str, Any], used: set[str]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if key not in used}


def recognise_document(document: Mapping[str, Any], *, is_problem: bool) -> Fields | None:
    """Recognise the shape of one decoded JSON object; None when it is not an error."""
    error = document.get("error")
    fields: Fields | None
    if isinstance(error, Mapping):
        fields = _envelope(document, error)
        if not fields.found_anything():
            # An "error" object with no code or message is a side-car (Feishu's
            # {"code", "msg", "error": {"log_id", ...}}): the top level says it.
            fields = _generic(document)
    elif is_problem or _looks_like_problem(document):
        fields = _problem(document)
    elif _code(document.get("error_code")) is not None or _text(document.get("discount_token")):
        fields = _flat(document)
    elif isinstance(error, str):
        fields = _error_string(document, error)
    else:
        fields = _generic(document)
    if fields is None:
        return None
    _overlay_our_members(fields, document)
    return fields if fields.found_anything() else None


def _overlay_our_members(fields: Fields, source: Mapping[str, Any]) -> None:
    # Our members are honoured in every shape (RFC 9457 extensions, inside an
    # envelope or beside it); an explicit error_code beats a derived one.
    code = _code(source.get("error_code"))
    if code is not None:
        fields.error_code = code
    category = _stated_category(source.get(CATEGORY))
    if category is not None:
        fields.category = category
        fields.extensions.pop(CATEGORY, None)
    for name in ("suggestion", "discount_token", "alert_url"):
        value = _text(source.get(name))
        if value is not None:
            setattr(fields, name, value)
        fields.extensions.pop(name, None)
    fields.extensions.pop("error_code", None)


def _stated_category(value: object) -> str | None:
    # "data_format", "data-format", "Data Format" all name the same category.
    text = _text(value)
    if text is None:
        return None
    normalised = "_".join(text.lower().replace("-", " ").split())
    return normalised if normalised in STATED_CATEGORIES else None


def _looks_like_problem(document: Mapping[str, Any]) -> bool:
    has_type = _text(document.get("type")) is not None
    has_title = _text(document.get("title")) is not None
    has_detail = _text(document.get("detail")) is not None
    return (has_type and (has_title or has_detail)) or (
        has_title and _status(document.get("status")) is not None
    )


def _problem(document: Mapping[str, Any]) -> Fields:
    type_uri = _text(document.get("type"))
    title = _text(document.get("title"))
    detail = _text(document.get("detail"))
    code = type_uri if type_uri not in (None, "about:blank") else None
    return Fields(
        source_format="problem",
        error_code=code,
        message=detail or title,
        title=title,
        type_uri=type_uri,
        instance=_text(document.get("instance")),
        status=_status(document.get("status")),
        extensions=_rest(
            document, {"type", "title", "detail", "instance", "status", *_OUR_MEMBERS}
        ),
    )


def _flat(document: Mapping[str, Any]) -> Fields:
    return Fields(
        source_format="flat",
        error_code=_code(document.get("error_code")),
        message=_first(document, _MESSAGE_KEYS),
        status=_status(document.get("status")),
        extensions=_rest(document, {*_OUR_MEMBERS, "status", *_MESSAGE_KEYS}),
    )


def _envelope(document: Mapping[str, Any], error: Mapping[str, Any]) -> Fields:
    rewrapped = _rewrapped(error.get("message"))
    if rewrapped is not None:
        return rewrapped
    if _status(error.get("code")) is not None and (
        _text(error.get("status")) is not None or isinstance(error.get("details"), list)
    ):
        fields = _google(error)
    else:
        fields = _coded_envelope(error)
    fields.extensions.update(_rest(document, {"error", *_OUR_MEMBERS}))
    _overlay_our_members(fields, error)
    return fields


def _rewrapped(message: object) -> Fields | None:
    # An intermediary may put the upstream JSON error, as a string, in message.
    text = _text(message)
    if text is None or not text.startswith("{") or len(text) > 64 * 1024:
        return None
    try:
        inner = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(inner, Mapping) and isinstance(inner.get("error"), Mapping):
        return _envelope(inner, inner["error"])
    return None


def _google(error: Mapping[str, Any]) -> Fields:
    fields = Fields(
        source_format="google",
        error_code=_text(error.get("status")),
        message=_text(error.get("message")),
        status=_status(error.get("code")),
        extensions=_rest(error, {"code", "message", "status", *_OUR_MEMBERS}),
    )
    details = error.get("details")
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, Mapping):
            continue
        kind = _text(detail.get("@type")) or ""
        if kind.endswith("google.rpc.ErrorInfo"):
            fields.error_code = _text(detail.get("reason")) or fields.error_code
        elif kind.endswith("google.rpc.RetryInfo"):
            fields.retry_after = _duration(detail.get("retryDelay", detail.get("retry_delay")))
        elif kind.endswith("google.rpc.Help"):
            links = detail.get("links")
            if isinstance(links, list) and links and isinstance(links[0], Mapping):
                fields.help_url = _text(links[0].get("url"))
        elif kind.endswith("google.rpc.LocalizedMessage"):
            fields.localized_message = _text(detail.get("message"))
    return fields


def _duration(value: object) -> float | None:
    text = _text(value)
    if text is None:
        return None
    match = _GOOGLE_DURATION.fullmatch(text)
    if match is None:
        return None
    return int(match.group(1)) + float(f"0.{match.group(2) or 0}")


def _coded_envelope(error: Mapping[str, Any]) -> Fields:
    error_type = _text(error.get("type"))
    is_ms = any(key in error for key in ("target", "innererror", "details"))
    is_stripe = error_type is not None and error_type.endswith("_error")
    return Fields(
        source_format="microsoft" if is_ms else "stripe" if is_stripe else "envelope",
        error_code=_code(error.get("code")) or error_type,
        message=_first(error, _MESSAGE_KEYS),
        target=_text(error.get("param")) or _text(error.get("target")),
        help_url=_text(error.get("doc_url")),
        status=_status(error.get("status")),
        extensions=_rest(
            error, {"code", "type", "param", "target", "doc_url", *_MESSAGE_KEYS, *_OUR_MEMBERS}
        ),
    )


def _error_string(document: Mapping[str, Any], error: str) -> Fields:
    message = _first(document, _MESSAGE_KEYS)
    token = error.strip()
    if _TOKEN_LIKE.fullmatch(token):
        oauth = "error_description" in document or token in _OAUTH_CODES
        return Fields(
            source_format="oauth" if oauth else "generic",
            error_code=token,
            message=message,
            help_url=_text(document.get("error_uri")),
            status=_status(document.get("status")),
            extensions=_rest(document, {"error", "error_uri", *_MESSAGE_KEYS, *_OUR_MEMBERS}),
        )
    # A phrase ("Not Found", Spring Boot) is a message, not a code.
    return Fields(
        source_format="generic",
        message=message or _text(token),
        status=_status(document.get("status")),
        extensions=_rest(document, {"error", *_MESSAGE_KEYS, *_OUR_MEMBERS}),
    )


def _generic(document: Mapping[str, Any]) -> Fields | None:
    inner = _named_envelope(document)
    if inner is not None:
        return inner
    if "return_code" in document or "result_code" in document:
        return _wechat_pay(document)
    fields = Fields(
        source_format="generic",
        status=_status(document.get("status")),
        extensions=_rest(document, set(_OUR_MEMBERS)),
    )
    if document.get("kind") == "Status":  # Kubernetes
        fields.error_code = _text(document.get("reason"))
        fields.status = _status(document.get("code")) or fields.status
    type_name = _text(document.get("__type"))  # AWS JSON protocols
    if type_name is not None:
        fields.error_code = type_name.rsplit("#", 1)[-1].split(":", 1)[0] or None
    if fields.error_code is None:
        fields.error_code = _first(document, _CODE_KEYS, _code)
    fields.message = _first(document, _MESSAGE_KEYS)
    # DingTalk (and Alipay-style gateways): sub_code/sub_msg refine code/message.
    fields.error_code = _code(document.get("sub_code")) or fields.error_code
    fields.message = _text(document.get("sub_msg")) or fields.message
    data = document.get("data")
    if fields.error_code is None and isinstance(data, Mapping):
        # Douyin/ByteDance: {"data": {"error_code", "description"}, "message": "error"}.
        fields.error_code = _first(data, _CODE_KEYS, _code)
        if fields.error_code is not None:
            fields.message = _first(data, _MESSAGE_KEYS) or fields.message
    fields.help_url = _text(document.get("documentation_url")) or _text(document.get("more_info"))
    _from_details(fields, document.get("details"))
    _from_list_member(fields, document.get("errors"))
    _from_list_member(fields, document.get("detail"))
    if not fields.found_anything():
        fields.message = _field_map_message(document)
    return fields


def _named_envelope(document: Mapping[str, Any]) -> Fields | None:
    # Tencent Cloud: {"Response": {"Error": {"Code", "Message"}}};
    # Alipay: {"alipay_trade_pay_response": {"code", "msg", "sub_code", "sub_msg"}}.
    response = document.get("Response")
    if isinstance(response, Mapping) and isinstance(response.get("Error"), Mapping):
        error = response["Error"]
        return Fields(
            source_format="envelope",
            error_code=_text(error.get("Code")),
            message=_text(error.get("Message")),
            extensions=_rest(response, {"Error"}),
        )
    # JD: {"error_response": {"code", "zh_desc", "en_desc"}}; Pinduoduo: {"error_response":
    # {"error_code", "error_msg", "sub_code", "sub_msg"}} (empty sub_* mean absent);
    # Youzan: {"gw_err_resp": {"err_code", "err_msg"}}.
    for key, value in document.items():
        if key.endswith(("_response", "_resp")) and isinstance(value, Mapping):
            code = _code(value.get("sub_code")) or _first(value, _CODE_KEYS, _code)
            message = _text(value.get("sub_msg")) or _first(value, _MESSAGE_KEYS)
            if code is not None or message is not None:
                return Fields(
                    source_format="envelope",
                    error_code=code,
                    message=message,
                    extensions=_rest(value, {"sub_code", "sub_msg"}),
                )
    return None


def _wechat_pay(document: Mapping[str, Any]) -> Fields:
    # WeChat Pay v2: return_code FAIL is a transport-level refusal (return_msg says why);
    # result_code FAIL a business one (err_code, err_code_des). SUCCESS twice: no error.
    fields = Fields(source_format="generic", extensions=dict(document))
    return_code = _text(document.get("return_code"))
    result_code = _text(document.get("result_code"))
    if return_code is not None and return_code != "SUCCESS":
        fields.error_code = return_code
        fields.message = _text(document.get("return_msg"))
    elif result_code is not None and result_code != "SUCCESS":
        fields.error_code = _code(document.get("err_code")) or result_code
        fields.message = _text(document.get("err_code_des")) or _text(document.get("return_msg"))
    return fields


def _from_details(fields: Fields, details: object) -> None:
    # PayPal v2: {"name", "message", "details": [{"issue", "description"}]}.
    if isinstance(details, list) and details and isinstance(details[0], Mapping):
        issue = _text(details[0].get("issue"))
        if issue is not None:
            fields.error_code = issue
            fields.message = _text(details[0].get("description")) or fields.message


def _from_list_member(fields: Fields, value: object) -> None:
    if isinstance(value, str):  # DRF/FastAPI detail, Shopify errors
        fields.message = fields.message or _text(value)
        return
    if isinstance(value, Mapping):  # a field map {"field": ["problem"]}
        fields.message = fields.message or _field_map_message(value)
        return
    if not (isinstance(value, list) and value and isinstance(value[0], Mapping)):
        return
    first = value[0]
    extensions = first.get("extensions")
    code = _code(first.get("code")) or _code(first.get("type"))
    if code is None and isinstance(extensions, Mapping):
        code = _code(extensions.get("code"))
    fields.error_code = fields.error_code or code
    message = _text(first.get("detail")) or _first(first, ("message", "msg", "title"))
    fields.message = fields.message or message


def _field_map_message(mapping: Mapping[str, Any]) -> str | None:
    # DRF-style validation errors: every value is a list of messages (or a nested map).
    if not mapping:
        return None
    for value in mapping.values():
        if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
            continue
        if isinstance(value, Mapping):
            continue
        return None
    for value in mapping.values():
        if isinstance(value, list):
            return _text(value[0])
        nested = _field_map_message(value)
        if nested is not None:
            return nested
    return None
