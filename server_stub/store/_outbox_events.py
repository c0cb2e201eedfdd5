"""Outbox events: their payloads, and the one helper that writes one inside a transaction.

Every event is written by `append_outbox` in the transaction of the ledger row it
reports (issued, redeemed, reversed; incidents by the detector), so an event exists
if and only if what it reports was committed: the transactional outbox. The payload
is the Standard Webhooks shape ``{"type", "timestamp", "data"}``; ``data`` carries
the ids a CRM needs and never the token (a bearer credential).

Amounts are shown as the token states them (``{"kind", "amount", "unit"}``, a
currency in decimals), through the same functions the HTTP responses use.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from errdiscount_sdk.wire import EVENT_TYPES, MAX_EVENT_PAYLOAD_BYTES, EventType

from ._base import Tx, dumps, from_us, to_us
from ._errors import StoreInputError
from ._models import IssuedToken, Redemption

__all__ = [
    "append_outbox",
    "compensation_json",
    "grant_json",
    "incident_closed_event",
    "incident_opened_event",
    "issued_event",
    "new_event_id",
    "redeemed_event",
    "reversed_event",
    "wire_amount",
]

_CENT = "_cent"


def wire_amount(amount: int, unit: str) -> tuple[int | float, str]:
    """A store amount (integer, cents for currencies) as the token states it."""
    if unit.endswith(_CENT):
        value = amount / 100
        return (int(value) if value.is_integer() else value), unit[: -len(_CENT)]
    return amount, unit


def compensation_json(kind: str, amount: int, unit: str) -> dict[str, Any]:
    """``{"kind", "amount", "unit"}`` as the token states it."""
    value, wire_unit = wire_amount(amount, unit)
    return {"kind": kind, "amount": value, "unit": wire_unit}


def grant_json(redemption: Redemption) -> dict[str, Any]:
    """What was granted, shaped per kind (docs/openapi.yaml, ``Grant``)."""
    kind = redemption.kind
    value, unit = wire_amount(redemption.grant.amount, redemption.grant.unit)
    if kind == "coupon":
        return {
            "kind": kind,
            "coupon_code": redemption.grant.coupon_code,
            "amount": value,
            "unit": unit,
        }
    if kind == "points":
        return {"kind": kind, "points": value}
    if kind in ("membership_extension", "trial_extension"):
        return {"kind": kind, "days": value}
    if kind == "retry_chance":
        return {"kind": kind, "count": 1, "days": value}
    return {"kind": kind, "amount": value, "unit": unit}


def new_event_id(now: int) -> str:
    """``evt_`` + the time in µs (14 hex digits: ids sort by time) + 64 random bits."""
    return f"evt_{now:014x}{secrets.token_hex(8)}"


def _rfc3339(at: int) -> str:
    return from_us(at).astimezone(UTC).isoformat().replace("+00:00", "Z")


def append_outbox(
    tx: Tx,
    event_type: str,
    data: Mapping[str, Any],
    *,
    now: int,
    subject: str | None = None,
    jti: str | None = None,
) -> str:
    """Write one outbox event in ``tx`` (commits or rolls back with it); returns its id.

    Incidents' events (`incident_opened_event`, `incident_closed_event`) are written
    through it by the statement's transaction that inserts or closes the incident.
    ``subject`` and ``jti`` are indexed copies for lookups.

    Raises:
        StoreInputError: an unknown event type, or a payload above 20 KB.
    """
    if event_type not in EVENT_TYPES:
        raise StoreInputError(f"unknown event type {event_type!r}")
    event_id = new_event_id(now)
    payload = dumps({"type": event_type, "timestamp": _rfc3339(now), "data": dict(data)})
    if len(payload.encode("utf-8")) > MAX_EVENT_PAYLOAD_BYTES:
        raise StoreInputError(f"an event payload is at most {MAX_EVENT_PAYLOAD_BYTES} bytes")
    tx.execute(
        "INSERT INTO outbox (id, type, payload, subject, jti, created_at, status, attempts,"
        " next_attempt_at) VALUES (:id, :type, :payload, :subject, :jti, :now, 'pending', 0,"
        " :now)",
        {
            "id": event_id,
            "type": event_type,
            "payload": payload,
            "subject": subject,
            "jti": jti,
            "now": now,
        },
    )
    return event_id


def _origin(tx: Tx, jti: str) -> dict[str, Any]:
    """Error code, incident and alert URL of a token this server issued (else nulls)."""
    row = tx.one(
        "SELECT error_code, incident, alert_url FROM issued_tokens WHERE jti = :jti", {"jti": jti}
    )
    if row is None:
        return {"error_code": None, "incident": None, "alert_url": None}
    return {
        "error_code": row["error_code"],
        "incident": row["incident"],
        "alert_url": row["alert_url"],
    }


def issued_event(tx: Tx, token: IssuedToken, *, now: int) -> str:
    data = {
        "jti": token.jti,
        "subject": token.subject,
        "issuer": token.issuer,
        "compensation": compensation_json(token.kind, token.amount, token.unit),
        "campaign": token.campaign,
        "error_code": token.error_code,
        "incident": token.incident,
        "alert_url": token.alert_url,
        "expires_at": _rfc3339(to_us(token.expires_at)),
    }
    return append_outbox(
        tx, EventType.COMPENSATION_ISSUED, data, now=now, subject=token.subject, jti=token.jti
    )


def _redemption_data(tx: Tx, redemption: Redemption) -> dict[str, Any]:
    return {
        "jti": redemption.jti,
        "subject": redemption.subject,
        "issuer": redemption.issuer,
        "redemption_id": redemption.id,
        "compensation": compensation_json(redemption.kind, redemption.amount, redemption.unit),
        "grant": grant_json(redemption),
        "campaign": redemption.campaign,
        **_origin(tx, redemption.jti),
    }


#: ``compensation.redeemed`` events of a PostgreSQL redemption batch, written in its
#: second round trip (its transaction): the origin (error code, incident, alert URL)
#: is joined in by the database, as `_origin` reads it for the one-by-one path.
REDEEMED_BATCH_SQL = (
    "INSERT INTO outbox (id, type, payload, subject, jti, created_at, status, attempts,"
    " next_attempt_at)"
    " SELECT e.id, :type::text, jsonb_build_object('type', :type::text, 'timestamp', :ts::text,"
    "  'data', e.data::jsonb || jsonb_build_object('error_code', t.error_code,"
    "  'incident', t.incident, 'alert_url', t.alert_url))::text,"
    " e.subject, e.jti, :now::bigint, 'pending', 0, :now::bigint"
    " FROM unnest(:ids::text[], :jtis::text[], :subjects::text[], :datas::text[])"
    "  AS e(id, jti, subject, data)"
    " LEFT JOIN issued_tokens t ON t.jti = e.jti"
)


def redeemed_batch_params(redemptions: list[Redemption], *, now: int) -> dict[str, Any]:
    """Parameters of `REDEEMED_BATCH_SQL` for the batch's redeemed items."""
    datas = []
    for redemption in redemptions:
        data = {
            "jti": redemption.jti,
            "subject": redemption.subject,
            "issuer": redemption.issuer,
            "redemption_id": redemption.id,
            "compensation": compensation_json(redemption.kind, redemption.amount, redemption.unit),
            "grant": grant_json(redemption),
            "campaign": redemption.campaign,
            "redeemed_at": _rfc3339(now),
        }
        text = dumps(data)
        if len(text.encode("utf-8")) > MAX_EVENT_PAYLOAD_BYTES - 1024:
            raise StoreInputError(f"an event payload is at most {MAX_EVENT_PAYLOAD_BYTES} bytes")
        datas.append(text)
    return {
        "type": EventType.COMPENSATION_REDEEMED,
        "ts": _rfc3339(now),
        "now": now,
        "ids": [new_event_id(now) for _ in redemptions],
        "jtis": [r.jti for r in redemptions],
        "subjects": [r.subject for r in redemptions],
        "datas": datas,
    }


def redeemed_event(tx: Tx, redemption: Redemption, *, now: int) -> str:
    data = {**_redemption_data(tx, redemption), "redeemed_at": _rfc3339(now)}
    return append_outbox(
        tx,
        EventType.COMPENSATION_REDEEMED,
        data,
        now=now,
        subject=redemption.subject,
        jti=redemption.jti,
    )


def reversed_event(tx: Tx, redemption: Redemption, reason: str, *, now: int) -> str:
    data = {**_redemption_data(tx, redemption), "reason": reason, "reversed_at": _rfc3339(now)}
    return append_outbox(
        tx,
        EventType.COMPENSATION_REVERSED,
        data,
        now=now,
        subject=redemption.subject,
        jti=redemption.jti,
    )


def _opt_rfc3339(at: int | None) -> str | None:
    return None if at is None else _rfc3339(at)


#: The endpoint names an incident event lists at most (in characters, all names
#: together): a declared scope may hold 1000 names of 256 characters, the payload at
#: most 20 KB. ``scope_total`` always gives the full count.
MAX_SCOPE_CHARS = 12_000


def _scope_json(scope: Sequence[str]) -> dict[str, Any]:
    listed: list[str] = []
    used = 0
    for name in scope:
        used += len(name) + 4  # quotes, comma, space; escapes are rare in route names
        if used > MAX_SCOPE_CHARS:
            break
        listed.append(name)
    return {"scope": listed, "scope_total": len(scope)}


def incident_opened_event(
    tx: Tx,
    incident: str,
    *,
    scope: Sequence[str],
    manual: bool,
    start: int,
    end: int | None,
    now: int,
) -> str:
    """``incident.opened``: the incident's id, scope (endpoints, or ``["*"]``: all;
    cut to `MAX_SCOPE_CHARS`, ``scope_total`` names), whether an operator declared it,
    its start and declared end (null: still open). Severity and affected users are
    only known at the close (null here)."""
    data = {
        "incident": incident,
        **_scope_json(scope),
        "manual": manual,
        "start": _rfc3339(start),
        "end": _opt_rfc3339(end),
        "severity": None,
        "affected_users": None,
        "opened_at": _rfc3339(now),
    }
    return append_outbox(tx, EventType.INCIDENT_OPENED, data, now=now)


def incident_closed_event(
    tx: Tx,
    incident: str,
    *,
    scope: Sequence[str],
    manual: bool,
    start: int,
    end: int,
    severity: str,
    affected_users: int,
    now: int,
) -> str:
    """``incident.closed``: as opened, with its end, severity and affected user count
    (the users are compensated by their own ``compensation.issued`` events)."""
    data = {
        "incident": incident,
        **_scope_json(scope),
        "manual": manual,
        "start": _rfc3339(start),
        "end": _rfc3339(end),
        "severity": severity,
        "affected_users": affected_users,
        "closed_at": _rfc3339(now),
    }
    return append_outbox(tx, EventType.INCIDENT_CLOSED, data, now=now)


def payload_of(raw: str) -> dict[str, Any]:
    data = json.loads(raw)
    assert isinstance(data, dict)
    return data
