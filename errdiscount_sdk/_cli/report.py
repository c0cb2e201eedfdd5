"""``errdiscount report --server URL``: where failures concentrate, and what compensation did.

Asks the server's analytics API (admin key: ``--admin-key`` or ``ERRDISCOUNT_ADMIN_KEY``)
for the breakdown (every dimension, or ``--dimension``; a cross-tab with ``--by``), the
time series, the compensation funnel and the outcome comparison, and prints readable
tables (suspects marked ``*`` and ``◀ suspect``). A server without the funnel or outcome
reports (404: an older version) gets a note instead of that section. ``--json`` prints
one object for scripts, ``--csv`` the breakdown as CSV; ``--svg FILE`` / ``--png FILE``
write the charts as well.

Exit codes: 0 done; 1 the server refused (wrong key, 5xx) or could not be reached, or a
file could not be written; 2 usage (bad arguments, a query the server calls invalid,
PNG without cairosvg). Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from .._analytics.errors import InvalidReport, PngUnavailable
from .._analytics.model import (
    DIMENSIONS,
    Breakdown,
    CompensationReport,
    CrossTab,
    OutcomesReport,
    Timeseries,
    parse_breakdowns,
    parse_compensation,
    parse_crosstab,
    parse_outcomes,
    parse_timeseries,
)
from .._analytics.png import png_available, svg_to_png
from .._analytics.svg import combine, report_charts
from .._analytics.tables import (
    breakdown_csv,
    breakdown_table,
    compensation_table,
    crosstab_csv,
    crosstab_table,
    outcomes_table,
    timeseries_summary,
)
from .._http.client import Client
from .._http.retry import RetryPolicy
from .._model.errors import ApiError, ConfigurationError, NotFound
from .._version import __version__
from .args import EXIT_USAGE, positive_seconds

__all__ = ["ADMIN_KEY_ENV", "add_report_command"]

ADMIN_KEY_ENV = "ERRDISCOUNT_ADMIN_KEY"
EXIT_FAILED = 1
#: the largest report body read (7 dimensions of 100 values each is about 200 KB)
MAX_REPORT_BYTES = 4 * 1024 * 1024
_MAX_ARGUMENT = 256
_RELATIVE = re.compile(r"[0-9]{1,6}[mhd]")
_OPTIONAL = ("compensation", "outcomes")


class _Refused(Exception):
    """A report call failed; ``exit_code`` says whether it is the user's query (2) or not."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def window_bound(text: str) -> str:
    """``--since`` / ``--until``: ``<n>m|h|d`` or an RFC 3339 time with a zone."""
    if len(text) > _MAX_ARGUMENT:
        raise argparse.ArgumentTypeError("is too long")
    if _RELATIVE.fullmatch(text):
        return text
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an age like 7d, 12h, 30m nor an RFC 3339 time with a zone"
        )
    return text


def _short_text(text: str) -> str:
    if not text or len(text) > _MAX_ARGUMENT or any(ord(c) < 0x20 for c in text):
        raise argparse.ArgumentTypeError("must be 1 to 256 printable characters")
    return text


def _describe(exc: ApiError) -> str:
    payload = exc.payload
    status = exc.status_code
    parts = [f"HTTP {status}" if status is not None else type(exc).__name__]
    if payload is not None and payload.error_code:
        parts.append(payload.error_code)
    message = payload.message if payload is not None and payload.message else str(exc)
    return ": ".join([" ".join(parts), message.splitlines()[0][:300] if message else ""]).rstrip(
        ": "
    )


class _Reports:
    """The four report calls, through the SDK's own client (typed errors, safe retries)."""

    def __init__(self, server: str, admin_key: str, timeout: float) -> None:
        if not server.startswith(("http://", "https://")):
            raise ConfigurationError("--server must be an http(s) URL")
        self._base = server.rstrip("/")
        self._client = Client(
            timeout=timeout,
            retry=RetryPolicy(max_attempts=3),
            expect_json=True,
            max_json_bytes=MAX_REPORT_BYTES,
            headers={
                "Authorization": f"Bearer {admin_key}",
                "Accept": "application/json",
                "User-Agent": f"errdiscount/{__version__}",
            },
        )

    def close(self) -> None:
        self._client.close()

    def get(self, name: str, params: dict[str, str], *, optional: bool = False) -> Any:
        """The decoded report; None for an optional report the server does not have."""
        try:
            response = self._client.get(f"{self._base}/v1/reports/{name}", params=params)
        except NotFound:
            if optional:
                return None
            raise _Refused(
                f"{self._base} has no report API (GET /v1/reports/{name} is 404): "
                "upgrade the server",
                EXIT_FAILED,
            ) from None
        except ApiError as exc:
            usage = exc.status_code in (400, 422)
            raise _Refused(
                f"{name}: {_describe(exc)}", EXIT_USAGE if usage else EXIT_FAILED
            ) from None
        return response.json()


def _window(args: argparse.Namespace) -> dict[str, str]:
    params = {}
    if args.since:
        params["since"] = args.since
    if args.until:
        params["until"] = args.until
    return params


def _fetch(reports: _Reports, args: argparse.Namespace) -> dict[str, Any]:
    window = _window(args)
    filters = dict(window)
    if args.endpoint:
        filters["endpoint"] = args.endpoint
    if args.error_code:
        filters["error_code"] = args.error_code
    breakdown_params = dict(filters)
    if args.dimension:
        breakdown_params["dimension"] = args.dimension
    if args.by:
        breakdown_params["by"] = args.by
    documents: dict[str, Any] = {
        "breakdown": reports.get("breakdown", breakdown_params),
        "timeseries": reports.get("timeseries", filters),
    }
    for name in _OPTIONAL:
        documents[name] = reports.get(name, window, optional=True)
    return documents


class _Parsed:
    def __init__(self, documents: dict[str, Any], crosstab: bool) -> None:
        self.breakdowns: tuple[Breakdown, ...] = ()
        self.crosstab: CrossTab | None = None
        if crosstab:
            self.crosstab = parse_crosstab(documents["breakdown"])
        else:
            self.breakdowns = parse_breakdowns(documents["breakdown"])
        self.timeseries: Timeseries = parse_timeseries(documents["timeseries"])
        compensation, outcomes = documents["compensation"], documents["outcomes"]
        self.compensation: CompensationReport | None = (
            None if compensation is None else parse_compensation(compensation)
        )
        self.outcomes: OutcomesReport | None = (
            None if outcomes is None else parse_outcomes(outcomes)
        )


def _tables(parsed: _Parsed) -> str:
    sections = [timeseries_summary(parsed.timeseries)]
    if parsed.crosstab is not None:
        sections.append(crosstab_table(parsed.crosstab))
    sections.extend(breakdown_table(report) for report in parsed.breakdowns)
    if parsed.compensation is None:
        sections.append("Compensation funnel: not available on this server (404); skipped.")
    else:
        sections.append(compensation_table(parsed.compensation))
    if parsed.outcomes is None:
        sections.append("Outcome comparison: not available on this server (404); skipped.")
    else:
        sections.append(outcomes_table(parsed.outcomes))
    return "\n\n".join(sections)


def _write(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise _Refused(f"{path}: {exc.strerror}", EXIT_FAILED) from None


def _charts(parsed: _Parsed, args: argparse.Namespace) -> None:
    charts = report_charts(
        parsed.breakdowns,
        timeseries=parsed.timeseries,
        compensation=parsed.compensation,
        outcomes=parsed.outcomes,
        crosstab=parsed.crosstab,
    )
    suspects = [
        f"{b.dimension} {v.value if v.value is not None else '(unknown)'}"
        for b in parsed.breakdowns
        for v in b.suspects
    ]
    desc = "Suspects: " + ", ".join(suspects) + "." if suspects else "No suspect."
    svg = combine(charts, title="errdiscount report", desc=desc)
    if args.svg:
        _write(args.svg, svg.encode("utf-8"))
        print(f"errdiscount: wrote {args.svg}", file=sys.stderr)
    if args.png:
        _write(args.png, svg_to_png(svg))
        print(f"errdiscount: wrote {args.png}", file=sys.stderr)


def _cmd_report(args: argparse.Namespace) -> int:
    admin_key = args.admin_key or os.environ.get(ADMIN_KEY_ENV)
    if not admin_key:
        print(
            f"errdiscount: error: an admin key is needed: --admin-key or {ADMIN_KEY_ENV}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.by and not args.dimension:
        print("errdiscount: error: --by needs --dimension", file=sys.stderr)
        return EXIT_USAGE
    if args.by and args.by == args.dimension:
        print("errdiscount: error: --by must differ from --dimension", file=sys.stderr)
        return EXIT_USAGE
    if args.png and not png_available():
        print(
            "errdiscount: error: --png needs cairosvg: pip install 'errdiscount-sdk[png]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        reports = _Reports(args.server, admin_key, args.timeout)
    except ConfigurationError as exc:
        print(f"errdiscount: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with_reports = _fetch(reports, args)
        parsed = _Parsed(with_reports, crosstab=bool(args.by))
        if args.json:
            skipped = [name for name in _OPTIONAL if with_reports[name] is None]
            print(json.dumps({**with_reports, "skipped": skipped}, ensure_ascii=False))
        elif args.csv:
            if parsed.crosstab is not None:
                sys.stdout.write(crosstab_csv(parsed.crosstab))
            else:
                sys.stdout.write(breakdown_csv(parsed.breakdowns))
        else:
            print(_tables(parsed))
        if args.svg or args.png:
            _charts(parsed, args)
    except _Refused as exc:
        print(f"errdiscount: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except InvalidReport as exc:
        print(f"errdiscount: error: the server's report is not valid: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except PngUnavailable as exc:
        print(f"errdiscount: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        reports.close()
    return 0


def add_report_command(commands: Any) -> None:
    """Register ``report`` on the CLI's sub-command parsers."""
    report = commands.add_parser(
        "report", help="where failures concentrate and what compensation did (analytics)"
    )
    report.add_argument("--server", required=True, help="base URL of the errdiscount server")
    report.add_argument(
        "--admin-key",
        help=f"the server's admin key (default: ${ADMIN_KEY_ENV}; prefer the variable: "
        "arguments are visible to other users of the machine)",
    )
    report.add_argument(
        "--since", type=window_bound, help="window start: 7d, 12h, 30m or an RFC 3339 time"
    )
    report.add_argument("--until", type=window_bound, help="window end (default: now)")
    report.add_argument("--dimension", choices=DIMENSIONS, help="one dimension (default: all)")
    report.add_argument("--by", choices=DIMENSIONS, help="a second dimension: a cross-tab")
    report.add_argument("--endpoint", type=_short_text, help="only this endpoint")
    report.add_argument("--error-code", type=_short_text, help="only this error code")
    output = report.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object")
    output.add_argument("--csv", action="store_true", help="print the breakdown as CSV")
    report.add_argument("--svg", metavar="FILE", help="also write the charts as SVG")
    report.add_argument("--png", metavar="FILE", help="also write the charts as PNG (cairosvg)")
    report.add_argument(
        "--timeout", type=positive_seconds, default=30.0, help="seconds per attempt (> 0)"
    )
    report.set_defaults(handler=_cmd_report)
