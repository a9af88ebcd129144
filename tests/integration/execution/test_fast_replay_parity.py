"""The fast replay against the live path: holdout rows replayed both ways give the same journal, event by event.

``make test`` replays 50,000 rows (about 40 s); ``make parity`` the benchmark's 200,000
(about 90 s on one core).

The fast replay (``replay_session(..., fast=True)``: journal and paper ledger in memory,
polls only when something is due, the audit chain linked once at the end) must decide
exactly as the replay through the live process's files (``fast=False``). Both run here on
the benchmark's holdout (``bench.backtest.synthetic_holdout``: 1-minute bars of EURUSD,
USDJPY and XAUUSD, random probabilities), with the live settings but for the market hours
(the synthetic bars run through weekends) and the loss limit (so the gate keeps trading). A
shorter holdout replays again with protective stops set and a loss limit the day reaches, so the
stops' closes, their denials and the loss breaker are compared too.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.backtest import replay_settings, synthetic_holdout
from execution.backtest import ReplayResult, fill_pnls, instruments_of, replay_session
from models.engine_backtest import holdout_signals, holdout_ticks
from tickwave.config import Settings, load_settings
from tickwave.contracts import RiskEvent
from tickwave.modeling import SignalRules

# Not TICKWAVE_*: the settings refuse an unknown TICKWAVE_ variable.
ROWS = int(os.environ.get("FAST_REPLAY_PARITY_ROWS", "50000"))


def _both_ways(settings: Settings, rows: int, tmp_path: Path) -> tuple[ReplayResult, ReplayResult]:
    """Replay the ``rows``-row holdout through the live process's files and fast; assert the two equal."""
    frame, probabilities = synthetic_holdout(rows)
    ticks = holdout_ticks(frame, "1m")
    signals = holdout_signals(frame, probabilities, SignalRules(), "1m", "parity", 1)

    live = replay_session(settings, ticks, signals, fast=False, state_dir=tmp_path / "live")
    fast = replay_session(settings, ticks, signals, fast=True)

    assert len(fast.orders) > rows // 10  # the holdout trades: the comparison is not of two empty journals
    assert [order for order in fast.orders] == live.orders
    assert fast.fills == live.fills
    assert fast.denial_counts() == live.denial_counts()
    instruments = instruments_of(settings)
    assert fill_pnls(fast.events, instruments) == fill_pnls(live.events, instruments)
    assert (fast.realized_by_currency, fast.unrealized_by_currency) == (
        live.realized_by_currency,
        live.unrealized_by_currency,
    )
    assert (fast.realized_pnl, fast.total_pnl, fast.positions) == (live.realized_pnl, live.total_pnl, live.positions)
    assert fast.events == live.events  # every journaled event, in order (signals, denials, risk events too)
    assert fast.chain_head == live.chain_head is not None  # the audit chain linked at the end: the same head
    assert (fast.is_fast, live.is_fast) == (True, False)
    return live, fast


def test_fast_replay_when_a_holdout_replays_then_every_order_fill_and_pnl_equals_the_live_path(tmp_path: Path) -> None:
    _both_ways(replay_settings(tmp_path), ROWS, tmp_path)


def test_fast_replay_when_stops_close_and_the_loss_breaker_trips_then_it_equals_the_live_path(tmp_path: Path) -> None:
    risk = {"stop_loss_pips": 6.0, "take_profit_pips": 9.0, "stop_pips_by_symbol": {"XAUUSD": (150.0, 250.0)}}
    settings = load_settings(
        state_dir=tmp_path, market={"hours": "always"}, execution={"risk": {**risk, "daily_loss_limit": 5_000.0}}
    )

    _, fast = _both_ways(settings, 6_000, tmp_path)

    kinds = [event.kind for event in fast.events if isinstance(event, RiskEvent)]
    assert kinds.count("protective_stop") > 10, "the stops closed positions"
    assert "trading_state" in kinds, "the loss breaker tripped"
    assert fast.denial_counts()["trading_state"] > 0, "and the gate denied what followed"
