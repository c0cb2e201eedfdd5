"""GET /v1/ledger (admin): the append-only audit trail, filtered and paged, JSON or CSV.

Query: ``subject``, ``since`` (inclusive) and ``until`` (exclusive) as RFC 3339
timestamps, ``limit`` (1-1000, default 100), ``cursor`` (the previous page's
``next_cursor``), ``format`` (``json`` default, or ``csv``). CSV pages carry the
next cursor in the ``Next-Cursor`` header.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from server_stub.store import entry_to_json, ledger_csv

from .._state import ServerState, state_of
from ..web._problems import HttpProblem, json_response

__all__ = ["ledger_routes"]

_PARAMS = frozenset({"subject", "since", "until", "limit", "cursor", "format"})


def _bad(message: str) -> HttpProblem:
    return HttpProblem(422, "INVALID_QUERY", message, "See GET /openapi.yaml for /v1/ledger.")


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value[:40])
    except ValueError:
        raise _bad(f"{name} must be an RFC 3339 timestamp.") from None
    if moment.tzinfo is None:
        raise _bad(f"{name} needs a time zone (e.g. Z).")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise _bad(f"{name} is out of range.") from None


def _int(value: str | None, name: str, default: int | None, low: int, high: int) -> int | None:
    if value is None:
        return default
    if (
        not value.isascii()
        or not value.isdigit()
        or len(value) > 19
        or not low <= int(value) <= high
    ):
        raise _bad(f"{name} must be an integer from {low} to {high}.")
    return int(value)


async def ledger(request: Request) -> Response:
    state = state_of(request)
    state.keys.require_admin(request)
    query = request.query_params
    unknown = sorted(set(query.keys()) - _PARAMS)
    if unknown:
        raise _bad(f"Unknown query parameter {unknown[0][:64]!r}.")
    form = query.get("format", "json")
    if form not in ("json", "csv"):
        raise _bad("format must be json or csv.")
    subject = query.get("subject")
    if subject is not None and (
        not 0 < len(subject) <= 256 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in subject)
    ):
        raise _bad("subject must be 1 to 256 characters, none of them control characters.")
    page = await state.db(
        state.store.ledger,
        subject=subject,
        since=_time(query.get("since"), "since"),
        until=_time(query.get("until"), "until"),
        after=_int(query.get("cursor"), "cursor", None, 0, 2**53),
        limit=_int(query.get("limit"), "limit", 100, 1, 1000) or 100,
    )
    if form == "csv":
        headers = {"Content-Disposition": 'attachment; filename="ledger.csv"'}
        if page.next_cursor is not None:
            headers["Next-Cursor"] = str(page.next_cursor)
        return Response(
            ledger_csv(page.entries), media_type="text/csv; charset=utf-8", headers=headers
        )
    return json_response(
        {"entries": [entry_to_json(e) for e in page.entries], "next_cursor": page.next_cursor}
    )


def ledger_routes(state: ServerState) -> list[BaseRoute]:
    return [Route("/v1/ledger", ledger, methods=["GET"])]
