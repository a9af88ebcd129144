"""A model of another timeframe than execution's is judged on its own signals, on the real training path."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from adapters.endpoints import Endpoint
from models.pipeline import train_model
from tests.integration.models.conftest import SYMBOLS, external_settings, stream_into
from tickwave.config import Settings, StreamsSettings
from tickwave.contracts import Tick

HOURS = 160  # 50 to warm the features up, the rest labelled
TICKS_PER_HOUR = 6
# Recent hours (the warehouse keeps features 180 days), ending an hour ago.
END_MS = (time.time_ns() // 1_000_000 // 3_600_000 - 1) * 3_600_000
RANGE_MS = (END_MS - HOURS * 3_600_000, END_MS)
HOURLY = StreamsSettings(timeframes=("1h",), late_wait_ms=500, close_on_wall_clock=False, model_refresh_s=0.01)


def hourly_ticks(seed: int = 5) -> list[Tick]:
    """Six ticks an hour; the log mid reverts to its level hour by hour (so the baselines and the model trade)."""
    rng = np.random.default_rng(seed)
    out = []
    for symbol, base in (("EURUSD", 1.085), ("USDJPY", 151.25)):
        level = 0.0
        for hour in range(HOURS):
            level = 0.8 * level + rng.normal(0.0, 1e-3)
            for step in range(TICKS_PER_HOUR):
                mid = round(float(base * np.exp(level) * (1.0 + 5e-5 * rng.standard_normal())), 5 if base < 10 else 3)
                half_spread = base * 1e-5
                at_ms = RANGE_MS[0] + hour * 3_600_000 + step * 600_000
                out.append(
                    Tick(
                        symbol=symbol,
                        time_ms=at_ms,
                        seq=0,
                        bid=round(mid - half_spread, 6),
                        ask=round(mid + half_spread, 6),
                        volume=1.0,
                    )
                )
    return sorted(out, key=lambda tick: (tick.time_ms, tick.symbol))


@pytest.fixture(scope="module")
def hourly_features(warehouse_settings: Settings, models_database: str) -> str:
    """The dataflow's 1 h bars and features of the hourly ticks, stored in the models tests' database."""
    stream_into(warehouse_settings, models_database, hourly_ticks(), HOURLY, END_MS)
    return models_database


def test_train_when_the_model_is_hourly_and_execution_is_driven_by_minutes_then_judged_on_hourly_signals(
    warehouse_settings: Settings, warehouse_endpoint: Endpoint, hourly_features: str, tmp_path: Path
) -> None:
    # execution.risk.signal_timeframe stays at its default, 1m: live, these hourly signals would be denied.
    settings = external_settings(
        warehouse_settings,
        warehouse_endpoint,
        hourly_features,
        tmp_path / "state",
        timeframe="1h",
        min_rows=50,
        folds=2,
        horizon_bars=1,
        embargo_bars=1,
    )
    assert settings.execution.risk.signal_timeframe == "1m"

    outcome = train_model(settings, SYMBOLS, RANGE_MS, "pytest-hourly")

    decision = outcome.decision
    assert decision is not None and outcome.entry.timeframe == "1h"
    engine_notes = [note for note in decision.notes if note.startswith("engine backtest of ")]
    assert len(engine_notes) == 3, decision.notes  # the candidate, flat, last_direction
    # flat holds no position, so it is not replayed ("never holds a position"): no denials to read
    assert not [note for note in engine_notes if "signal_timeframe" in note.partition("denied: ")[2]], engine_notes
    last_direction = next(note for note in engine_notes if note.startswith("engine backtest of last_direction"))
    assert " 0 orders" not in last_direction, last_direction  # the baseline traded the hourly bars
    assert decision.figures["is_pnl_judged"] == 1.0
    assert not [reason for reason in decision.failures if "no judgement" in reason], decision.failures
    assert any(
        "judged on its own 1h signals" in note and "execution.risk.signal_timeframe" in note for note in decision.notes
    ), decision.notes
