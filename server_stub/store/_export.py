"""Ledger export: CSV for spreadsheets, JSON for machines; the API's one time format."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ._models import LedgerEntry

CSV_COLUMNS = (
    "seq", "at", "event", "subject", "jti", "redemption_id", "kind", "amount", "unit", "detail",
    "actor",
)  # fmt: skip

# A cell starting with one of these is a formula to spreadsheet programs (CSV
# injection); subjects and campaign names come from outside, so such cells are quoted.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# ...unless the cell is an identifier: letters, digits and ``_ . : -`` cannot form a
# function call, a DDE link or a second cell, so a jti like ``-Abc_9`` is exported as is.
_IDENTIFIER = re.compile(r"[A-Za-z0-9_.:\-]+")


def rfc3339(moment: datetime) -> str:
    """The API's one timestamp format: RFC 3339 in UTC with ``Z``, µs when present."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def entry_to_json(entry: LedgerEntry) -> dict[str, Any]:
    """One ledger entry as a JSON object (``at`` per `rfc3339`)."""
    return {
        "seq": entry.seq,
        "at": rfc3339(entry.at),
        "event": entry.event.value,
        "subject": entry.subject,
        "jti": entry.jti,
        "redemption_id": entry.redemption_id,
        "kind": entry.kind,
        "amount": entry.amount,
        "unit": entry.unit,
        "detail": dict(entry.detail),
        "actor": entry.actor,
    }


def ledger_json(entries: Iterable[LedgerEntry]) -> str:
    """A JSON array of `entry_to_json` objects."""
    return json.dumps([entry_to_json(entry) for entry in entries], ensure_ascii=False)


def ledger_csv(entries: Iterable[LedgerEntry]) -> str:
    """RFC 4180 CSV with a header row; ``detail`` is a JSON cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        data = entry_to_json(entry)
        data["detail"] = json.dumps(data["detail"], sort_keys=True, ensure_ascii=False)
        writer.writerow([_cell(data[column]) for column in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: object) -> str:
    """A CSV cell: values are exported exactly, except text a spreadsheet would run.

    Only a string that starts like a formula *and* is not a plain identifier gets the
    ``'`` prefix spreadsheets read as "text"; ids, numbers and timestamps never change.
    """
    if value is None:
        return ""
    text = str(value)
    if (
        isinstance(value, str)
        and text.startswith(_FORMULA_START)
        and _IDENTIFIER.fullmatch(text) is None
    ):
        return "'" + text
    return text
