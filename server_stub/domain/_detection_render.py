"""JSON of detection records (episodes, incidents, automatic compensations), shared by
the detection admin routes and ``GET /v1/users/{subject}/compensations``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from errdiscount_sdk.detection import ALL_ENDPOINTS
from server_stub.store import AutoCompensation, EpisodeRecord, IncidentRecord, UserCompensation

from ._render import compensation_json, rfc3339

__all__ = ["auto_json", "episode_json", "incident_json", "opt_time", "user_compensation_json"]


def opt_time(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)


def episode_json(episode: EpisodeRecord) -> dict[str, Any]:
    return {
        "id": episode.id,
        "user_id": episode.user_id,
        "endpoint": episode.endpoint,
        "start": rfc3339(episode.start),
        "end": opt_time(episode.end),
        "failures": episode.failures,
        "rule": episode.rule,
        "state": episode.state,
        "detected_at": rfc3339(episode.detected_at),
    }


def incident_json(incident: IncidentRecord) -> dict[str, Any]:
    scope: list[str] | str = "all" if incident.scope == (ALL_ENDPOINTS,) else list(incident.scope)
    return {
        "id": incident.id,
        "scope": scope,
        "start": rfc3339(incident.start),
        "end": opt_time(incident.end),
        "severity": incident.severity,
        "manual": incident.manual,
        "state": incident.state,
        "affected_users": incident.affected_users,
        "declared_at": rfc3339(incident.declared_at),
        "close_requested_at": opt_time(incident.close_requested_at),
        "closed_at": opt_time(incident.closed_at),
    }


def auto_json(row: AutoCompensation) -> dict[str, Any]:
    compensation = (
        None if row.status == "withheld" else compensation_json(row.kind, row.amount, row.unit)
    )
    return {
        "user_id": row.user_id,
        "reason": row.reason,
        "ref": row.ref,
        "status": row.status,
        "why": row.why,
        "severity": row.severity,
        "compensation": compensation,
        "jti": row.jti,
        "extra_jti": row.extra_jti,
        "detail": dict(row.detail),
        "decided_at": rfc3339(row.decided_at),
        "recorded_at": opt_time(row.created_at),
    }


def user_compensation_json(row: UserCompensation) -> dict[str, Any]:
    return {
        "jti": row.jti,
        "reason": row.reason,
        "ref": row.ref,
        "compensation": compensation_json(row.kind, row.amount, row.unit),
        "campaign": row.campaign,
        "alert_id": row.alert_id,
        "issued_at": opt_time(row.issued_at),
        "expires_at": rfc3339(row.expires_at),
        "redeemed": row.redeemed,
    }
