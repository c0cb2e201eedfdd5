from server_stub.frontend._pages import (
    Markup,
    content_security_policy,
    escape,
    page_headers,
    prefers_html,
    render,
)

HOSTILE = """<script>alert("x")</script>' onmouseover="evil()" &amp;"""


def test_render_escapes_every_value_including_quotes() -> None:
    page = render("not_found.html", {"lang": 'en" onload="x', "title": HOSTILE, "body": HOSTILE})
    assert "<script>alert" not in page
    assert 'onmouseover="evil()"' not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#x27; onmouseover=&quot;" in page
    assert '<html lang="en&quot; onload=&quot;x">' in page
    assert "&amp;amp;" in page


def test_markup_passes_through_unescaped() -> None:
    assert escape(Markup("<b>ok</b>")) == "<b>ok</b>"
    assert escape("<b>") == "&lt;b&gt;"


def test_csp_has_no_inline_script_and_frames_per_setting() -> None:
    csp = content_security_policy()
    assert "'unsafe-inline'" not in csp
    assert "script-src 'self'" in csp
    assert "default-src 'self'" in csp
    assert csp.endswith("frame-ancestors 'none'")
    assert content_security_policy(["https://shop.example"]).endswith(
        "frame-ancestors https://shop.example"
    )


def test_page_headers() -> None:
    headers = page_headers()
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"


def test_prefers_html() -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert prefers_html(browser)
    assert prefers_html("text/html")
    assert not prefers_html("application/json")
    assert not prefers_html("*/*")
    assert not prefers_html(None)
    assert not prefers_html("application/json, text/html;q=0.5")
    assert prefers_html("application/json;q=0.1, text/*")
    assert not prefers_html("text/html;q=bad, application/json")
    assert not prefers_html("text/html," * 200)
