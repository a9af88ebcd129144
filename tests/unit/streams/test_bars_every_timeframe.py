"""Bars at every MT5 timeframe: a year of M1-derived ticks gives the H1, H4 and D1 bars pandas gives.

The pure bar logic (``streams.bars``) is driven directly, so a year of one symbol takes
seconds; the expected bars are aggregated independently with pandas, H4 and D1 in New
York time from the 17:00 rollover (daylight saving included). The ticks follow the FX
week (Sunday 17:00 to Friday 17:00 New York); the finest bars are M5 (each folding five
M1 bars' ticks), which keeps the year's ~1.1M ticks at a few seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from streams.bars import BarState
from tickwave.contracts import Bar, Tick
from tickwave.timeframes import SessionAlignment, window_of

ZONE = "America/New_York"
YEAR_START = pd.Timestamp("2026-01-01", tz="UTC")
MINUTES = 365 * 24 * 60
TICKS_PER_MINUTE = 3  # at :00, :20 and :40 of each minute


def year_of_ticks(seed: int = 26) -> pd.DataFrame:
    """One symbol's ticks for a year of FX weeks, three per M1 bar (its open, an extreme, its close)."""
    rng = np.random.default_rng(seed)
    start_ms = int(YEAR_START.timestamp() * 1000)
    minutes_ms = start_ms + np.arange(MINUTES, dtype=np.int64) * 60_000
    trading_day = (pd.to_datetime(minutes_ms, unit="ms", utc=True).tz_convert(ZONE) + pd.Timedelta(hours=7)).day_of_week
    minutes_ms = minutes_ms[np.asarray(trading_day) < 5]  # Monday..Friday trading days: Sun 17:00 to Fri 17:00
    count = len(minutes_ms) * TICKS_PER_MINUTE
    time_ms = np.repeat(minutes_ms, TICKS_PER_MINUTE)
    time_ms += np.tile(np.array([0, 20_000, 40_000], dtype=np.int64), len(minutes_ms))
    bid = np.round(1.10 + np.cumsum(rng.normal(0, 0.00005, count)), 5)
    ask = np.round(bid + rng.integers(1, 20, count) * 0.00001, 5)
    volume = rng.integers(1, 5, count).astype(float)
    return pd.DataFrame({"time_ms": time_ms, "bid": bid, "ask": ask, "volume": volume})


def expected_bars(ticks: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Aggregate with pandas alone: H1 on UTC hours, H4/D1 on New York wall-clock days from 17:00."""
    utc = pd.to_datetime(ticks["time_ms"], unit="ms", utc=True)
    rollover = pd.Timedelta(hours=17)
    if timeframe == "1h":
        start = utc.dt.floor("1h")
        end = start + pd.Timedelta(hours=1)
    else:
        length = pd.Timedelta(hours=4) if timeframe == "4h" else pd.Timedelta(days=1)
        local = utc.dt.tz_convert(ZONE).dt.tz_localize(None) - rollover
        local_start = local.dt.floor(length) + rollover
        start = local_start.dt.tz_localize(ZONE, ambiguous=True).dt.tz_convert("UTC")
        end = (local_start + length).dt.tz_localize(ZONE, ambiguous=True).dt.tz_convert("UTC")
    frame = ticks.assign(start_ms=start.dt.as_unit("ms").astype("int64"), end_ms=end.dt.as_unit("ms").astype("int64"))
    grouped = frame.groupby(["start_ms", "end_ms"], sort=True)
    return grouped.agg(
        bid_open=("bid", "first"),
        bid_high=("bid", "max"),
        bid_low=("bid", "min"),
        bid_close=("bid", "last"),
        ask_open=("ask", "first"),
        ask_high=("ask", "max"),
        ask_low=("ask", "min"),
        ask_close=("ask", "last"),
        tick_count=("bid", "size"),
        volume=("volume", "sum"),
    ).reset_index()


@pytest.fixture(scope="module")
def year() -> tuple[pd.DataFrame, list[Bar]]:
    ticks = year_of_ticks()
    state = BarState(("5m", "1h", "4h", "1d"), wait_ms=0, alignment=SessionAlignment.at(ZONE, "17:00"))
    bars: list[Bar] = []
    for time_ms, bid, ask, volume in zip(
        ticks["time_ms"].tolist(), ticks["bid"].tolist(), ticks["ask"].tolist(), ticks["volume"].tolist(), strict=True
    ):
        tick = Tick(
            symbol="EURUSD", time_ms=time_ms, seq=0, bid=bid, ask=ask, last=0.0, volume=volume, flags=6, source="test"
        )
        closed, status = state.on_tick(tick)
        assert status == "accepted"
        bars.extend(closed)
    bars.extend(state.flush("EURUSD"))
    return ticks, bars


@pytest.mark.parametrize("timeframe", ["1h", "4h", "1d"])
def test_bar_state_when_a_year_of_m1_ticks_replayed_then_bars_equal_pandas(
    year: tuple[pd.DataFrame, list[Bar]], timeframe: str
) -> None:
    ticks, bars = year
    expected = expected_bars(ticks, timeframe)
    actual = pd.DataFrame(
        [
            {
                "start_ms": bar.start_ms,
                "end_ms": bar.end_ms,
                "bid_open": bar.bid_open,
                "bid_high": bar.bid_high,
                "bid_low": bar.bid_low,
                "bid_close": bar.bid_close,
                "ask_open": bar.ask_open,
                "ask_high": bar.ask_high,
                "ask_low": bar.ask_low,
                "ask_close": bar.ask_close,
                "tick_count": bar.tick_count,
                "volume": bar.volume,
            }
            for bar in bars
            if bar.timeframe == timeframe
        ]
    )

    assert len(actual) == len(expected)
    pd.testing.assert_frame_equal(actual.reset_index(drop=True), expected, check_dtype=False)


def test_bar_state_when_clocks_change_then_d1_bars_follow_new_york(year: tuple[pd.DataFrame, list[Bar]]) -> None:
    _ticks, bars = year
    lengths_h = {(bar.end_ms - bar.start_ms) / 3_600_000 for bar in bars if bar.timeframe == "1d"}
    starts_utc_h = {pd.Timestamp(bar.start_ms, unit="ms", tz="UTC").hour for bar in bars if bar.timeframe == "1d"}

    assert lengths_h == {24.0}  # New York changes its clocks on Sunday 02:00, while the FX market is closed
    assert starts_utc_h == {21, 22}  # 17:00 New York in summer and in winter
    # Five trading days a week in 2026; the first began 2025-12-31 17:00 New York.
    assert len([bar for bar in bars if bar.timeframe == "1d"]) == 262


def test_window_of_when_utc_alignment_then_epoch_days() -> None:
    moment = int(pd.Timestamp("2026-07-01 23:30", tz="UTC").timestamp() * 1000)
    day_start = int(pd.Timestamp("2026-07-01", tz="UTC").timestamp() * 1000)

    assert window_of("1d", 86_400_000, moment) == (day_start, day_start + 86_400_000)
    assert window_of("1d", 86_400_000, moment, SessionAlignment.at(ZONE, "17:00"))[0] == day_start + 21 * 3_600_000


@pytest.mark.parametrize(("day", "hours"), [("2026-03-07 23:00", 23), ("2026-10-31 23:00", 25)])
def test_window_of_when_the_trading_day_holds_a_clock_change_then_23_or_25_hours(day: str, hours: int) -> None:
    moment = int(pd.Timestamp(day, tz="UTC").timestamp() * 1000)

    start, end = window_of("1d", 86_400_000, moment, SessionAlignment.at(ZONE, "17:00"))

    assert (end - start) // 3_600_000 == hours


def test_bar_state_when_rollover_off_the_finest_boundary_then_refused() -> None:
    with pytest.raises(ValueError, match="straddle the rollover"):
        BarState(("1h", "1d"), wait_ms=0, alignment=SessionAlignment.at(ZONE, "17:30"))
