"""The server's garbage-collector settings (`server_stub._heap`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from server_stub._heap import GC_THRESHOLDS, settle_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_the_startup_heap_is_frozen_and_collections_are_rarer() -> None:
    kept = [object() for _ in range(100)]
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    settle_heap()
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold() == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] > 700  # rarer than CPython's default youngest generation
