import httpx
import pytest

from errdiscount_sdk import ConfigurationError, generate_signing_key
from server_stub import Settings, create_app
from server_stub._settings import settings_from_args
from tests.support.browser import ADMIN_KEY, LiveServer
from tests.support.server import serve


def test_routes_are_registered_and_demo_is_off_by_default(tmp_path) -> None:
    settings = Settings(database=f"sqlite:///{tmp_path / 'db.sqlite'}", admin_key=ADMIN_KEY)
    app = create_app(settings, signing_key=generate_signing_key())
    with serve(app) as base, httpx.Client(base_url=base) as client:
        assert client.get("/demo").status_code == 404
        assert client.post("/demo/api/pay").status_code == 404
        assert client.get("/static/errdiscount.js").status_code == 200
        missing = client.get("/v1/alerts/" + "x" * 22, headers={"Accept": "application/json"})
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "ALERT_NOT_FOUND"


def test_alert_json_is_cors_enabled_only_for_configured_origins(tmp_path) -> None:
    settings = Settings(
        database=f"sqlite:///{tmp_path / 'db.sqlite'}",
        admin_key=ADMIN_KEY,
        cors_origins=("https://shop.example",),
    )
    app = create_app(settings, signing_key=generate_signing_key())
    with serve(app) as base:
        issued = LiveServer(base, app).issue()
        url = issued["alert_url"]
        good = httpx.get(
            url, headers={"Origin": "https://shop.example", "Accept": "application/json"}
        )
        assert good.headers["access-control-allow-origin"] == "https://shop.example"
        bad = httpx.get(
            url, headers={"Origin": "https://evil.example", "Accept": "application/json"}
        )
        assert "access-control-allow-origin" not in bad.headers


def test_frame_ancestors_setting_reaches_the_pages(tmp_path) -> None:
    settings = Settings(
        database=f"sqlite:///{tmp_path / 'db.sqlite'}",
        admin_key=ADMIN_KEY,
        frame_ancestors=("https://shop.example", "'self'"),
        demo=True,
    )
    app = create_app(settings, signing_key=generate_signing_key())
    with serve(app) as base:
        issued = LiveServer(base, app).issue()
        page = httpx.get(issued["alert_url"], headers={"Accept": "text/html"})
        csp = page.headers["content-security-policy"]
        assert csp.endswith("frame-ancestors https://shop.example 'self'")
        assert (
            "frame-ancestors https://shop.example 'self'"
            in httpx.get(f"{base}/demo").headers["content-security-policy"]
        )


@pytest.mark.parametrize(
    ("ancestors", "frame_options"),
    [((), "DENY"), (("'self'",), "SAMEORIGIN"), (("https://shop.example",), None)],
)
def test_x_frame_options_agrees_with_frame_ancestors(tmp_path, ancestors, frame_options) -> None:
    settings = Settings(
        database=f"sqlite:///{tmp_path / 'db.sqlite'}",
        admin_key=ADMIN_KEY,
        frame_ancestors=ancestors,
        demo=True,
    )
    app = create_app(settings, signing_key=generate_signing_key())
    with serve(app) as base:
        issued = LiveServer(base, app).issue()
        pages = [
            httpx.get(issued["alert_url"], headers={"Accept": "text/html"}),
            httpx.get(f"{base}/demo"),
        ]
        api = httpx.get(f"{base}/healthz")
    for page in pages:
        assert page.headers.get("x-frame-options") == frame_options
    # The API keeps denying framing outright.
    assert api.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in api.headers["content-security-policy"]


@pytest.mark.parametrize(
    "source", ["https://a.example; script-src *", "'unsafe-inline'", "javascript:", "*"]
)
def test_frame_ancestors_refuses_anything_but_origins(source: str) -> None:
    with pytest.raises(ConfigurationError, match="frame ancestors"):
        Settings(frame_ancestors=(source,))


def test_flags_and_environment() -> None:
    settings = settings_from_args(["--frame-ancestor", "https://a.example", "--demo"], environ={})
    assert settings.frame_ancestors == ("https://a.example",)
    assert settings.demo is True
    from_env = settings_from_args(
        [], environ={"ERRDISCOUNT_DEMO": "1", "ERRDISCOUNT_FRAME_ANCESTORS": "'self'"}
    )
    assert from_env.demo is True
    assert from_env.frame_ancestors == ("'self'",)
    assert settings_from_args([], environ={}).demo is False
