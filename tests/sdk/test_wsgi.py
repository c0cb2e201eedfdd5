"""The WSGI middleware with real frameworks over a real WSGI server (wsgiref, port 0):
Flask (`ErrDiscountWSGIMiddleware.for_flask`), a bare WSGI app, and Django
(`errdiscount_sdk.django`)."""

import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import django
import flask
import httpx
import pytest
from django.conf import settings
from django.urls import path

from errdiscount_sdk import ProviderError, TokenVerifier
from errdiscount_sdk.django import django_middleware
from errdiscount_sdk.wsgi import ErrDiscountWSGIMiddleware
from tests.support.provider_support import RecordingSink
from tests.support.server_support import ADMIN_KEY, running
from tests.support.server_support import AUDIENCE as SERVER_AUDIENCE
from tests.support.server_support import ISSUER as SERVER_ISSUER
from tests.support.token_helpers import AUDIENCE, ISSUER, issuer_for
from tests.support.wsgi_server import serve_wsgi

PAY = ProviderError(
    "PAY_001",
    "Insufficient balance.",
    suggestion="Top up your card.",
    status=402,
    messages={"zh-CN": "银行卡余额不足。"},
)


def _verify(token: str, subject: str) -> str:
    verifier = TokenVerifier(issuer_for().jwks(), issuer=ISSUER, audience=AUDIENCE)
    return verifier.verify(token, subject=subject).error.code


# -- Flask ----------------------------------------------------------------------------------


def flask_app(sink: RecordingSink, **options: Any) -> flask.Flask:
    app = flask.Flask("provider")

    @app.before_request
    def login() -> None:
        flask.g.user = flask.request.headers.get("x-user-id")

    @app.post("/api/pay/<int:pay_id>")
    def pay(pay_id: int) -> Any:
        if pay_id == 0:
            return {"paid": True}
        raise PAY

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("db password=hunter2")

    @app.get("/lookup/<name>")
    def lookup(name: str) -> Any:
        return {"value": {"a": 1}[name]}

    @app.get("/gone")
    def gone() -> Any:
        flask.abort(410)

    ErrDiscountWSGIMiddleware.for_flask(
        app,
        reporter=sink,
        # runs inside Flask's request context: flask.g works
        user_id=lambda environ: flask.g.get("user"),
        issuer=issuer_for(),
        **options,
    )
    return app


def test_flask_provider_error_success_and_route_templates() -> None:
    sink = RecordingSink()
    with serve_wsgi(flask_app(sink)) as url:
        refused = httpx.post(
            url + "/api/pay/42?card_number=4111&page=1",
            headers={"x-user-id": "alice", "accept-language": "zh-CN"},
        )
        paid = httpx.post(url + "/api/pay/0", headers={"x-user-id": "bob"})
    assert refused.status_code == 402
    body = refused.json()
    assert body["message"] == "银行卡余额不足。" and refused.headers["content-language"] == "zh-CN"
    assert _verify(body["discount_token"], "alice") == "PAY_001"
    assert paid.json() == {"paid": True}
    first, second = sink.events
    assert (first["endpoint"], first["status"], first["error_code"], first["user_id"]) == (
        "POST /api/pay/{pay_id}",
        402,
        "PAY_001",
        "alice",
    )
    assert first["params"] == {"card_number": "[Filtered]", "page": "<str:1>"}
    assert (second["endpoint"], second["outcome"], second["user_id"]) == (
        "POST /api/pay/{pay_id}",
        "ok",
        "bob",
    )


def test_flask_unhandled_mapped_and_its_own_http_errors(caplog: pytest.LogCaptureFixture) -> None:
    sink = RecordingSink()
    app = flask_app(
        sink, errors={KeyError: ProviderError("NOT_FOUND", "No such entry.", status=404)}
    )
    with caplog.at_level(logging.ERROR, logger="errdiscount_sdk.provider"), serve_wsgi(app) as url:
        boom = httpx.get(url + "/boom", headers={"accept": "application/problem+json"})
        mapped = httpx.get(url + "/lookup/zzz")
        gone = httpx.get(url + "/gone")
        unrouted = httpx.get(url + "/nothing/123")
    assert boom.status_code == 500 and boom.json()["error_code"] == "INTERNAL_ERROR"
    assert boom.headers["content-type"] == "application/problem+json"
    assert "hunter2" not in boom.text and "hunter2" in caplog.text
    assert mapped.status_code == 404 and mapped.json()["error_code"] == "NOT_FOUND"
    assert gone.status_code == 410 and "Gone" in gone.text  # Flask's own page
    assert unrouted.status_code == 404
    assert [(e["endpoint"], e["status"]) for e in sink.events] == [
        ("GET /boom", 500),
        ("GET /lookup/{name}", 404),
        ("GET /gone", 410),
        ("GET /nothing/{id}", 404),
    ]


def test_flask_with_vouchers_issued_by_the_redemption_server(tmp_path: Path) -> None:
    sink = RecordingSink()
    with running(tmp_path) as server_url:
        app = flask.Flask("provider")

        @app.post("/api/pay/<int:pay_id>")
        def pay(pay_id: int) -> Any:
            raise PAY

        ErrDiscountWSGIMiddleware.for_flask(
            app,
            reporter=sink,
            user_id=lambda environ: environ.get("HTTP_X_USER_ID"),
            redemption_server=server_url,
            admin_key=ADMIN_KEY,
        )
        with serve_wsgi(app) as url:
            body = httpx.post(url + "/api/pay/1", headers={"x-user-id": "frank"}).json()
        assert body["alert_url"].startswith(server_url + "/v1/alerts/")
        jwks = httpx.get(server_url + "/.well-known/jwks.json").json()
        claims = TokenVerifier(jwks, issuer=SERVER_ISSUER, audience=SERVER_AUDIENCE).verify(
            body["discount_token"], subject="frank"
        )
        assert claims.error.code == "PAY_001"
    assert sink.events[0]["user_id"] == "frank"


# -- a bare WSGI app -------------------------------------------------------------------------


def bare_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    if environ["PATH_INFO"].startswith("/fail"):
        raise PAY
    start_response("200 OK", [("content-type", "text/plain")])
    return iter([b"fine"])


def test_bare_wsgi_app() -> None:
    sink = RecordingSink()

    def broken_reporter_user(environ: Mapping[str, Any]) -> str:
        return str(environ["HTTP_X_USER_ID"])  # KeyError without the header: counts as None

    app = ErrDiscountWSGIMiddleware(
        bare_app, reporter=sink, user_id=broken_reporter_user, issuer=issuer_for()
    )
    with serve_wsgi(app) as url:
        failed = httpx.get(url + "/fail/77", headers={"x-user-id": "carol"})
        anonymous = httpx.get(url + "/fail/78")
        ok = httpx.get(url + "/fine")
    assert failed.status_code == 402 and _verify(failed.json()["discount_token"], "carol")
    assert anonymous.status_code == 402 and anonymous.json()["discount_token"] is None
    assert ok.text == "fine"
    assert [(e["endpoint"], e["status"], e["user_id"]) for e in sink.events] == [
        ("GET /fail/{id}", 402, "carol"),
        ("GET /fail/{id}", 402, None),
        ("GET /fine", 200, None),
    ]


def test_a_broken_sink_never_breaks_a_wsgi_request() -> None:
    class Broken:
        def record(self, event: Mapping[str, Any]) -> None:
            raise RuntimeError("collector down")

    with serve_wsgi(ErrDiscountWSGIMiddleware(bare_app, reporter=Broken())) as url:
        assert httpx.get(url + "/fine").text == "fine"
        assert httpx.get(url + "/fail").status_code == 402


# -- Django ----------------------------------------------------------------------------------

DJANGO_SINK = RecordingSink()


def _django_user(request: Any) -> str | None:
    return request.headers.get("x-user-id")


DjangoErrDiscount = django_middleware(
    reporter=DJANGO_SINK,
    user_id=_django_user,
    issuer=issuer_for(),
    errors={LookupError: ProviderError("NOT_FOUND", "No such entry.", status=404)},
)


def _pay(request: Any, pay_id: int) -> Any:
    from django.http import JsonResponse

    if pay_id == 0:
        return JsonResponse({"paid": True})
    raise PAY


def _boom(request: Any) -> Any:
    raise RuntimeError("db password=hunter2")


def _lookup(request: Any, name: str) -> Any:
    raise KeyError(name)


def _missing(request: Any) -> Any:
    from django.http import Http404

    raise Http404("no such thing")


urlpatterns = [
    path("api/pay/<int:pay_id>", _pay),
    path("boom", _boom),
    path("lookup/<str:name>", _lookup),
    path("missing", _missing),
]


@pytest.fixture(scope="module")
def django_settings() -> None:
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="test-" + "x" * 50,
            ROOT_URLCONF=__name__,
            ALLOWED_HOSTS=["127.0.0.1"],
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            TEMPLATES=[],
            USE_TZ=True,
        )
        django.setup()


def _django_wsgi(middleware: str, **overrides: Any) -> Any:
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    with override_settings(MIDDLEWARE=[middleware], **overrides):
        return WSGIHandler()  # loads the middleware chain now


def test_django_middleware(django_settings: None, caplog: pytest.LogCaptureFixture) -> None:
    DJANGO_SINK.events.clear()
    app = _django_wsgi(f"{__name__}.DjangoErrDiscount")
    with caplog.at_level(logging.ERROR, logger="errdiscount_sdk.provider"), serve_wsgi(app) as url:
        refused = httpx.post(url + "/api/pay/5?token=abc", headers={"x-user-id": "dora"})
        paid = httpx.post(url + "/api/pay/0", headers={"x-user-id": "dora"})
        boom = httpx.get(url + "/boom", headers={"accept-language": "zh-CN"})
        mapped = httpx.get(url + "/lookup/zzz")
        missing = httpx.get(url + "/missing")
    assert refused.status_code == 402 and refused.headers["content-type"] == "application/json"
    assert _verify(refused.json()["discount_token"], "dora") == "PAY_001"
    assert paid.json() == {"paid": True}
    assert boom.status_code == 500 and boom.json()["message"] == "服务处理请求时出错。"
    assert "hunter2" not in boom.text and "hunter2" in caplog.text
    assert mapped.status_code == 404 and mapped.json()["error_code"] == "NOT_FOUND"
    assert missing.status_code == 404 and "error_code" not in missing.text  # Django's own
    assert [(e["endpoint"], e["status"], e["outcome"]) for e in DJANGO_SINK.events] == [
        ("POST /api/pay/{pay_id}", 402, "error"),
        ("POST /api/pay/{pay_id}", 200, "ok"),
        ("GET /boom", 500, "error"),
        ("GET /lookup/{name}", 404, "error"),
        ("GET /missing", 404, "error"),
    ]
    assert DJANGO_SINK.events[0]["params"] == {"token": "[Filtered]"}
    assert DJANGO_SINK.events[0]["user_id"] == "dora"


def test_django_middleware_from_settings(django_settings: None) -> None:
    sink = RecordingSink()
    app = _django_wsgi(
        "errdiscount_sdk.django.ErrDiscountDjangoMiddleware",
        ERRDISCOUNT={"reporter": sink, "user_id": _django_user},
    )
    with serve_wsgi(app) as url:
        response = httpx.post(
            url + "/api/pay/3",
            headers={"x-user-id": "eve", "accept": "application/problem+json"},
        )
    assert response.status_code == 402
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Payment Required"
    assert response.json()["discount_token"] is None  # no issuer configured
    assert [(e["endpoint"], e["user_id"]) for e in sink.events] == [
        ("POST /api/pay/{pay_id}", "eve")
    ]
