"""The registry's times: the injected clock's, strictly increasing so a later change always wins under FINAL."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.registry_table import RegistryTable
from models.store import ArtifactStore
from tickwave.clock import ManualClock

START_MS = 1_700_000_000_000


@pytest.mark.parametrize(
    ("moves_ms", "expected_ms"),
    [
        ([0, 5, 5], [START_MS, START_MS + 5, START_MS + 10]),  # the clock moves: its time
        ([0, 0, 0], [START_MS, START_MS + 1, START_MS + 2]),  # the clock stands still: one past the last
        ([0, -1_000, 2_000], [START_MS, START_MS + 1, START_MS + 1_000]),  # the clock steps back: never earlier
    ],
)
def test_now_ms_when_the_clock_moves_stands_or_steps_back_then_times_strictly_increase(
    moves_ms: list[int], expected_ms: list[int], tmp_path: Path
) -> None:
    clock = ManualClock(START_MS)
    table = RegistryTable(client=object(), store=ArtifactStore(tmp_path), clock=clock)  # type: ignore[arg-type]

    times = []
    for move_ms in moves_ms:
        clock.advance(move_ms)
        times.append(table.now_ms())

    assert times == expected_ms
