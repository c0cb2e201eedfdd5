"""Outcome events (``kind: "outcome"``): checked rows, deduped insert, retention.

Outcomes are what the provider reports of its users' business (a purchase, a
renewal): the "return" side of the compensation reports. They are stored apart from
the call events (no rollups: nothing aggregates them per minute) and deduplicated on
``event_id`` the same way: ``INSERT ... ON CONFLICT (event_id) DO NOTHING RETURNING``
names exactly the new ones, in the transaction of the batch's call events.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ._base import MAX_ID, MAX_NAME, Tx, check_text, to_us
from ._errors import StoreInputError
from ._event_models import OutcomeRecord

#: a serialized ``value`` or ``extensions`` document, in characters
MAX_DOCUMENT = 16 * 1024
MAX_OUTCOME_NAME = 128

_COLUMNS = ("event_id", "ts", "name", "user_id", "value", "extensions", "received_at")
_INSERT = (
    f"INSERT INTO outcome_events ({', '.join(_COLUMNS)})"  # noqa: S608
    f" VALUES ({', '.join(':' + column for column in _COLUMNS)})"
    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _row(record: OutcomeRecord, received_at: int) -> dict[str, Any]:
    check_text("event_id", record.event_id, MAX_ID)
    check_text("name", record.name, MAX_OUTCOME_NAME)
    if record.user_id is not None:
        check_text("user_id", record.user_id, MAX_NAME)
    value = record.value
    if not (value is None or isinstance(value, bool | int | float | str)):
        raise StoreInputError("value must be a number, a string, a bool or null")
    try:
        value_text = _ENCODER.encode(value)
        extensions = _ENCODER.encode(dict(record.extensions))
    except ValueError:  # NaN and infinities are not JSON
        raise StoreInputError("value must be a finite number") from None
    if len(value_text) > MAX_DOCUMENT or len(extensions) > MAX_DOCUMENT:
        raise StoreInputError(f"value and extensions are at most {MAX_DOCUMENT} characters")
    return {
        "event_id": record.event_id,
        "ts": to_us(record.ts),
        "name": record.name,
        "user_id": record.user_id,
        "value": value_text,
        "extensions": extensions,
        "received_at": received_at,
    }


def outcome_rows(records: Sequence[OutcomeRecord], received_at: int) -> list[dict[str, Any]]:
    """Check every record and turn it into a row (repeats in the batch: the first wins).

    Raises:
        StoreInputError: on the first record out of range.
    """
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for record in records:
        row = _row(record, received_at)
        if record.event_id in seen:
            continue
        seen.add(record.event_id)
        rows.append(row)
    return rows


def insert_new(tx: Tx, rows: Sequence[dict[str, Any]]) -> int:
    """Insert the rows, skipping known ids; how many were new."""
    if not rows:
        return 0
    return len(tx.executemany_returning(_INSERT, rows))


def prune_chunk(tx: Tx, *, cutoff: int, chunk: int) -> int:
    """Delete at most ``chunk`` outcome events older than ``cutoff``."""
    return tx.execute(
        "DELETE FROM outcome_events WHERE event_id IN"
        " (SELECT event_id FROM outcome_events WHERE ts < :cutoff LIMIT :chunk)",
        {"cutoff": cutoff, "chunk": chunk},
    )
