"""``/dashboard``: the analytics reports as server-rendered pages, for administrators only.

- ``GET /dashboard``: failures over time with incident bands, the breakdown of every
  dimension with the suspects named and highlighted, the compensation funnel and cost, the
  outcome comparison — all as inline SVG drawn by `errdiscount_sdk.reports` (no script,
  no CDN; readable without JavaScript; the pages' strict CSP). ``?since=`` picks the
  window from a fixed list (a plain GET form), ``?lang=`` the language.
- Who: ``Authorization: Bearer <admin key>`` (scripts), or the signed cookie
  `DashboardSessions` issues at ``POST /dashboard/sign-in`` (HttpOnly, SameSite=Strict,
  Secure on https, path /dashboard; its value is never the key).
  Without either, ``GET /dashboard`` redirects to the sign-in form; no report is read.
  Sign-in attempts are rate limited per client address (`SIGN_IN_PER_MINUTE`), and a POST
  whose ``Origin`` names another site is refused.
- Data: the report functions of ``server_stub.analytics`` (the same JSON the
  ``/v1/reports/*`` routes answer), called in-process (`contract_reports`, the default
  `ReportLoader`) on a worker thread; each section stands alone, so a report that is
  missing or fails shows a note for that section only.
"""

from __future__ import annotations

import datetime as dt
import logging
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from errdiscount_sdk.reports import (
    Breakdown,
    Chart,
    ChartLabels,
    InvalidReport,
    breakdown_chart,
    compensation_chart,
    outcomes_chart,
    parse_breakdowns,
    parse_compensation,
    parse_outcomes,
    parse_timeseries,
    timeseries_chart,
    xml_text,
)

from .. import analytics
from .._state import ServerState
from ..routes._redeem import client_ip
from ..web._ratelimit import RateLimiter
from ._dashboard_auth import DashboardSessionInvalid, DashboardSessions
from ._i18n import catalogues, choose_language
from ._pages import Markup, escape, html_response, render

__all__ = [
    "COOKIE_NAME",
    "SIGN_IN_PER_MINUTE",
    "WINDOWS",
    "ReportLoader",
    "ReportUnavailable",
    "contract_reports",
    "dashboard_routes",
]

log = logging.getLogger("server_stub")

COOKIE_NAME = "errdiscount_dashboard"
COOKIE_PATH = "/dashboard"
SIGN_IN_PER_MINUTE = 10
_SIGN_IN_BURST = 5
MAX_FORM_BYTES = 4096
WINDOWS = ("24h", "7d", "30d", "90d")
DEFAULT_WINDOW = "7d"
_FORM = "application/x-www-form-urlencoded"


class ReportUnavailable(LookupError):
    """This server has no such report (the analytics part is older or absent)."""


ReportLoader = Callable[[str, Any, Mapping[str, str], dt.datetime], Any]
"""``(report, store, query parameters, now) → the report document`` (the contract's JSON).

``report`` is ``breakdown``, ``timeseries``, ``compensation`` or ``outcomes``. Runs on a
worker thread (`ServerState.db`). Raises `ReportUnavailable` for a report the server lacks.
"""

_REPORTS: Mapping[str, tuple[Callable[[Any, Any], Any], Callable[[Any, dt.datetime], Any]]] = {
    "breakdown": (analytics.breakdown, analytics.BreakdownQuery.from_params),
    "timeseries": (analytics.timeseries, analytics.TimeseriesQuery.from_params),
    "compensation": (analytics.compensation, analytics.CompensationQuery.from_params),
    "outcomes": (analytics.outcomes, analytics.OutcomesQuery.from_params),
}


def contract_reports(report: str, store: Any, params: Mapping[str, str], now: dt.datetime) -> Any:
    """The reports of ``server_stub.analytics``: exactly what ``/v1/reports/<report>`` answers.

    Raises:
        ReportUnavailable: no report of that name.
        InvalidReportQuery: ``params`` are not a valid query of that report.
    """
    if report not in _REPORTS:
        raise ReportUnavailable(report)
    function, parse = _REPORTS[report]
    return function(store, parse(dict(params), now))


def _labels(lang: str) -> ChartLabels:
    return ChartLabels.from_mapping(catalogues().section(lang, "chart"))


def _language(request: Request, form: Mapping[str, str] | None = None) -> str:
    wanted = (form or {}).get("lang") or request.query_params.get("lang")
    return choose_language(wanted, request.headers.get("accept-language"))


def _secure(request: Request, public_url: str | None) -> bool:
    return request.url.scheme == "https" or (public_url or "").startswith("https://")


def _foreign_origin(request: Request, public_url: str | None) -> bool:
    """True when a POST says it comes from another site (``Origin: null`` is no claim:
    browsers send it for same-origin posts from no-referrer pages)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return False
    own = {f"{request.url.scheme}://{request.url.netloc}"}
    if public_url:
        parts = urllib.parse.urlsplit(public_url)
        own.add(f"{parts.scheme}://{parts.netloc}")
    return origin not in own


async def _read_form(request: Request) -> dict[str, str] | None:
    """A small urlencoded form (first value of each field), or None if it is not one."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != _FORM:
        return None
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return None
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return None
    except ClientDisconnect:
        return None
    try:
        pairs = urllib.parse.parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=8
        )
    except (UnicodeDecodeError, ValueError):
        return None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


def _format_when(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


class _Page:
    """What one dashboard request renders: the language, its texts, the sections."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.cat = catalogues()
        self.labels = _labels(lang)
        self.sections: list[str] = []

    def text(self, key: str, **values: object) -> str:
        return self.cat.text(self.lang, f"dashboard.{key}", **values)

    def section(self, key: str, body: Iterable[str]) -> None:
        heading = f"dashboard-{key.replace('_', '-')}"
        self.sections.append(
            f'<section class="dashboard-section" aria-labelledby="{heading}">'
            f'<h2 id="{heading}">{escape(self.text(key))}</h2>{"".join(body)}</section>'
        )

    def note(self, key: str) -> str:
        css = "dashboard-note" if key == "unavailable" else "dashboard-error"
        return f'<p class="{css}" role="status">{escape(self.text(key))}</p>'

    @staticmethod
    def figure(chart: Chart, chart_id: str) -> str:
        # The SVG is built by the SDK's renderer, every text in it XML-escaped there.
        return f'<figure class="dashboard-chart">{chart.svg(chart_id)}</figure>'

    def suspects(self, breakdowns: Iterable[Breakdown]) -> str:
        lines = []
        for report in breakdowns:
            for value in report.suspects:
                lines.append(
                    self.text(
                        "suspect_line",
                        dimension=self.labels.dimension(report.dimension),
                        value=self.labels.unknown if value.value is None else value.value,
                        failure_share=f"{value.failure_share * 100:.1f}%",
                        call_share=f"{value.call_share * 100:.1f}%",
                        lift="-" if value.lift is None else f"{value.lift:.1f}\u00d7",
                    )
                )
        if not lines:
            return f'<p class="dashboard-note">{escape(self.text("no_suspect"))}</p>'
        # xml_text: escaped like `escape`, and app-sent control characters replaced too.
        items = "".join(f"<li>{xml_text(line)}</li>" for line in lines)
        return f'<ul class="dashboard-suspects" data-suspects>{items}</ul>'


def dashboard_routes(
    state: ServerState,
    *,
    loader: ReportLoader = contract_reports,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> list[Route]:
    """The dashboard, its sign-in form and sign-out.

    Args:
        state: the server (admin keys, signing key, store).
        loader: where the reports come from (default: ``server_stub.analytics``).
        clock: "now" for relative windows (tests).
    """
    settings = state.settings
    sessions = DashboardSessions(state.signing_key, settings.admin_keys())
    limiter = RateLimiter(rate_per_second=SIGN_IN_PER_MINUTE / 60, burst=_SIGN_IN_BURST)

    def admin_of(request: Request) -> str | None:
        if "authorization" in request.headers:
            return state.keys.require_admin(request)  # a wrong key is 401, as on the API
        cookie = request.cookies.get(COOKIE_NAME)
        if cookie is None:
            return None
        try:
            return sessions.admin(cookie)
        except DashboardSessionInvalid:
            return None

    def sign_in_page(lang: str, *, status: int = 200, message: str | None = None) -> Response:
        cat = catalogues()
        shown = (
            Markup(f'<p class="dashboard-error" role="alert">{escape(message)}</p>')
            if message
            else Markup("")
        )
        body = render(
            "dashboard_sign_in.html",
            {
                "lang": lang,
                "title": cat.text(lang, "dashboard.sign_in_title"),
                "intro": cat.text(lang, "dashboard.sign_in_intro"),
                "key_label": cat.text(lang, "dashboard.key_label"),
                "sign_in": cat.text(lang, "dashboard.sign_in"),
                "language_label": cat.text(lang, "dashboard.language"),
                "message": shown,
            },
        )
        return html_response(body, status_code=status)

    def to_sign_in(lang: str) -> Response:
        query = urllib.parse.urlencode({"lang": lang})
        return RedirectResponse(f"/dashboard/sign-in?{query}", status_code=303)

    async def load(report: str, params: Mapping[str, str], now: dt.datetime) -> Any:
        """The report document, or None when this server does not have that report."""
        try:
            return await state.db(loader, report, state.store, params, now)
        except ReportUnavailable:
            return None
        except analytics.InvalidReportQuery:
            # The window comes from `WINDOWS`, which every report accepts: a bug, not input.
            log.warning("the %s report refused the dashboard's query", report, exc_info=True)
            return None

    async def dashboard(request: Request) -> Response:
        lang = _language(request)
        admin = admin_of(request)
        if admin is None:
            return to_sign_in(lang)
        since = request.query_params.get("since", DEFAULT_WINDOW)
        page = _Page(lang)
        status = 200
        if since not in WINDOWS:
            status, since = 400, DEFAULT_WINDOW
            page.sections.append(page.note("bad_window"))
        now = clock()
        params = {"since": since}
        await render_sections(page, params, now)
        options = "".join(
            f'<option value="{w}"{" selected" if w == since else ""}>'
            f"{escape(page.text(f'window_{w}'))}</option>"
            for w in WINDOWS
        )
        until = now.astimezone(dt.UTC)
        start = until - _window_length(since)
        body = render(
            "dashboard.html",
            {
                "lang": lang,
                "title": page.text("title"),
                "language_label": page.text("language"),
                "since": since,
                "signed_in_as": page.text("signed_in_as", admin=admin),
                "sign_out": page.text("sign_out"),
                "window_label": page.text("window"),
                "window_options": Markup(options),
                "show": page.text("show"),
                "range": page.text("range", since=_format_when(start), until=_format_when(until)),
                "sections": Markup("".join(page.sections)),
            },
        )
        return html_response(body, status_code=status)

    async def render_sections(page: _Page, params: Mapping[str, str], now: dt.datetime) -> None:
        labels = page.labels

        def over_time(document: Any) -> list[str]:
            return [page.figure(timeseries_chart(parse_timeseries(document), labels), "ts")]

        def concentrate(document: Any) -> list[str]:
            breakdowns = parse_breakdowns(document)
            charts = [
                page.figure(breakdown_chart(report, labels), f"bd-{index}")
                for index, report in enumerate(breakdowns)
            ]
            return [page.suspects(breakdowns), '<div class="dashboard-charts">', *charts, "</div>"]

        def compensation(document: Any) -> list[str]:
            return [page.figure(compensation_chart(parse_compensation(document), labels), "cp")]

        def outcomes(document: Any) -> list[str]:
            report = parse_outcomes(document)
            return [page.figure(outcomes_chart(report, labels), "oc")]

        sections: list[tuple[str, str, Callable[[Any], list[str]]]] = [
            ("over_time", "timeseries", over_time),
            ("concentrate", "breakdown", concentrate),
            ("compensation", "compensation", compensation),
            ("outcomes", "outcomes", outcomes),
        ]
        for key, report, draw in sections:
            document = await load(report, params, now)
            if document is None:
                page.section(key, [page.note("unavailable")])
                continue
            try:
                page.section(key, draw(document))
            except InvalidReport:
                log.warning("the %s report does not match the contract", report, exc_info=True)
                page.section(key, [page.note("failed")])

    async def sign_in_form(request: Request) -> Response:
        lang = _language(request)
        if not sessions.enabled:
            return sign_in_page(
                lang, status=503, message=catalogues().text(lang, "dashboard.disabled")
            )
        return sign_in_page(lang)

    async def sign_in(request: Request) -> Response:
        form = await _read_form(request)
        lang = _language(request, form)
        cat = catalogues()
        if _foreign_origin(request, settings.public_url):
            return sign_in_page(lang, status=403, message=cat.text(lang, "dashboard.wrong_key"))
        if not sessions.enabled:
            return sign_in_page(lang, status=503, message=cat.text(lang, "dashboard.disabled"))
        wait = limiter.acquire(client_ip(request))
        if wait:
            response = sign_in_page(
                lang, status=429, message=cat.text(lang, "dashboard.rate_limited", seconds=wait)
            )
            response.headers["Retry-After"] = str(wait)
            return response
        presented = (form or {}).get("admin_key", "")
        admin = sessions.admin_of_key(presented) if 0 < len(presented) <= 1024 else None
        if admin is None:
            return sign_in_page(lang, status=401, message=cat.text(lang, "dashboard.wrong_key"))
        response = RedirectResponse(
            f"/dashboard?{urllib.parse.urlencode({'lang': lang})}", status_code=303
        )
        response.set_cookie(
            COOKIE_NAME,
            sessions.issue(admin),
            max_age=sessions.ttl,
            path=COOKIE_PATH,
            secure=_secure(request, settings.public_url),
            httponly=True,
            samesite="strict",
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    async def sign_out(request: Request) -> Response:
        form = await _read_form(request)
        lang = _language(request, form)
        if _foreign_origin(request, settings.public_url):
            return sign_in_page(lang, status=403)
        response = to_sign_in(lang)
        response.delete_cookie(
            COOKIE_NAME,
            path=COOKIE_PATH,
            secure=_secure(request, settings.public_url),
            httponly=True,
            samesite="strict",
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    return [
        Route("/dashboard", dashboard, methods=["GET"], name="dashboard"),
        Route("/dashboard/sign-in", sign_in_form, methods=["GET"], name="dashboard_sign_in_form"),
        Route("/dashboard/sign-in", sign_in, methods=["POST"], name="dashboard_sign_in"),
        Route("/dashboard/sign-out", sign_out, methods=["POST"], name="dashboard_sign_out"),
    ]


def _window_length(since: str) -> dt.timedelta:
    amount, unit = int(since[:-1]), since[-1]
    return dt.timedelta(hours=amount) if unit == "h" else dt.timedelta(days=amount)
