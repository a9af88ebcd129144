"""The simulator: reproducible, on the tick grid, with a trading day and volatility-driven spreads."""

from __future__ import annotations

import numpy as np
import pytest

from streams.ingest.batches import Candidates
from streams.ingest.simulation import SimulatedMarket, session_activity
from tests.unit.ingest.helpers import NOW_MS, REGISTRY

HOUR_MS = 3_600_000
MIDNIGHT = NOW_MS - 8 * HOUR_MS  # 2024-03-04 00:00 UTC


def run(symbols: list[str], rate: float, seed: int, start_ms: int, seconds: int, step_ms: int = 1000) -> Candidates:
    market = SimulatedMarket(symbols, REGISTRY, rate, seed, start_ms)
    parts = [market.advance(step_ms) for _ in range(seconds * 1000 // step_ms)]
    names = parts[0].symbols
    pick = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    return Candidates(
        names,
        pick("symbol_code"),
        pick("time_ms"),
        pick("bid"),
        pick("ask"),
        pick("last"),
        pick("volume"),
        pick("flags"),
        lambda i: "",
    )


def test_simulator_when_same_seed_then_same_ticks_and_other_seed_differs() -> None:
    first = run(["EURUSD", "XAUUSD"], 50, 11, NOW_MS, 20)
    again = run(["EURUSD", "XAUUSD"], 50, 11, NOW_MS, 20)
    other = run(["EURUSD", "XAUUSD"], 50, 12, NOW_MS, 20)

    for name in ("symbol_code", "time_ms", "bid", "ask", "flags"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.bid[:50], other.bid[:50])


def test_simulator_when_step_size_changes_then_still_ordered_and_in_range() -> None:
    ticks = run(["EURUSD", "USDJPY", "XAUUSD"], 200, 3, NOW_MS, 30, step_ms=100)

    assert np.all(np.diff(ticks.time_ms) >= 0)
    assert ticks.time_ms.min() >= NOW_MS and ticks.time_ms.max() < NOW_MS + 30_000


@pytest.mark.parametrize("symbol", ["EURUSD", "USDJPY", "XAUUSD", "GBPUSD"])
def test_simulator_when_quoting_then_prices_on_the_tick_grid_and_ask_above_bid(symbol: str) -> None:
    spec = REGISTRY[symbol]
    ticks = run([symbol], 100, 5, NOW_MS, 60)

    for prices in (ticks.bid, ticks.ask):
        steps = prices / spec.tick_size
        assert np.allclose(steps, np.round(steps), atol=1e-6)
        assert np.array_equal(prices, np.round(prices, spec.digits))
    assert np.all(ticks.ask > ticks.bid)
    assert len(ticks) > 3000


def test_simulator_when_tick_emitted_then_flags_say_which_side_changed() -> None:
    ticks = run(["EURUSD"], 100, 9, NOW_MS, 30)

    bid_changed = np.concatenate(([True], np.diff(ticks.bid) != 0))
    ask_changed = np.concatenate(([True], np.diff(ticks.ask) != 0))
    assert np.array_equal((ticks.flags & 2) != 0, bid_changed)
    assert np.array_equal((ticks.flags & 4) != 0, ask_changed)
    assert np.all(ticks.flags != 0)


def test_simulator_when_run_a_whole_day_then_average_rate_near_the_setting_and_sessions_differ() -> None:
    ticks = run(["EURUSD", "USDJPY"], 20, 1, MIDNIGHT, 86_400, step_ms=60_000)

    hours = (ticks.time_ms - MIDNIGHT) // HOUR_MS
    per_hour = np.bincount(hours, minlength=24)
    assert 0.6 * 20 * 86_400 < len(ticks) < 1.1 * 20 * 86_400  # unchanged quotes are dropped, as MT5 does
    assert per_hour[13:15].mean() > 2.5 * per_hour[0:2].mean()  # London/New York overlap vs Asia
    assert session_activity(14 * HOUR_MS) > session_activity(21 * HOUR_MS)


def test_simulator_when_rollover_hour_then_spreads_wider_than_at_the_overlap() -> None:
    overlap = run(["EURUSD"], 50, 4, MIDNIGHT + 14 * HOUR_MS, 600)
    rollover = run(["EURUSD"], 50, 4, MIDNIGHT + 21 * HOUR_MS, 600)

    assert np.median(rollover.ask - rollover.bid) > 2 * np.median(overlap.ask - overlap.bid)


def test_simulator_when_symbol_unknown_or_rate_not_positive_then_refused() -> None:
    with pytest.raises(KeyError, match="BTCUSD"):
        SimulatedMarket(["BTCUSD"], REGISTRY, 10, 1, NOW_MS)
    with pytest.raises(ValueError, match="rate"):
        SimulatedMarket(["EURUSD"], REGISTRY, 0, 1, NOW_MS)


def test_simulator_when_volatility_rises_then_spreads_widen() -> None:
    ticks = run(["EURUSD"], 30, 21, MIDNIGHT + 9 * HOUR_MS, 4 * 3600, step_ms=10_000)

    minute = (ticks.time_ms - ticks.time_ms[0]) // 60_000
    mid = (ticks.bid + ticks.ask) / 2
    realized = np.sqrt(np.bincount(minute[1:], weights=np.diff(np.log(mid)) ** 2))  # per-minute volatility
    spread = np.bincount(minute, weights=ticks.ask - ticks.bid) / np.maximum(np.bincount(minute), 1)
    assert np.corrcoef(realized, spread)[0, 1] > 0.3
