import httpx
from starlette.applications import Starlette

from server_stub.frontend._static import STATIC_FILES, static_routes
from tests.support.server import serve


def test_static_files_have_types_caching_and_etags() -> None:
    app = Starlette(routes=static_routes())
    with serve(app) as base, httpx.Client(base_url=base) as client:
        for name, media_type in STATIC_FILES.items():
            response = client.get(f"/static/{name}")
            assert response.status_code == 200, name
            assert response.headers["content-type"] == media_type
            assert response.headers["x-content-type-options"] == "nosniff"
            assert "max-age=" in response.headers["cache-control"]
            again = client.get(
                f"/static/{name}", headers={"If-None-Match": response.headers["etag"]}
            )
            assert again.status_code == 304
            assert again.content == b""
        assert (
            client.get("/static/errdiscount.js", headers={"If-None-Match": '"other"'}).status_code
            == 200
        )


def test_the_favicon_is_served_where_browsers_look_for_it() -> None:
    app = Starlette(routes=static_routes())
    with serve(app) as base, httpx.Client(base_url=base) as client:
        icon = client.get("/favicon.ico")
        assert icon.status_code == 200
        assert icon.headers["content-type"] == "image/x-icon"
        assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
        assert icon.content == client.get("/static/favicon.ico").content
        assert client.head("/favicon.ico").status_code == 200
        tag = icon.headers["etag"]
        assert client.get("/favicon.ico", headers={"If-None-Match": tag}).status_code == 304


def test_only_listed_files_are_served() -> None:
    app = Starlette(routes=static_routes())
    with serve(app) as base, httpx.Client(base_url=base) as client:
        for path in ("/static/nope.js", "/static/..%2F_static.py", "/static/%2e%2e", "/static/"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert b"import" not in response.content


def test_widget_source_never_uses_innerhtml_or_eval() -> None:
    from pathlib import Path

    source = (
        Path(__file__).parents[2] / "server_stub" / "frontend" / "static" / "errdiscount.js"
    ).read_text()
    for forbidden in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ):
        assert forbidden not in source, forbidden
