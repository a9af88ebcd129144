"""The engine backtest of a holdout, cross-checked against the vectorised one."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.engine_backtest import engine_positions, holdout_signals, holdout_ticks, run_engine
from models.evaluation import BacktestSettings, backtest, baseline_positions, signal_positions
from models.fold_figures import HOLDOUT
from models.fold_judgement import judge_window
from tickwave.config import Settings, load_settings
from tickwave.modeling import SignalRules

RULES = SignalRules(entry_probability=0.55, min_edge=0.10)
WEDNESDAY_NOON_MS = 1_700_049_600_000
ONE_HOT = {"up": [0.0, 0.0, 1.0], "down": [1.0, 0.0, 0.0], "flat": [0.0, 1.0, 0.0]}


def _settings(state_dir: Path, slippage_bps: float = 0.0, **risk: Any) -> Settings:
    # Nothing in the gate binds (the market is open, no loss limit is reached), no slippage.
    return load_settings(
        state_dir=state_dir,
        market={"hours": "always"},
        execution={
            "paper_broker": {"slippage_bps": slippage_bps},
            "risk": {"daily_loss_limit": 1e9, **risk},
        },
    )


def _frame(symbol: str, pips: list[int], pip: float, base: float, spread_pips: int) -> pd.DataFrame:
    """Consecutive 1-minute bars: mids in whole pips from ``base``, the spread around them, exact to the digit."""
    tick = Decimal(repr(pip))
    mids = [Decimal(repr(base)) + tick * level for level in pips]
    half = tick * spread_pips / 2
    frame = pd.DataFrame(
        {
            "symbol": symbol,
            "bar_start_ms": [WEDNESDAY_NOON_MS + 60_000 * n for n in range(len(mids) - 1)],
            "mid_close": [float(mid) for mid in mids[:-1]],
            "next_mid_close": [float(mid) for mid in mids[1:]],
            "previous_mid_close": [np.nan] + [float(mid) for mid in mids[:-2]],
            "bid_close": [float(mid - half) for mid in mids[:-1]],
            "ask_close": [float(mid + half) for mid in mids[:-1]],
        }
    )
    return frame


_PATH = st.lists(st.integers(min_value=-20, max_value=20), min_size=3, max_size=25).map(
    lambda steps: list(np.cumsum([0, *steps]).tolist())
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    eurusd=_PATH,
    gold=_PATH,
    calls=st.lists(st.sampled_from(["up", "down", "flat"]), min_size=60, max_size=60),
)
def test_engine_when_full_strength_and_flips_in_one_order_then_pnl_equals_the_vectorised_to_the_cent(
    tmp_path_factory: pytest.TempPathFactory, eurusd: list[int], gold: list[int], calls: list[str]
) -> None:
    frame = pd.concat(
        [_frame("EURUSD", eurusd, 0.0001, 1.1, 2), _frame("XAUUSD", gold, 0.1, 2000.0, 3)], ignore_index=True
    )
    probabilities = np.array([ONE_HOT[call] for call in calls[: len(frame)]])
    # Sizing as the vectorised backtest: strength 1 -> the whole max_position_lots, a flip in one order.
    config = _settings(tmp_path_factory.mktemp("engine"), max_position_lots=1.0, max_order_lots=2.0)

    comparison = judge_window(HOLDOUT, frame, probabilities, RULES, config, "1m", ("flat", "last_direction")).comparison

    vectorised = BacktestSettings(lots=1.0, bars_per_year=1.0, instruments=BacktestSettings().instruments)
    assert comparison.candidate_pnl_account == comparison.vectorised_pnl_account
    expected_candidate = backtest(frame, signal_positions(probabilities, RULES), vectorised).pnl_account
    assert Decimal(repr(comparison.candidate_pnl_account)) == round(expected_candidate, 2)
    last_direction = backtest(frame, baseline_positions(frame, "last_direction"), vectorised).pnl_account
    assert Decimal(repr(comparison.baseline_pnl_account["last_direction"])) == round(last_direction, 2)
    assert comparison.baseline_pnl_account["flat"] == 0.0


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pips=_PATH,
    probabilities=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=30, max_size=30),
)
def test_engine_when_live_sizing_then_the_difference_is_exactly_the_position_path(
    tmp_path_factory: pytest.TempPathFactory, pips: list[int], probabilities: list[tuple[float, float]]
) -> None:
    frame = _frame("EURUSD", pips, 0.0001, 1.1, 2)
    rows = np.array([[down * (1 - up), (1 - up) * (1 - down), up] for up, down in probabilities[: len(frame)]])
    rows = rows / rows.sum(axis=1, keepdims=True)
    # The live defaults: strength x 1 lot, orders of at most 1 lot (a flip takes two signals).
    config = _settings(tmp_path_factory.mktemp("engine"))

    engine = run_engine(config, holdout_ticks(frame, "1m"), holdout_signals(frame, rows, RULES, "1m", "m", 1))
    path = engine_positions(frame, engine.replay, "1m", "m", 1)

    # The vectorised backtest of the engine's own position path (lots) gives the engine's P&L exactly:
    # sizing and the order cap are the whole difference.
    cross_check = backtest(frame, path, BacktestSettings(lots=1.0, bars_per_year=1.0))
    assert engine.pnl_account == cross_check.pnl_account
    assert engine.replay.positions == {}, "the holdout-end signal closes the position"


def test_engine_when_slippage_then_pnl_is_lower_by_the_slippage_paid(tmp_path: Path) -> None:
    frame = _frame("EURUSD", [0, 10, 20, 30], 0.0001, 1.1, 2)
    probabilities = np.array([ONE_HOT["up"]] * 3)
    ticks, signals = holdout_ticks(frame, "1m"), holdout_signals(frame, probabilities, RULES, "1m", "m", 1)

    free = run_engine(_settings(tmp_path), ticks, signals)
    slipped = run_engine(_settings(tmp_path, slippage_bps=1.0), ticks, signals)

    # One lot in at the first ask, out at the last bid: each fill pays 1 bp of its price on 100,000 units.
    (entry, close) = (fill.fill_price for fill in free.replay.fills)
    paid = (Decimal(repr(entry)) + Decimal(repr(close))) * Decimal("0.0001") * 100_000
    assert free.pnl_account is not None and slipped.pnl_account is not None
    assert abs(free.pnl_account - slipped.pnl_account - paid) < Decimal("0.000001")
    # Long 1 lot at the first ask 1.1001, out at the end at 1.1030 - half a spread: +29 pips less 1 pip.
    assert free.summary("m") == "engine backtest of m: P&L 280.00 USD, 2 orders, 1 trades; denied: sizing 2"


def test_compare_when_execution_is_driven_by_another_timeframe_then_the_model_is_judged_on_its_own(
    tmp_path: Path,
) -> None:
    frame = _frame("EURUSD", [0, 10, 20, 10, 0, 10], 0.0001, 1.1, 2)
    frame["bar_start_ms"] = WEDNESDAY_NOON_MS + 3_600_000 * np.arange(len(frame))  # hourly bars
    probabilities = np.array([ONE_HOT[call] for call in ("up", "up", "down", "down", "up")])
    live = _settings(tmp_path, signal_timeframe="1m", signal_timeframes={"EURUSD": "1m"})

    comparison = judge_window(HOLDOUT, frame, probabilities, RULES, live, "1h", ("flat", "last_direction")).comparison

    assert comparison.orders is not None and comparison.orders["candidate"] > 0
    assert comparison.orders["last_direction"] > 0 and comparison.is_judgement
    # Replayed: the candidate and last_direction (flat never holds a position, so it is not replayed).
    denials = [note.partition("denied: ")[2] for note in comparison.notes if "denied: " in note]
    assert len(denials) == 2 and not [denied for denied in denials if "signal_timeframe" in denied]
    assert "engine backtest of flat: never holds a position, no order (not replayed)" in comparison.notes
    assert all("(audit chain not linked)" in note for note in comparison.notes if "denied: " in note)
    assert comparison.candidate_pnl_account != 0.0 and comparison.candidate_trades > 0
    assert any(
        "judged on its own 1h signals (models.timeframe); live execution drives EURUSD by 1m "
        "(execution.risk.signal_timeframe" in note
        for note in comparison.notes
    ), comparison.notes
