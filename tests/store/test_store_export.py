"""Ledger export helpers (pure functions)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from server_stub.store import LedgerEntry, LedgerEvent, entry_to_json, ledger_csv, ledger_json


def entry(subject: str | None) -> LedgerEntry:
    return LedgerEntry(
        seq=7,
        at=datetime(2030, 1, 1, 12, 0, tzinfo=UTC),
        event=LedgerEvent.REDEEMED,
        subject=subject,
        jti="j1",
        redemption_id="rdm_1",
        kind="points",
        amount=5,
        unit="points",
        detail={"campaign": "incident-1", "grant": {"amount": 5}},
    )


def test_json_export_is_a_list_of_plain_objects() -> None:
    data = json.loads(ledger_json([entry("alice")]))
    assert data == [entry_to_json(entry("alice"))]
    assert data[0]["at"] == "2030-01-01T12:00:00Z"
    assert data[0]["event"] == "redeemed"
    assert data[0]["detail"]["grant"] == {"amount": 5}


def test_csv_export_has_a_header_and_json_details() -> None:
    rows = list(csv.reader(io.StringIO(ledger_csv([entry("alice"), entry(None)]))))
    assert rows[0] == [
        "seq",
        "at",
        "event",
        "subject",
        "jti",
        "redemption_id",
        "kind",
        "amount",
        "unit",
        "detail",
        "actor",
    ]
    assert rows[1][3] == "alice"
    assert rows[2][3] == ""
    assert json.loads(rows[1][9]) == {"campaign": "incident-1", "grant": {"amount": 5}}


def test_csv_cells_that_look_like_formulas_are_defused() -> None:
    for hostile in ('=HYPERLINK("http://x")', "+1", "-1+2", "@SUM(A1)"):
        rows = list(csv.reader(io.StringIO(ledger_csv([entry(hostile)]))))
        assert rows[1][3] == "'" + hostile
    rows = list(csv.reader(io.StringIO(ledger_csv([entry("alice")]))))
    assert rows[1][7] == "5"  # numbers are left alone


def test_csv_ids_are_exported_exactly() -> None:
    import attrs

    # One random jti in 64 starts with "-" (base64url): they are ids,
    # not formulas, and an export that changes them breaks every reconciliation.
    dashed = attrs.evolve(entry("-user_7"), jti="-Xq9_kL2mN4pR6sT8uV0w", redemption_id="rdm_-1")
    row = list(csv.reader(io.StringIO(ledger_csv([dashed]))))[1]
    assert (row[3], row[4], row[5]) == ("-user_7", "-Xq9_kL2mN4pR6sT8uV0w", "rdm_-1")
    assert row[1] == "2030-01-01T12:00:00Z"
