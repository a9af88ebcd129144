"""The GC freezer: survivors leave the collector's walk, young cycles are still collected."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterator

import pytest

from tickwave.gcpause import freeze_survivors, start_gc_freezer


class Node:
    """An object that can sit in a reference cycle and be watched through a weak reference."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # later tests see a normal collector


def test_freeze_when_object_survives_then_collector_no_longer_tracks_it_in_a_generation() -> None:
    survivor = [Node() for _ in range(100)]
    before = gc.get_freeze_count()

    frozen = freeze_survivors()

    assert frozen >= before + 100
    assert frozen == gc.get_freeze_count()
    assert all(gc.is_tracked(node) for node in survivor)  # still tracked, only frozen
    assert sum(gc.get_count()) < 100  # the generations start empty again


def test_freeze_when_young_cycle_is_garbage_then_collected_before_freezing() -> None:
    first, second = Node(), Node()
    first.other, second.other = second, first
    watch = weakref.ref(first)
    del first, second

    freeze_survivors()

    assert watch() is None  # the cycle was collected, not frozen (no leak)


def test_freezer_when_running_then_freezes_periodically_and_stops_on_event() -> None:
    stop = threading.Event()
    thread = start_gc_freezer(stop, interval_s=0.05)
    initial = gc.get_freeze_count()
    later = [Node() for _ in range(1000)]
    deadline = time.monotonic() + 5
    while gc.get_freeze_count() < initial + len(later) and time.monotonic() < deadline:
        time.sleep(0.02)

    assert gc.get_freeze_count() >= initial + len(later)
    stop.set()
    thread.join(2)
    assert not thread.is_alive()
