"""docs/events.md is checked: its JSON Schema holds the examples, and agrees with parse_event."""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

import jsonschema
import pytest

from errdiscount_sdk._model.errors import InvalidEvent
from errdiscount_sdk._report.event import (
    CALL_MEMBERS,
    CATEGORIES,
    MAX_ATTEMPTS,
    MAX_EXTENSIONS,
    MAX_STRING,
    OUTCOME_MEMBERS,
    SEVERITIES,
    CallEvent,
    parse_event,
)

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "events.md"
BLOCKS = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", DOC.read_text(), re.S)]
SCHEMA = next(block for block in BLOCKS if "$schema" in block)
EXAMPLES = [block for block in BLOCKS if "event_id" in block]
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert len(EXAMPLES) == 4


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example["kind"])
def test_every_example_passes_the_schema_and_parse_event(example: dict[str, Any]) -> None:
    VALIDATOR.validate(example)
    event = parse_event(example)
    assert event.to_json() == example


def test_what_the_sdk_emits_passes_the_schema() -> None:
    event = CallEvent(outcome="ok", method="GET", endpoint="GET /x", count=2, segment="vip")
    VALIDATOR.validate(event.to_json())


def test_the_schema_names_exactly_the_members() -> None:
    definitions = SCHEMA["$defs"]
    assert tuple(definitions["call"]["properties"]) == CALL_MEMBERS
    assert tuple(definitions["outcome"]["properties"]) == OUTCOME_MEMBERS


def test_the_schema_caps_match_the_constants() -> None:
    call = SCHEMA["$defs"]["call"]["properties"]
    outcome = SCHEMA["$defs"]["outcome"]["properties"]

    def max_length(spec: dict[str, Any]) -> int:
        return int(spec["oneOf"][0]["maxLength"] if "oneOf" in spec else spec["maxLength"])

    for name in ("user_id", "error_code", "platform", "os_version", "app_version"):
        assert max_length(call[name]) == MAX_STRING[name], name
    for name in ("sdk_version", "segment", "endpoint", "method"):
        assert max_length(call[name]) == MAX_STRING[name], name
    assert max_length(outcome["name"]) == MAX_STRING["name"]
    assert outcome["value"]["oneOf"][1]["maxLength"] == MAX_STRING["value"]
    assert call["attempts"]["maximum"] == MAX_ATTEMPTS
    assert SCHEMA["$defs"]["extensions"]["maxProperties"] == MAX_EXTENSIONS
    assert set(call["category"]["enum"]) - {None} == CATEGORIES
    assert set(call["severity"]["enum"]) - {None} == SEVERITIES


@pytest.mark.parametrize(
    "change",
    [
        {"status": 700},
        {"outcome": "maybe"},
        {"attempts": 0},
        {"ts": "2030-01-01T12:00:00+08:00"},
        {"endpoint": "POST /api/pay?x=1"},
        {"user_id": "u" * 257},
    ],
)
def test_schema_and_parse_event_refuse_the_same_examples(change: dict[str, Any]) -> None:
    bad = {**EXAMPLES[0], **change}
    assert not VALIDATOR.is_valid(bad)
    with pytest.raises(InvalidEvent):
        parse_event(bad)
