"""The classification rules are data: docs/errors.md shows the code's table, row for row.

These tests parse the page, so a rule changed in one place and not in the other fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from errdiscount_sdk import ErrorPayload, classify
from errdiscount_sdk._model.errors import error_class_for
from errdiscount_sdk._model.rules import (
    RULES,
    STATUS_OWNS_MEANING,
    STATUS_RULES,
    Sent,
    Transient,
    rule_for_status,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
_FOOTNOTE = re.compile(r"[¹²³⁴⁵⁶⁷⁸⁹]+")


def _doc_tables() -> list[list[list[str]]]:
    """Every Markdown table in docs/errors.md, as rows of cells (header and rule dropped)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("|"):
            cells = [_FOOTNOTE.sub("", cell).strip() for cell in line.strip("|").split("|")]
            if current is None:
                current = [cells]
            elif not set("".join(cells)) <= set("-: "):
                current.append(cells)
        elif current is not None:
            tables.append(current)
            current = None
    if current is not None:
        tables.append(current)
    return tables


def _table(first_header: str) -> list[list[str]]:
    for table in _doc_tables():
        if table[0][0] == first_header:
            return table[1:]
    raise AssertionError(f"docs/errors.md has no table headed {first_header!r}")


def _code_row(key: str) -> list[str]:
    rule = RULES[key]
    return [
        rule.failure,
        rule.category.value,
        rule.severity.value,
        rule.transient.value,
        rule.sent.value,
        f"`{rule.error_class.__name__}`",
        f"`{rule.error_type}`" if rule.error_type else "the status",
    ]


def test_the_documented_rules_table_is_the_code_table() -> None:
    assert _table("failure") == [_code_row(key) for key in RULES]


def test_the_documented_status_owned_list_is_the_code_list() -> None:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"2\. Except ([\d, and]+), whose", text)
    assert match is not None
    documented = {int(number) for number in re.findall(r"\d+", match.group(1))}
    assert documented == STATUS_OWNS_MEANING


def _response(status: int, *, keyed: bool = False) -> httpx.Response:
    headers = {"Idempotency-Key": "k-1"} if keyed else {}
    request = httpx.Request("POST", "https://api.example.com/x", headers=headers)
    return httpx.Response(status, request=request)


@pytest.mark.parametrize("status", [*STATUS_RULES, 400, 410, 418, 451, 500, 501, 599, 302])
def test_every_status_row_is_what_classify_returns(status: int) -> None:
    rule = RULES[rule_for_status(status)]
    verdict = classify(_response(status))
    assert verdict.category is rule.category
    assert verdict.severity is rule.severity
    assert verdict.transient is (rule.transient is Transient.YES)
    assert verdict.error_type == (rule.error_type or str(status))
    assert verdict.request_sent is (rule.sent is not Sent.NO)
    assert error_class_for(verdict) is rule.error_class


def test_the_keyed_409_row_is_transient_only_with_a_key() -> None:
    assert RULES[STATUS_RULES[409]].transient is Transient.WITH_IDEMPOTENCY_KEY
    assert not classify(_response(409)).transient
    assert classify(_response(409, keyed=True)).transient


@pytest.mark.parametrize(
    ("payload", "status", "key"),
    [
        (ErrorPayload(error_code="PAY_001", message="Insufficient balance"), 402, "business_error"),
        (ErrorPayload(error_code="E1", message="Request body is not valid JSON"), 400,
         "malformed_request"),
    ],
)  # fmt: skip
def test_payload_rows_name_their_exception_class(
    payload: ErrorPayload, status: int, key: str
) -> None:
    verdict = classify(_response(status), payload=payload)
    rule = RULES[key]
    assert verdict.category is rule.category
    assert verdict.error_type == rule.error_type
    assert error_class_for(verdict) is rule.error_class


def test_every_row_is_reachable_and_named_once() -> None:
    failures = [rule.failure for rule in RULES.values()]
    assert len(failures) == len(set(failures))
    assert set(STATUS_RULES.values()) <= set(RULES)


def _entries(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_documented_vocabulary_is_the_code_vocabulary() -> None:
    from errdiscount_sdk._model.rules import (
        DATA_FORMAT_PHRASES,
        DATA_FORMAT_WORDS,
        TYPE_WORDS,
        ZH_DATA_FORMAT_TERMS,
        ZH_TYPE_WORDS,
    )

    rows = {name: _entries(cell) for name, cell in _table("vocabulary")}
    assert set(rows["words"]) == DATA_FORMAT_WORDS
    assert rows["phrases"] == [" ".join(phrase) for phrase in DATA_FORMAT_PHRASES]
    assert set(rows["`<type>`"]) == TYPE_WORDS
    assert rows["Chinese terms"] == list(ZH_DATA_FORMAT_TERMS)
    assert rows["Chinese `<type>`"] == list(ZH_TYPE_WORDS)
