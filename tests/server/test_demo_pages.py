import httpx

from errdiscount_sdk import AlertUrlPolicy, parse_error_payload
from server_stub.frontend._i18n import catalogues
from tests.support.browser import LiveServer


def test_demo_api_fails_with_the_seed_payload(live_server: LiveServer) -> None:
    response = httpx.post(f"{live_server.base_url}/demo/api/pay")
    assert response.status_code == 402
    payload = parse_error_payload(
        response.content, content_type=response.headers["content-type"], status=402
    )
    assert payload is not None
    assert payload.source_format == "flat"
    assert payload.error_code == "PAY_001"
    assert payload.discount_token
    policy = AlertUrlPolicy(allowed_hosts=["127.0.0.1"], http_allowed_hosts=["127.0.0.1"])
    assert policy.is_allowed(payload.alert_url)
    alert = httpx.get(payload.alert_url, headers={"Accept": "application/json"}).json()
    assert alert["status"] == "pending"
    assert alert["error"]["explanation"] == payload.message == "Insufficient balance on the card."
    assert alert["error"]["suggestion"] == payload.suggestion
    chinese = httpx.get(
        payload.alert_url, params={"lang": "zh-CN"}, headers={"Accept": "application/json"}
    ).json()["error"]
    assert (chinese["explanation"], chinese["suggestion"]) == (
        "银行卡余额不足。",
        "请更换支付方式或充值后重试。",
    )
    assert alert["redeem"]["token"] == payload.discount_token
    redeemed = httpx.post(alert["redeem"]["url"], json={"token": payload.discount_token})
    assert redeemed.status_code == 201
    assert redeemed.json()["subject"] == "demo-user"


def test_demo_page_language_and_headers(live_server: LiveServer) -> None:
    page = httpx.get(f"{live_server.base_url}/demo", headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    assert catalogues().text("zh-CN", "demo.title") in page.text
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.text.count("<script") == 2
    assert "<script>" not in page.text
    english = httpx.get(f"{live_server.base_url}/demo", params={"lang": "en"})
    assert '<html lang="en">' in english.text
    assert httpx.get(f"{live_server.base_url}/demo/api/pay").status_code == 405
