"""PII redaction: substring matching of normalised keys, summaries, URLs, headers, caps."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from typing import Any

import pytest

from errdiscount_sdk._model.errors import ConfigurationError
from errdiscount_sdk._report.event import MAX_PARAMS_BYTES, json_size
from errdiscount_sdk._report.redaction import (
    DEFAULT_DENY_TERMS,
    FILTERED,
    TRUNCATED,
    Redactor,
    is_sensitive_key,
    normalize_key,
    redact_url,
    summarize,
)

DEFAULT = Redactor()


@pytest.mark.parametrize(
    ("key", "normal"),
    [
        ("X-Api-Key", "xapikey"),
        ("userPassword", "userpassword"),
        ("id_card", "idcard"),
        ("Session ID", "sessionid"),
        ("用户 密码", "用户密码"),
        (42, "42"),
    ],
)
def test_normalize_key(key: object, normal: str) -> None:
    assert normalize_key(key) == normal


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "userPassword",
        "X-Api-Key",
        "api_token",
        "access_token",
        "client_secret",
        "secret_key",
        "Authorization",
        "sessionId",
        "Cookie",
        "csrfmiddlewaretoken",
        "jwt",
        "Bearer",
        "credentials",
        "credit_card_number",
        "IBAN",
        "user_ssn",
        "Email",
        "phoneNumber",
        "mobile",
        "otp_code",
        "id-card",
        "mysql_pwd",
        "passwd",
        "用户密码",
        "手机号",
        "身份证号",
        "邮箱",
        "银行卡",
        "短信验证码",
        "访问令牌",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)
    assert DEFAULT.is_sensitive(key)


@pytest.mark.parametrize("key", ["amount", "currency", "item", "page", "limit", "订单号", 7])
def test_ordinary_keys(key: object) -> None:
    assert not is_sensitive_key(key)


@pytest.mark.parametrize(
    ("value", "summary"),
    [
        ("hello world!", "<str:12>"),
        ("", "<str:0>"),
        (b"abc", "<bytes:3>"),
        (12, "<int>"),
        (1.5, "<float>"),
        (True, True),
        (None, None),
        ([1, 2], "<list:2>"),
        ({"a": 1}, "<dict:1>"),
        (object(), "<object>"),
        (FILTERED, FILTERED),
        ("<str:12>", "<str:12>"),
    ],
)
def test_summarize(value: object, summary: object) -> None:
    assert summarize(value) == summary


PARAMS_CASES: list[tuple[str, Redactor, Any, Any]] = [
    (
        "flat defaults",
        DEFAULT,
        {"password": "hunter2", "amount": 99, "note": "hello", "ok": True, "none": None},
        {"password": FILTERED, "amount": "<int>", "note": "<str:5>", "ok": True, "none": None},
    ),
    (
        "camelCase and header-style keys",
        DEFAULT,
        {"userPassword": "p", "X-Api-Key": "k", "refreshToken": "t"},
        {"userPassword": FILTERED, "X-Api-Key": FILTERED, "refreshToken": FILTERED},
    ),
    (
        "nested dicts and lists",
        DEFAULT,
        {"user": {"email": "a@b.c", "age": 3, "cards": [{"number": "4111"}]}, "ids": [1, "x"]},
        {
            "user": {"email": FILTERED, "age": "<int>", "cards": FILTERED},
            "ids": ["<int>", "<str:1>"],
        },
    ),
    (
        "Chinese keys",
        DEFAULT,
        {"密码": "x", "手机号码": "13800000000", "金额": "10"},
        {"密码": FILTERED, "手机号码": FILTERED, "金额": "<str:2>"},
    ),
    (
        "non-str keys",
        DEFAULT,
        {1: "one", None: "n", (1, 2): 3},
        {"1": "<str:3>", "None": "<str:1>", "(1, 2)": "<int>"},
    ),
    (
        "allow-listed keys are sent, with their subtree; deny still applies below",
        Redactor(allow_keys={"amount", "order"}),
        {"amount": 99, "order": {"sku": "A1", "token": "t", "items": [1, 2]}, "note": "x"},
        {
            "amount": 99,
            "order": {"sku": "A1", "token": FILTERED, "items": [1, 2]},
            "note": "<str:1>",
        },
    ),
    (
        "an explicit allow-list entry wins over a deny term",
        Redactor(allow_keys={"card_brand"}),
        {"card_brand": "visa", "card_number": "4111"},
        {"card_brand": "visa", "card_number": FILTERED},
    ),
    (
        "allow-listed URL values lose their secrets",
        Redactor(allow_keys={"callback"}),
        {"callback": "https://user:pw@h.example/cb?access_token=SECRET&x=1"},
        {"callback": f"https://h.example/cb?access_token={FILTERED}&x=1"},
    ),
    (
        "keep_values: deny-list only",
        Redactor(keep_values=True),
        {"secret": "s", "amount": 99, "note": "hello"},
        {"secret": FILTERED, "amount": 99, "note": "hello"},
    ),
    (
        "custom deny terms replace the defaults",
        Redactor(deny_terms=("pin",), keep_values=True),
        {"PIN": "1234", "password": "p"},
        {"PIN": FILTERED, "password": "p"},
    ),
    (
        "extended deny terms",
        Redactor(deny_terms=(*DEFAULT_DENY_TERMS, "licence"), keep_values=True),
        {"driver_licence": "D1", "password": "p", "ok": 1},
        {"driver_licence": FILTERED, "password": FILTERED, "ok": 1},
    ),
    (
        "depth cap",
        Redactor(max_depth=2, keep_values=True),
        {"a": {"b": {"c": 1}}, "x": [[1]]},
        {"a": {"b": TRUNCATED}, "x": [TRUNCATED]},
    ),
    (
        "key and item caps",
        Redactor(max_keys=2, max_items=2, keep_values=True),
        {"a": [1, 2, 3, 4], "b": 2, "c": 3, "d": 4},
        {"a": [1, 2, TRUNCATED], "b": 2, TRUNCATED: 2},
    ),
    (
        "string cap",
        Redactor(max_string=8, keep_values=True),
        {"a": "0123456789abc"},
        {"a": "01234567"},
    ),
]


@pytest.mark.parametrize(
    ("redactor", "params", "expected"),
    [case[1:] for case in PARAMS_CASES],
    ids=[case[0] for case in PARAMS_CASES],
)
def test_params(redactor: Redactor, params: Any, expected: Any) -> None:
    assert redactor.params(params) == expected


@pytest.mark.parametrize(
    ("redactor", "params"), [case[1:3] for case in PARAMS_CASES], ids=[c[0] for c in PARAMS_CASES]
)
def test_redaction_is_idempotent(redactor: Redactor, params: Any) -> None:
    once = redactor.params(params)
    assert redactor.params(once) == once


def test_the_byte_budget_caps_the_result() -> None:
    redactor = Redactor(keep_values=True, max_bytes=1024)
    params = {f"k{i}": "v" * 200 for i in range(100)}
    redacted = redactor.params(params)
    assert json_size(redacted) <= 1024 + 64
    assert redacted[TRUNCATED] > 90


def test_worst_case_default_output_fits_the_event_cap() -> None:
    redactor = Redactor(allow_keys={"k"})
    params = {"k": ["漢" * 2000] * 100, **{f"x{i}": {"y": ["z" * 50] * 50} for i in range(60)}}
    assert json_size(redactor.params(params)) <= MAX_PARAMS_BYTES


def test_surrogates_cannot_break_json_encoding() -> None:
    redacted = Redactor(keep_values=True).params({"a\ud800": "b\udfff"})
    json.dumps(redacted, ensure_ascii=False).encode("utf-8")


URL_CASES = [
    ("https://user:pass@api.example/p?q=1", "https://api.example/p?q=1"),
    (
        "https://api.example/p?access_token=abc&page=2&API_KEY=k",
        f"https://api.example/p?access_token={FILTERED}&page=2&API_KEY={FILTERED}",
    ),
    (
        "https://b.s3.example/o?X-Amz-Signature=s&X-Amz-Credential=c&sig=x&v=1",
        f"https://b.s3.example/o?X-Amz-Signature={FILTERED}&X-Amz-Credential={FILTERED}"
        f"&sig={FILTERED}&v=1",
    ),
    (
        "https://app.example/cb#access_token=t&state=s",
        f"https://app.example/cb#access_token={FILTERED}&state=s",
    ),
    (
        "https://api.example/p?flag&user%5Fpassword=x",
        f"https://api.example/p?flag&user%5Fpassword={FILTERED}",
    ),
    ("http://[::1", "<url>"),
]


@pytest.mark.parametrize(("url", "expected"), URL_CASES)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert DEFAULT.url(url) == expected


def test_headers_pass_only_by_allow_list() -> None:
    headers = [
        ("Content-Type", "application/json"),
        ("Authorization", "Bearer SECRET"),
        ("Cookie", "sid=SECRET"),
        ("X-Forwarded-For", "10.0.0.1"),
        ("Accept", "text/html"),
        ("accept", "application/json"),
        ("X-Custom", "c"),
    ]
    assert DEFAULT.headers(headers) == {
        "content-type": "application/json",
        "accept": "text/html, application/json",
    }
    assert Redactor(allow_headers={"X-Custom"}).headers(dict(headers)) == {"x-custom": "c"}


@pytest.mark.parametrize(
    "settings",
    [
        {"max_depth": 0},
        {"max_keys": 0},
        {"max_string": 1},
        {"max_bytes": MAX_PARAMS_BYTES},
        {"deny_terms": "password"},
        {"deny_terms": ["--"]},
        {"allow_keys": "amount"},
    ],
)
def test_bad_settings_are_configuration_errors(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Redactor(**settings)


def test_redaction_imports_without_httpx_and_starts_no_thread() -> None:
    # The server runs the same redaction again: the module must stand alone.
    # The package's __init__ imports the clients, so load the module under
    # stub packages, with httpx made unimportable.
    out = subprocess.run(
        [sys.executable, "-c", _ISOLATED],
        capture_output=True,
        text=True,
        check=False,
        cwd=pathlib.Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[Filtered]", "1", "False"]


_ISOLATED = """
import sys, threading, types
sys.modules["httpx"] = None
for name, path in (("errdiscount_sdk", "errdiscount_sdk"),
                   ("errdiscount_sdk._report", "errdiscount_sdk/_report")):
    module = types.ModuleType(name)
    module.__path__ = [path]
    sys.modules[name] = module
from errdiscount_sdk._report.redaction import Redactor
print(Redactor().params({"password": 1})["password"], threading.active_count(), "queue" in sys.modules)
"""
