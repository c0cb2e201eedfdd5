import pytest
from hypothesis import given
from hypothesis import strategies as st

from errdiscount_sdk import AlertUrlPolicy, ConfigurationError, UnsafeAlertUrl

POLICY = AlertUrlPolicy(allowed_hosts={"alerts.example.com", "example.com"})


@pytest.mark.parametrize(
    "url",
    [
        "https://alerts.example.com/v1/alerts/abc",
        "https://ALERTS.example.com/x",
        "https://example.com",
        "https://example.com:443/a?b=c#d",
        "https://alerts.example.com./x",  # the root-anchored form of an allowed host
    ],
)
def test_allowed(url: str) -> None:
    assert POLICY.is_allowed(url)
    assert POLICY.check(url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("javascript:alert(1)", "scheme"),
        ("JaVaScRiPt:alert(1)", "scheme"),
        ("data:text/html,<script>alert(1)</script>", "scheme"),
        ("http://alerts.example.com/x", "scheme"),
        ("ftp://alerts.example.com/x", "scheme"),
        ("https:alerts.example.com/x", "scheme"),
        ("https:/alerts.example.com/x", "scheme"),
        ("//alerts.example.com/x", "scheme"),
        ("/relative/path", "scheme"),
        ("https://evil.example/x", "host"),
        ("https://alerts.example.com.evil.example/x", "host"),
        ("https://evilexample.com/x", "host"),
        ("https://sub.alerts.example.com/x", "host"),
        ("https:///x", "host"),
        ("https://", "host"),
        ("https://alerts.example.com@evil.example/", "userinfo"),
        ("https://user:pw@alerts.example.com/", "userinfo"),
        ("https:\\\\evil.example\\alerts.example.com", "characters"),
        ("https://alerts.example.com\\@evil.example/", "characters"),
        ("https://alerts.example.com/x y", "characters"),
        ("https://alerts.example.com/\tx", "characters"),
        ("java\tscript:alert(1)", "characters"),
        ("https://alerts.example.com/\x00", "characters"),
        (" https://alerts.example.com/", "characters"),
        ("https://alerts.example.com/\u202e", "characters"),
        ("https://аlerts.example.com/", "characters"),  # Cyrillic "а"
        ("https://alerts.example.com/" + "a" * 3000, "length"),
        ("https://alerts.example.com:99999/", "host"),
        ("https://[::1/", "host"),
    ],
)
def test_refused(url: str, reason: str) -> None:
    assert not POLICY.is_allowed(url)
    with pytest.raises(UnsafeAlertUrl) as caught:
        POLICY.check(url)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("value", [None, 42, b"https://example.com", ["https://example.com"]])
def test_non_strings_are_refused(value: object) -> None:
    assert not POLICY.is_allowed(value)
    with pytest.raises(UnsafeAlertUrl) as caught:
        POLICY.check(value)
    assert caught.value.reason == "type"


def test_http_only_for_explicit_hosts() -> None:
    policy = AlertUrlPolicy(
        allowed_hosts={"127.0.0.1", "example.com"}, http_allowed_hosts={"127.0.0.1"}
    )
    assert policy.is_allowed("http://127.0.0.1:8000/v1/alerts/x")
    assert not policy.is_allowed("http://example.com/v1/alerts/x")


def test_ports_allow_list() -> None:
    policy = AlertUrlPolicy(allowed_hosts={"example.com"}, allowed_ports={8443})
    assert policy.is_allowed("https://example.com:8443/")
    assert policy.is_allowed("https://example.com/")
    assert policy.is_allowed("https://example.com:443/")
    with pytest.raises(UnsafeAlertUrl) as caught:
        policy.check("https://example.com:9000/")
    assert caught.value.reason == "port"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"allowed_hosts": "example.com"}, "collection"),
        ({"allowed_hosts": {"*.example.com"}}, "valid host"),
        ({"allowed_hosts": {""}}, "valid host"),
        ({"allowed_hosts": {"bücher.example"}}, "punycode"),
        ({"allowed_hosts": {"a.example"}, "http_allowed_hosts": {"b.example"}}, "also be in"),
    ],
)
def test_bad_configuration(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        AlertUrlPolicy(**kwargs)  # type: ignore[arg-type]


def test_refused_url_is_shortened_in_the_error() -> None:
    with pytest.raises(UnsafeAlertUrl) as caught:
        POLICY.check("https://evil.example/" + "x" * 500)
    assert len(caught.value.url) <= 120


@given(st.text(max_size=300))
def test_any_string_gives_a_bool_and_check_agrees(url: str) -> None:
    allowed = POLICY.is_allowed(url)
    assert isinstance(allowed, bool)
    if allowed:
        assert POLICY.check(url) == url
        assert url.lower().startswith("https://")
    else:
        with pytest.raises(UnsafeAlertUrl):
            POLICY.check(url)


@given(st.from_regex(r"https://[a-z.@:\\/%]{0,40}", fullmatch=True))
def test_urlish_strings_only_pass_for_allowed_hosts(url: str) -> None:
    if POLICY.is_allowed(url):
        host = url[len("https://") :].split("/", 1)[0].split(":", 1)[0].rstrip(".")
        assert host in {"alerts.example.com", "example.com"}


IPV6_POLICY = AlertUrlPolicy(allowed_hosts=["[::1]", "[2001:db8::1]"])


@pytest.mark.parametrize(
    "url",
    [
        "https://[::1]evil.com/",
        "https://[::1]evil.com:443/",
        "https://[::1].evil.com/",
        "https://[::1]:443evil/",
        "https://[::1]]/",
        "https://[[::1]/",
        "https://[::2]/",
        "https://[::ffff:127.0.0.1]/",
    ],
)
def test_an_ipv6_literal_allows_itself_and_nothing_glued_to_it(url: str) -> None:
    assert not IPV6_POLICY.is_allowed(url)


@pytest.mark.parametrize(
    "url",
    ["https://[::1]/x", "https://[0:0::1]/x", "https://[::1]:443/x", "https://[2001:DB8:0::1]/"],
)
def test_an_ipv6_literal_matches_in_any_spelling_of_the_same_address(url: str) -> None:
    assert IPV6_POLICY.is_allowed(url)


def test_an_invalid_ipv6_allow_list_entry_is_refused_at_construction() -> None:
    with pytest.raises(ConfigurationError):
        AlertUrlPolicy(allowed_hosts=["[not-an-address]"])
