"""PII redaction: what of a call's parameters, headers and URLs may leave the app.

Policy (docs/events.md, "Redaction"):
- A key is *sensitive* when its normalised form (lower case, every character
  that is not a letter or digit removed: ``X-Api-Key`` → ``xapikey``,
  ``userPassword`` → ``userpassword``) CONTAINS one of the deny terms
  (``password``, ``token``, ``key``, ``密码``, ...). Substrings, not exact keys:
  exact matching misses ``api_token``, ``client_secret`` (sentry-python#7542).
  A false positive costs a value; a false negative leaks a secret.
- Sensitive values become ``"[Filtered]"``, whatever their type.
- Other values are summarised as type and length (``"<str:12>"``, ``"<int>"``)
  unless their key is allow-listed (``allow_keys``, exact normalised names; an
  allow-listed key also allows its subtree, where deny terms still apply) or
  the redactor keeps values (``keep_values=True``: deny-list only, for the
  server's second pass). Booleans and nulls are kept: one bit, no identity.
- An explicit allow-list entry wins over the deny terms (you named that key);
  the default lists never allow a denied name.
- Headers pass only by allow-list; URL userinfo is stripped and the values of
  sensitive query (and fragment) keys replaced; kept string values that are
  URLs get the same treatment.
- Caps: nesting depth, keys per object, items per list, string length, and a
  byte budget for the whole result; what falls over a cap becomes
  ``"[Truncated]"`` (a mapping gets a ``"[Truncated]"`` member counting what was left out).
- Idempotent: redacting a redacted value changes nothing (the markers are kept),
  so the server can run the same redaction again (defence in depth).

Pure functions and a frozen value class: no I/O, no threads, no httpx.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from .._model.errors import ConfigurationError
from .event import MAX_JSON_DEPTH, MAX_PARAMS_BYTES

__all__ = [
    "DEFAULT_ALLOW_HEADERS",
    "DEFAULT_DENY_TERMS",
    "FILTERED",
    "SIGNING_QUERY_KEYS",
    "TRUNCATED",
    "Redactor",
    "is_sensitive_key",
    "normalize_key",
    "redact_url",
    "summarize",
]

FILTERED: Final = "[Filtered]"
TRUNCATED: Final = "[Truncated]"

DEFAULT_DENY_TERMS: Final = (
    # credentials and sessions (Sentry's and Relay's root terms)
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "auth",
    "key",
    "session",
    "cookie",
    "csrf",
    "xsrf",
    "jwt",
    "bearer",
    "credential",
    "signature",
    "saml",
    "sso",
    "otp",
    # personal data
    "card",
    "iban",
    "ssn",
    "email",
    "phone",
    "mobile",
    "idcard",
    "address",
    # Chinese forms
    "密码",  # password
    "口令",  # password, passphrase
    "密钥",  # secret key
    "秘钥",  # secret key (common variant)
    "令牌",  # token
    "凭证",  # credential
    "会话",  # session
    "验证码",  # verification code (OTP)
    "手机",  # mobile phone
    "电话",  # telephone
    "邮箱",  # e-mail box
    "身份证",  # identity card
    "银行卡",  # bank card
    "卡号",  # card number
    "地址",  # address
)
"""Deny terms, already normalised (``id_card`` is ``idcard``)."""

DEFAULT_ALLOW_HEADERS: Final = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "content-length",
        "content-type",
        "user-agent",
    }
)
"""Header names (lower case) whose values may be sent; every other header is dropped."""

SIGNING_QUERY_KEYS: Final = frozenset(
    {
        # OpenTelemetry semconv url.query: signing parameters SHOULD be redacted.
        "xamzsignature",
        "xamzcredential",
        "xamzsecuritytoken",
        "awsaccesskeyid",
        "signature",
        "sig",
        "xgoogsignature",
    }
)
"""Query keys (normalised) that are sensitive even without a deny term in them."""

_MARKER = re.compile(r"\[(?:Filtered|Truncated)\]|<[a-z_]{1,24}(?::\d{1,12})?>")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,15}://")
_MAX_KEY_CHARS = 128
_ENTRY_OVERHEAD = 6  # quotes, colon, comma of one member in compact JSON


def normalize_key(key: object) -> str:
    """``"X-Api-Key"`` → ``"xapikey"``: lower case, letters and digits only.

    Non-string keys are matched through ``str(key)``.
    """
    text = key if isinstance(key, str) else str(key)
    return "".join(character for character in text.lower() if character.isalnum())


def is_sensitive_key(key: object, terms: Iterable[str] = DEFAULT_DENY_TERMS) -> bool:
    """True when the normalised ``key`` contains one of the (normalised) ``terms``."""
    normal = normalize_key(key)
    return any(term in normal for term in terms)


def summarize(value: object) -> Any:
    """What is sent instead of a value nobody allowed: its type and length.

    ``"<str:12>"``, ``"<bytes:3>"``, ``"<int>"``, ``"<float>"``, ``"<list:4>"``,
    ``"<dict:2>"``; booleans and None unchanged; markers (already redacted) unchanged.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value if _MARKER.fullmatch(value) else f"<str:{len(value)}>"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<bytes:{len(value)}>"
    if isinstance(value, int):
        return "<int>"
    if isinstance(value, float):
        return "<float>"
    if isinstance(value, list | tuple):
        return f"<list:{len(value)}>"
    if isinstance(value, Mapping):
        return f"<dict:{len(value)}>"
    name = normalize_key(type(value).__name__)[:24] or "object"
    return f"<{name}>"


def redact_url(
    url: str,
    *,
    terms: Iterable[str] = DEFAULT_DENY_TERMS,
    query_keys: Iterable[str] = SIGNING_QUERY_KEYS,
) -> str:
    """Strip userinfo and replace the values of sensitive query/fragment keys.

    Keys are kept; a value is replaced by ``[Filtered]`` when its key is
    sensitive (`is_sensitive_key`) or a signing key (``query_keys``,
    normalised). A string that does not parse as a URL becomes ``"<url>"``.
    """
    terms = tuple(terms)
    signing = frozenset(query_keys)
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<url>"
    netloc = parts.netloc.rpartition("@")[2]

    def scrub(raw: str) -> str:
        pairs = []
        for pair in raw.split("&"):
            name, equals, _ = pair.partition("=")
            key = urllib.parse.unquote_plus(name)
            if equals and (is_sensitive_key(key, terms) or normalize_key(key) in signing):
                pair = f"{name}={FILTERED}"
            pairs.append(pair)
        return "&".join(pairs)

    query = scrub(parts.query) if parts.query else ""
    fragment = scrub(parts.fragment) if "=" in parts.fragment else parts.fragment
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _clean_text(text: str) -> str:
    # Lone surrogates cannot be encoded as UTF-8 JSON: replace them.
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def _normal_set(values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str):
        raise ConfigurationError("expected a collection of names, not one string")
    return frozenset(normalize_key(value) for value in values)


def _normal_terms(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ConfigurationError("deny_terms must be a collection of terms, not one string")
    terms = tuple(dict.fromkeys(normalize_key(value) for value in values))
    if "" in terms:
        raise ConfigurationError("a deny term must hold a letter or digit")
    return terms


def _lower_set(values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str):
        raise ConfigurationError("allow_headers must be a collection of names, not one string")
    return frozenset(value.strip().lower() for value in values)


def _in_range(low: int, high: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if type(value) is not int or not low <= value <= high:
            raise ConfigurationError(f"{attribute.name} must be an int in [{low}, {high}]")

    return check


class _Budget:
    """Bytes left for the redacted result (mutable, one per call)."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left

    def spend(self, key: str, value: Any) -> bool:
        cost = _ENTRY_OVERHEAD + len(key.encode("utf-8"))
        if isinstance(value, str):
            cost += len(value.encode("utf-8"))
        elif value is not None and not isinstance(value, bool):
            cost += 24
        else:
            cost += 5
        self.left -= cost
        return self.left >= 0


@attrs.frozen
class Redactor:
    """The redaction rules, as data. The default instance is what the reporter uses.

    Args:
        deny_terms: substrings that make a key sensitive (normalised on
            construction). Replaces the default list; extend it with
            ``(*DEFAULT_DENY_TERMS, "iban2")``.
        allow_keys: keys (exact, normalised) whose values are sent in full
            (capped), with their subtrees: e.g. ``{"currency", "amount"}``.
        allow_headers: header names (case-insensitive) that may be sent.
        sensitive_query_keys: query keys (normalised, exact) that are always
            filtered in URLs, besides those holding a deny term.
        keep_values: send every non-sensitive value in full (capped) instead
            of type + length. Deny-list-only mode, for a second pass on data
            that was already summarised (the server's).
        max_depth: nesting levels kept (1 = only top-level scalars).
        max_keys: members kept per object.
        max_items: items kept per list.
        max_string: characters kept per string.
        max_bytes: the whole result's budget in UTF-8 bytes (estimated).

    Raises:
        ConfigurationError: a cap out of range or a list passed as one string.
    """

    deny_terms: tuple[str, ...] = attrs.field(default=DEFAULT_DENY_TERMS, converter=_normal_terms)
    allow_keys: frozenset[str] = attrs.field(default=frozenset(), converter=_normal_set)
    allow_headers: frozenset[str] = attrs.field(default=DEFAULT_ALLOW_HEADERS, converter=_lower_set)
    sensitive_query_keys: frozenset[str] = attrs.field(
        default=SIGNING_QUERY_KEYS, converter=_normal_set
    )
    keep_values: bool = False
    max_depth: int = attrs.field(default=8, validator=_in_range(1, MAX_JSON_DEPTH - 2))
    max_keys: int = attrs.field(default=50, validator=_in_range(1, 1000))
    max_items: int = attrs.field(default=50, validator=_in_range(1, 1000))
    max_string: int = attrs.field(default=1024, validator=_in_range(8, 65536))
    max_bytes: int = attrs.field(default=4096, validator=_in_range(256, MAX_PARAMS_BYTES // 2))

    def is_sensitive(self, key: object) -> bool:
        """True when ``key`` holds a deny term and is not explicitly allow-listed."""
        normal = normalize_key(key)
        if normal in self.allow_keys:
            return False
        return any(term in normal for term in self.deny_terms)

    def params(self, params: Mapping[Any, Any] | None) -> dict[str, Any]:
        """Redact a mapping of parameters (query, JSON body members, ...) to plain JSON."""
        if not params:
            return {}
        result = self._mapping(params, allowed=False, depth=1, budget=_Budget(self.max_bytes))
        assert isinstance(result, dict)
        return result

    def redact(self, value: object) -> Any:
        """Redact any value (a mapping, a list, a scalar) to plain JSON."""
        return self._value(value, allowed=False, depth=1, budget=_Budget(self.max_bytes))

    def headers(self, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
        """Only allow-listed headers, values capped; repeated names joined with ``", "``."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        kept: dict[str, str] = {}
        for name, value in items:
            lower = str(name).strip().lower()
            if lower not in self.allow_headers:
                continue
            text = _clean_text(str(value))[: self.max_string]
            kept[lower] = f"{kept[lower]}, {text}" if lower in kept else text
            if len(kept) >= self.max_keys:
                break
        return kept

    def url(self, url: str) -> str:
        """`redact_url` with this redactor's terms and signing keys, capped."""
        redacted = redact_url(
            _clean_text(url), terms=self.deny_terms, query_keys=self.sensitive_query_keys
        )
        return redacted[: self.max_string]

    # -- the walk --------------------------------------------------------------------

    def _key_text(self, key: object) -> str:
        text = key if isinstance(key, str) else str(key)
        return _clean_text(text)[:_MAX_KEY_CHARS]

    def _mapping(
        self, mapping: Mapping[Any, Any], *, allowed: bool, depth: int, budget: _Budget
    ) -> Any:
        if depth > self.max_depth:
            return TRUNCATED
        # The marker of an earlier pass is carried over, not counted as a member
        # (idempotence: the server's second pass must not change the result).
        prior = mapping.get(TRUNCATED)
        prior = prior if type(prior) is int else 0
        members = len(mapping) - (1 if prior else 0)
        out: dict[str, Any] = {}
        left_out = 0
        index = 0
        for raw_key, raw_value in mapping.items():
            if prior and raw_key == TRUNCATED:
                continue
            if index >= self.max_keys or budget.left <= 0:
                left_out = members - index
                break
            key = self._key_text(raw_key)
            normal = normalize_key(key)
            value: Any
            if normal in self.allow_keys:
                value = self._value(raw_value, allowed=True, depth=depth + 1, budget=budget)
            elif any(term in normal for term in self.deny_terms):
                value = FILTERED
            else:
                value = self._value(raw_value, allowed=allowed, depth=depth + 1, budget=budget)
            if not budget.spend(key, value if not isinstance(value, dict | list) else None):
                left_out = members - index
                break
            out[key] = value
            index += 1
        if left_out + prior:
            out[TRUNCATED] = left_out + prior
        return out

    def _value(self, value: object, *, allowed: bool, depth: int, budget: _Budget) -> Any:
        if isinstance(value, Mapping):
            return self._mapping(value, allowed=allowed, depth=depth, budget=budget)
        if isinstance(value, list | tuple):
            if depth > self.max_depth:
                return TRUNCATED
            items: list[Any] = []
            for item in value[: self.max_items]:
                redacted = self._value(item, allowed=allowed, depth=depth + 1, budget=budget)
                if budget.left <= 0 or not budget.spend("", redacted):
                    items.append(TRUNCATED)
                    return items
                items.append(redacted)
            if len(value) > self.max_items:
                items.append(TRUNCATED)
            return items
        if not (allowed or self.keep_values):
            return summarize(value)
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if value == value and abs(value) != float("inf") else summarize(value)
        if isinstance(value, str):
            text = _clean_text(value)
            if _URL.match(text):
                text = self.url(text)
            return text[: self.max_string]
        return summarize(value)
