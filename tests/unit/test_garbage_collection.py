"""A service keeps CPython's cycle collector off its hot paths: what it loaded at start is frozen out
of every collection, and the youngest generation is collected every 50,000 allocations, not 700."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from corridor.runtime import GC_THRESHOLDS, collect_garbage_rarely


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_what_is_loaded_at_start_is_frozen_and_collections_are_rare(restored_collector: None) -> None:
    loaded = [{"kept": n} for n in range(1_000)]  # the app, its routes, its models
    collect_garbage_rarely()
    assert gc.get_threshold() == GC_THRESHOLDS and GC_THRESHOLDS[0] >= 10_000
    assert gc.get_freeze_count() >= len(loaded)
    # Garbage in cycles is still collected, only later: a generation's collection frees it.
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect(0) >= 1
