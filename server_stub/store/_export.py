"""Ledger export: CSV for spreadsheets, JSON for machines."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

from ._models import LedgerEntry

CSV_COLUMNS = (
    "seq", "at", "event", "subject", "jti", "redemption_id", "kind", "amount", "unit", "detail",
    "actor",
)  # fmt: skip

# A cell starting with one of these is a formula to spreadsheet programs (CSV
# injection); subjects and campaign names come from outside, so such cells are quoted.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def entry_to_json(entry: LedgerEntry) -> dict[str, Any]:
    """One ledger entry as a JSON object (``at`` in ISO 8601, UTC)."""
    return {
        "seq": entry.seq,
        "at": entry.at.isoformat(),
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
    if value is None:
        return ""
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text
