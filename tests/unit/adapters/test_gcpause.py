"""The GC freezer: survivors leave the collector's walk, young cycles are still collected."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterator

import pytest

from adapters import gcpause
from adapters.gcpause import collect_frozen, freeze_survivors, peak_rss_mib, start_gc_freezer


class Node:
    """An object that can sit in a reference cycle and be watched through a weak reference."""

    def __init__(self) -> None:
        self.other: Node | None = None


def still_walked_count(objects: list[Node]) -> int:
    """How many of ``objects`` sit in a generation the collector walks (frozen ones are in none)."""
    walked = {id(item) for generation in range(3) for item in gc.get_objects(generation)}
    return sum(id(item) in walked for item in objects)


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # later tests see a normal collector


def test_freeze_when_object_survives_then_no_generation_the_collector_walks_holds_it() -> None:
    survivors = [Node() for _ in range(100)]
    assert still_walked_count(survivors) == len(survivors)

    freeze_survivors()

    assert gc.get_freeze_count() >= 100
    assert still_walked_count(survivors) == 0
    assert all(gc.is_tracked(node) for node in survivors)  # still tracked, only frozen


def test_freeze_when_young_cycle_is_garbage_then_collected_before_freezing() -> None:
    first, second = Node(), Node()
    first.other, second.other = second, first
    watch = weakref.ref(first)
    del first, second

    freeze_survivors()

    assert watch() is None  # the cycle was collected, not frozen (no leak)


def frozen_cycle() -> weakref.ref[Node]:
    """A cycle that is alive when frozen and garbage right after: only a walk of the frozen objects finds it."""
    first, second = Node(), Node()
    first.other, second.other = second, first
    freeze_survivors()
    assert still_walked_count([first, second]) == 0
    return weakref.ref(first)


def test_freeze_when_old_cycle_is_garbage_then_collected_before_freezing() -> None:
    first, second = Node(), Node()
    first.other, second.other = second, first
    gc.collect()  # survived every collection: in the oldest generation, which a young collection skips
    watch = weakref.ref(first)
    del first, second

    freeze_survivors()

    assert watch() is None


def test_collect_frozen_when_a_frozen_cycle_became_garbage_then_freed_and_the_rest_frozen_again() -> None:
    watch = frozen_cycle()
    gc.collect()
    assert watch() is not None  # the premise: an ordinary collection does not see frozen garbage
    survivors = [Node() for _ in range(100)]
    freeze_survivors()

    unreachable, seconds = collect_frozen()

    assert watch() is None
    assert unreachable >= 2 and seconds >= 0
    assert still_walked_count(survivors) == 0


def test_freezer_when_running_then_collects_frozen_garbage_periodically(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcpause, "COLLECT_EVERY", 3)
    stop = threading.Event()
    thread = start_gc_freezer(stop, interval_s=0.01)
    watch = frozen_cycle()
    deadline = time.monotonic() + 5
    while watch() is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(2)

    assert watch() is None


def test_freezer_when_running_then_freezes_periodically_and_stops_on_event() -> None:
    stop = threading.Event()
    thread = start_gc_freezer(stop, interval_s=0.05)
    later = [Node() for _ in range(1000)]
    deadline = time.monotonic() + 5
    while (still_walked := still_walked_count(later)) and time.monotonic() < deadline:
        time.sleep(0.05)

    assert still_walked == 0  # frozen by the thread, not by this test
    stop.set()
    thread.join(2)
    assert not thread.is_alive()


def test_freezer_when_freezing_then_never_walks_the_frozen_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    # gc.get_freeze_count walks every frozen object with the GIL held (6-10 ms in the dataflow).
    walks: list[int] = []
    monkeypatch.setattr(gcpause.gc, "get_freeze_count", lambda: walks.append(1) or 0)
    monkeypatch.setattr(gcpause, "COLLECT_EVERY", 3)
    stop = threading.Event()
    thread = start_gc_freezer(stop, interval_s=0.01)
    time.sleep(0.2)
    stop.set()
    thread.join(2)

    assert walks == []


def test_peak_rss_when_process_runs_then_megabytes_not_kilobytes() -> None:
    assert 5 < peak_rss_mib() < 64 * 1024
