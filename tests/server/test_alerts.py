import datetime as dt
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from errdiscount_sdk import TokenIssuer, generate_signing_key
from server_stub.frontend._alerts import alert_content, alert_routes
from server_stub.frontend._i18n import catalogues
from server_stub.frontend._pages import escape
from server_stub.frontend._static import static_routes
from server_stub.store import IssuedToken, RedemptionRequest, Store, open_store
from tests.support.server import serve

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def _issue(
    store: Store,
    *,
    kind: str = "coupon",
    amount: int = 5,
    unit: str = "USD",
    terms: str | None = "https://shop.example/terms?a=1&b=2",
    expires_at: dt.datetime = NOW + dt.timedelta(days=7),
    message: dict[str, str] | None = None,
    suggestion: dict[str, str] | None = None,
) -> IssuedToken:
    issuer = TokenIssuer(generate_signing_key(), issuer="shop", audience="errdiscount")
    token = issuer.issue(
        subject="user-1",
        error_code="PAY_001",
        category="business",
        severity="minor",
        compensation={"kind": kind, "amount": amount, "unit": unit},
        terms=terms,
    )
    record = IssuedToken(
        jti=secrets.token_urlsafe(16),
        subject="user-1",
        issuer="shop",
        kind=kind,
        amount=amount,
        unit=unit,
        campaign="default",
        expires_at=expires_at,
        alert_id=secrets.token_urlsafe(16),
        token=token,
        message=message or {},
        suggestion=suggestion or {},
    )
    assert store.record_issued(record)
    return record


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'alerts.db'}") as opened:
        yield opened


@pytest.fixture
def client(store: Store) -> Iterator[httpx.Client]:
    app = Starlette(
        routes=[
            *alert_routes(
                lambda: store, frame_ancestors=["https://shop.example"], clock=lambda: NOW
            ),
            *static_routes(),
        ]
    )
    with serve(app) as base, httpx.Client(base_url=base) as http:
        yield http


def test_json_content_follows_the_contract(client: httpx.Client, store: Store) -> None:
    record = _issue(store)
    response = client.get(f"/v1/alerts/{record.alert_id}", headers=JSON)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-language"] == "en"
    body = response.json()
    assert set(body) == {
        "alert_id",
        "lang",
        "status",
        "title",
        "body",
        "error",
        "compensation",
        "expires_at",
        "terms_url",
        "priority",
        "support_flag",
        "redeem",
        "texts",
    }
    assert body["status"] == "pending"
    assert body["alert_id"] == record.alert_id
    assert body["error"]["code"] == "PAY_001"
    assert body["error"]["category"] == "business"
    assert body["compensation"] == {
        "kind": "coupon",
        "amount": 5,
        "unit": "USD",
        "summary": "a $5.00 coupon",
    }
    assert "a $5.00 coupon" in body["body"]
    assert body["expires_at"] == "2030-01-08T00:00:00Z"
    assert body["terms_url"] == "https://shop.example/terms?a=1&b=2"
    assert body["redeem"] == {
        "method": "POST",
        "url": f"{client.base_url}".rstrip("/") + "/v1/redemptions",
        "token": record.token,
    }
    assert body["texts"]["redeem"] == "Redeem"


def test_language_from_query_then_accept_language(client: httpx.Client, store: Store) -> None:
    record = _issue(store, kind="points", amount=100, unit="points")
    url = f"/v1/alerts/{record.alert_id}"
    zh = client.get(url, headers={**JSON, "Accept-Language": "zh-CN,zh;q=0.9"}).json()
    assert zh["lang"] == "zh-CN"
    assert zh["compensation"]["summary"] == "100 积分"
    assert zh["texts"]["redeem"] == "立即领取"
    forced = client.get(url, params={"lang": "en"}, headers={**JSON, "Accept-Language": "zh-CN"})
    assert forced.json()["lang"] == "en"
    assert (
        client.get(url, params={"lang": "zh-CN"}, headers=JSON).json()["title"]
        == "抱歉，操作没有成功"
    )


def test_redeemed_and_expired_status(client: httpx.Client, store: Store) -> None:
    expired = _issue(store, expires_at=NOW - dt.timedelta(seconds=1))
    assert client.get(f"/v1/alerts/{expired.alert_id}", headers=JSON).json()["status"] == "expired"
    record = _issue(store)
    store.redeem(
        RedemptionRequest(
            jti=record.jti,
            subject=record.subject,
            issuer=record.issuer,
            kind=record.kind,
            amount=record.amount,
            unit=record.unit,
            campaign=record.campaign,
        )
    )
    body = client.get(f"/v1/alerts/{record.alert_id}", headers=JSON).json()
    assert body["status"] == "redeemed"
    page = client.get(f"/v1/alerts/{record.alert_id}", headers=HTML).text
    assert "data-errdiscount-redeem" not in page
    assert "This compensation (a $5.00 coupon) has already been redeemed." in page


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_a_used_or_expired_page_says_so_once_and_asks_for_nothing(
    client: httpx.Client, store: Store, lang: str
) -> None:
    cat = catalogues()
    redeemed = _issue(store)
    store.redeem(
        RedemptionRequest(
            jti=redeemed.jti,
            subject=redeemed.subject,
            issuer=redeemed.issuer,
            kind=redeemed.kind,
            amount=redeemed.amount,
            unit=redeemed.unit,
            campaign=redeemed.campaign,
        )
    )
    expired = _issue(store, expires_at=NOW - dt.timedelta(seconds=1))
    for record, status in ((redeemed, "already_redeemed"), (expired, "expired")):
        page = client.get(f"/v1/alerts/{record.alert_id}", params={"lang": lang}, headers=HTML)
        text = page.text
        said = cat.text(lang, f"widget.{status}")
        body_key = "alert.body_redeemed" if status == "already_redeemed" else "alert.body_expired"
        summary = cat.text(lang, "summary.coupon", amount="$5.00" if lang == "en" else "US$5.00")
        assert escape(cat.text(lang, body_key, summary=summary)) in text
        assert said not in text  # the body already said it: no second line saying it again
        assert cat.text(lang, "page.noscript") not in text and "<noscript" not in text
        assert "data-errdiscount-redeem" not in text
        assert record.token not in text  # nothing to redeem, so no token on the page
        assert escape(cat.text(lang, "alert.title")) not in text  # no "sorry, it failed"
        assert escape(cat.text(lang, "suggestion.business")) not in text  # no "try again"
        # A used voucher has no "valid until"; an expired one says until when it was.
        assert (cat.text(lang, "widget.expires") in text) is (status == "expired")


def test_the_page_writes_the_expiry_the_reader_s_way_with_the_zone(
    client: httpx.Client, store: Store
) -> None:
    record = _issue(store)  # expires 2030-01-08T00:00:00Z
    url = f"/v1/alerts/{record.alert_id}"
    en = client.get(url, params={"lang": "en"}, headers=HTML).text
    assert '<time datetime="2030-01-08T00:00:00Z">Jan 8, 2030, 12:00 AM UTC</time>' in en
    zh = client.get(url, params={"lang": "zh-CN"}, headers=HTML).text
    assert '<time datetime="2030-01-08T00:00:00Z">2030年1月8日 UTC 00:00</time>' in zh
    assert cat_noscript("en") in en  # a pending page still says why the button needs JS


def cat_noscript(lang: str) -> str:
    return catalogues().text(lang, "page.noscript")


def test_html_page_is_escaped_and_has_strict_headers(client: httpx.Client, store: Store) -> None:
    record = _issue(store, terms='https://shop.example/t?x="<script>')
    response = client.get(f"/v1/alerts/{record.alert_id}", params={"lang": "zh-CN"}, headers=HTML)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors https://shop.example" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    page = response.text
    assert '<html lang="zh-CN">' in page
    assert '<script src="/static/errdiscount.js" defer></script>' in page
    assert page.count("<script") == 1  # the external widget only, nothing inline
    assert "<script>" not in page
    assert "x=&quot;&lt;script&gt;" in page
    assert "抱歉，操作没有成功" in page
    assert f'data-token="{record.token}"' in page


def test_unknown_alert_is_404_in_both_forms(client: httpx.Client) -> None:
    for alert_id in ("A" * 22, "short", "bad$chars" * 4):
        response = client.get(f"/v1/alerts/{alert_id}", headers=JSON)
        assert response.status_code == 404
        assert response.json()["error_code"] == "ALERT_NOT_FOUND"
        page = client.get(f"/v1/alerts/{alert_id}", params={"lang": "zh-CN"}, headers=HTML)
        assert page.status_code == 404
        assert "未找到" in page.text
        assert alert_id not in page.text
        assert "unsafe-inline" not in page.headers["content-security-policy"]


def test_hostile_texts_stay_text_in_json_and_html(store: Store) -> None:
    class Record:
        jti = "j" * 22
        kind = "coupon"
        amount = 5
        unit = '"><script>alert(1)</script>'
        expires_at = NOW
        alert_id = "a" * 22
        token = "x.e30.y"
        message: dict[str, str] = {}
        suggestion: dict[str, str] = {}
        priority = False
        support_flag = False

    content = alert_content(
        Record(),
        lang="en",
        redeemed=False,
        now=NOW - dt.timedelta(days=1),
        redeem_url="https://r/v1",
    )
    assert content["compensation"]["summary"] == 'a 5 "><script>alert(1)</script> coupon'
    assert content["terms_url"] is None
    from server_stub.frontend._alerts import _page

    page = _page(content, catalogues())
    assert "<script>alert(1)" not in page
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page


BILINGUAL = {"en": "Insufficient card balance.", "zh-CN": "银行卡余额不足。"}
HINT = {"en": "Top up, then retry.", "zh-CN": "请充值后重试。"}


@pytest.mark.parametrize(
    ("lang", "explanation", "suggestion"),
    [("en", BILINGUAL["en"], HINT["en"]), ("zh-CN", BILINGUAL["zh-CN"], HINT["zh-CN"])],
)
def test_the_providers_message_replaces_the_generic_text_per_language(
    client: httpx.Client, store: Store, lang: str, explanation: str, suggestion: str
) -> None:
    record = _issue(store, message=BILINGUAL, suggestion=HINT)
    content = client.get(f"/v1/alerts/{record.alert_id}", params={"lang": lang}, headers=JSON)
    assert content.json()["error"]["explanation"] == explanation
    assert content.json()["error"]["suggestion"] == suggestion
    page = client.get(f"/v1/alerts/{record.alert_id}", params={"lang": lang}, headers=HTML).text
    assert f'<p class="errdiscount-explanation">{explanation}</p>' in page
    assert f'<p class="errdiscount-suggestion">{suggestion}</p>' in page


def test_a_text_in_another_language_beats_the_generic_one_and_gaps_fall_back(
    client: httpx.Client, store: Store
) -> None:
    # Only an English message, no suggestion: the Chinese reader gets the
    # provider's English words and the catalogue's Chinese suggestion.
    record = _issue(store, message={"en": "Card declined."})
    error = client.get(
        f"/v1/alerts/{record.alert_id}", params={"lang": "zh-CN"}, headers=JSON
    ).json()["error"]
    assert error["explanation"] == "Card declined."
    assert error["suggestion"] == catalogues().text("zh-CN", "suggestion.business")
    plain = _issue(store)
    error = client.get(f"/v1/alerts/{plain.alert_id}", headers=JSON).json()["error"]
    assert error["explanation"] == catalogues().text("en", "explanation.business")
    assert error["suggestion"] == catalogues().text("en", "suggestion.business")


HOSTILE = "\"><script>alert(1)</script> 'x' & <img src=x onerror=alert(2)>"


def test_a_hostile_provider_message_is_plain_text_in_json_and_escaped_in_html(
    client: httpx.Client, store: Store
) -> None:
    record = _issue(store, message={"und": HOSTILE}, suggestion={"en": HOSTILE})
    error = client.get(f"/v1/alerts/{record.alert_id}", headers=JSON).json()["error"]
    assert error["explanation"] == HOSTILE
    assert error["suggestion"] == HOSTILE
    page = client.get(f"/v1/alerts/{record.alert_id}", headers=HTML).text
    assert "<script>alert(1)" not in page
    assert "<img" not in page
    escaped = "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt; &#x27;x&#x27; &amp; &lt;img"
    assert f'<p class="errdiscount-explanation">{escaped}' in page
    assert f'<p class="errdiscount-suggestion">{escaped}' in page


class _CountingStore:
    """The real store, counting the shown-at writes the alert route asks for."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.writes = 0

    def alert(self, alert_id: str) -> IssuedToken | None:
        return self.store.alert(alert_id)

    def redemption_by_jti(self, jti: str) -> object | None:
        return self.store.redemption_by_jti(jti)

    def mark_shown(self, alert_id: str) -> bool:
        self.writes += 1
        return self.store.mark_shown(alert_id)


def test_the_first_view_sets_shown_at_once_and_later_views_write_nothing(store: Store) -> None:
    counting = _CountingStore(store)
    app = Starlette(routes=alert_routes(lambda: counting, clock=lambda: NOW))
    record, other = _issue(store), _issue(store)
    with serve(app) as base, httpx.Client(base_url=base) as http:
        assert http.get("/v1/alerts/unknown-alert-id-0123456789", headers=JSON).status_code == 404
        assert store.alert(record.alert_id).shown_at is None  # type: ignore[union-attr]
        assert http.get(f"/v1/alerts/{record.alert_id}", headers=JSON).status_code == 200
        first = store.alert(record.alert_id)
        assert first is not None and first.shown_at is not None
        for headers in (JSON, HTML, JSON):
            assert http.get(f"/v1/alerts/{record.alert_id}", headers=headers).status_code == 200
        assert counting.writes == 1
        assert store.alert(record.alert_id).shown_at == first.shown_at  # type: ignore[union-attr]
        # The page counts as shown too; the other voucher was not touched before.
        assert store.alert(other.alert_id).shown_at is None  # type: ignore[union-attr]
        assert http.get(f"/v1/alerts/{other.alert_id}", headers=HTML).status_code == 200
        assert store.alert(other.alert_id).shown_at is not None  # type: ignore[union-attr]
        assert counting.writes == 2
