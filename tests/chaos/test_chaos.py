"""The short chaos run of `make test` (the long one is `make chaos`): each service killed once with
kill -9 during a live market with a served model, the warehouse frozen for 5 s, the broker restarted;
nothing acknowledged is lost, nothing is doubled, one order per signal, journal = broker = warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.harness import TARGETS, ChaosPlan, console, report, run_chaos


@pytest.mark.timeout(600)
def test_chaos_when_every_service_killed_once_then_nothing_lost_or_doubled(tmp_path: Path) -> None:
    plan = ChaosPlan(kills_per_service=1, warehouse_freeze_s=5.0, live_s=30.0, seed=7, settle_s=5.0)

    result = run_chaos(tmp_path / "state", plan)

    console.print(report(result, plan))
    assert {target for target in TARGETS if result.recoveries.get(target)} == set(TARGETS)
    assert result.checks["ticks lost"] == 0 and result.checks["duplicates"] == 0
    assert result.checks["acknowledged ticks"] > 0 and result.checks["closed bars checked"] > 0
