"""The spike filter decides, word for word and bit for bit, as recorded from the Python filter it replaced.

``tests/fixtures/spike/decisions.json.gz`` was written by the pure-Python ``SpikeFilter`` (a
dataclass) on the walks of :mod:`spike_walks`: per walk, how many ticks it rejected and a
digest of every ``(index, reason)``, the first rejections in full, its whole state every 1,000
ticks, and a pickle of the filter taken half-way (with a level shift pending where there was
one), as the dataflow's recovery store holds it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import pickle
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.unit.tickwave.spike_walks import WALKS, dataclass_pickle, digest, walk
from tickwave.contracts import Tick
from tickwave.validation import SpikeFilter

FIXTURE = Path(__file__).parents[2] / "fixtures" / "spike" / "decisions.json.gz"


@cache
def _recorded() -> list[dict[str, Any]]:
    with gzip.open(FIXTURE, "rt") as file:
        records: list[dict[str, Any]] = json.load(file)
    return records


def _decisions_digest(rejected: list[tuple[int, str]]) -> str:
    return hashlib.sha256("".join(f"{index} {reason}\n" for index, reason in rejected).encode()).hexdigest()


def _run(filter_: SpikeFilter, ticks: list[Tick], start: int = 0) -> tuple[list[tuple[int, str]], dict[str, Any]]:
    rejected: list[tuple[int, str]] = []
    states: dict[str, Any] = {}
    for index in range(start, len(ticks)):
        if (reason := filter_.check(ticks[index])) is not None:
            rejected.append((index, reason))
        if index % 1000 == 999:
            states[str(index)] = filter_.__getstate__()
    return rejected, states


@pytest.mark.parametrize("seed", range(len(WALKS)))
def test_spike_filter_when_a_long_walk_with_spikes_and_shifts_then_the_recorded_decisions_and_states(
    seed: int,
) -> None:
    record = _recorded()[seed]
    limits, start_mid = WALKS[seed]
    ticks = list(walk(seed, start_mid))
    assert digest(ticks) == record["digest"], "the walks changed: they are not the ones recorded"

    rejected, states = _run(SpikeFilter(**limits), ticks)

    assert [list(item) for item in rejected[: len(record["first_rejected"])]] == record["first_rejected"]
    assert states == record["states"]
    assert len(rejected) == record["rejected_count"]
    assert _decisions_digest(rejected) == record["decisions_digest"]


@pytest.mark.parametrize("seed", range(len(WALKS)))
def test_spike_filter_when_a_snapshot_pickled_by_the_dataclass_is_loaded_then_it_continues_identically(
    seed: int,
) -> None:
    record = _recorded()[seed]
    limits, start_mid = WALKS[seed]
    ticks = list(walk(seed, start_mid))
    at = record["snapshot_at"]
    full, _ = _run(SpikeFilter(**limits), ticks)

    resumed = pickle.loads(base64.b64decode(record["snapshot"]))
    assert type(resumed) is SpikeFilter
    rejected, states = _run(resumed, ticks, start=at)

    assert rejected == [item for item in full if item[0] >= at]
    assert states == {index: state for index, state in record["states"].items() if int(index) >= at}


def test_spike_filter_when_pickled_then_its_state_is_the_dataclass_field_dict_both_ways() -> None:
    filter_ = SpikeFilter(threshold_bps=50.0, confirm_after=3)
    for index, tick in enumerate(walk(2, 150.0, 5_000)):
        filter_.check(tick)
        if filter_.pending_count and filter_.pending_first_ms != filter_.pending_last_ms and index > 100:
            break  # every field of the state differs from another: a field read as another shows
    state = filter_.__getstate__()

    restored = pickle.loads(dataclass_pickle(state))
    again = pickle.loads(pickle.dumps(filter_, protocol=pickle.HIGHEST_PROTOCOL))

    assert restored == filter_ == again and restored.pending_count > 1
    assert list(state) == list(SpikeFilter().__getstate__()) and len(state) == 15
    assert repr(again).startswith("SpikeFilter(threshold_bps=50.0, alpha=0.05, confirm_after=3,")
