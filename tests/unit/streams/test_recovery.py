"""Abort mid-stream, resume from Bytewax's recovery store, compare with an uninterrupted run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main

from streams.features import FeatureSpec
from streams.flow import FlowSinks, build_flow
from tests.unit.streams.test_flow import NOW_MS, OUTPUTS, SETTINGS, stream, unkey
from tests.unit.streams.tiny_model import StaticProvider, tiny_artifact
from tickwave.clock import ManualClock
from tickwave.contracts import encode


def execute(raw: list[Any], out: dict[str, list[Any]], recovery: RecoveryConfig | None) -> None:
    sinks = FlowSinks(**{name: TestingSink(out[name]) for name in OUTPUTS})
    provider = StaticProvider(tiny_artifact(FeatureSpec()))
    flow = build_flow(SETTINGS, TestingSource(raw, batch_size=50), sinks, provider, clock=ManualClock(NOW_MS))
    run_main(flow, epoch_interval=timedelta(0), recovery_config=recovery)


def by_key(items: list[Any], key: str) -> dict[str, Any]:
    """What an idempotent table (ReplacingMergeTree on the natural key) ends up holding."""
    return {getattr(item, key): item for item in items}


def test_flow_when_aborted_and_resumed_then_same_results_as_uninterrupted(tmp_path: Path) -> None:
    raw: list[Any] = [encode(tick) for tick in stream(minutes=52)]
    expected: dict[str, list[Any]] = {name: [] for name in OUTPUTS}
    execute(raw, expected, recovery=None)

    init_db_dir(tmp_path, 1)
    recovery = RecoveryConfig(str(tmp_path))
    interrupted = raw[:]
    interrupted.insert(len(raw) // 2, TestingSource.ABORT())
    interrupted.insert(3 * len(raw) // 4, TestingSource.ABORT())
    actual: dict[str, list[Any]] = {name: [] for name in OUTPUTS}
    bars_after_each_run = []
    for _attempt in range(3):  # two aborts, then the run that finishes
        execute(interrupted, actual, recovery)
        bars_after_each_run.append(len(actual["bars"]))

    assert bars_after_each_run[0] < bars_after_each_run[1] < bars_after_each_run[2]  # the aborts really stopped it
    assert bars_after_each_run[0] < len(expected["bars"]) / 2 + 100

    actual, expected = unkey(actual), unkey(expected)
    assert by_key(actual["ticks"], "tick_id") == by_key(expected["ticks"], "tick_id")  # no tick lost
    assert by_key(actual["bars"], "bar_id") == by_key(expected["bars"], "bar_id")
    assert by_key(actual["features"], "feature_id") == by_key(expected["features"], "feature_id")
    assert by_key(actual["signals"], "signal_id").keys() == by_key(expected["signals"], "signal_id").keys()
    assert len(actual["bars"]) >= len(expected["bars"])  # re-emitted windows are allowed, and harmless
    assert actual["quarantine"] == expected["quarantine"] == []
