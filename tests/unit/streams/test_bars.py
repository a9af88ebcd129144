"""Bars: equal to a batch group-by, independent of arrival order within the wait, late ticks quarantined."""

from __future__ import annotations

import pickle
import random
from collections import defaultdict

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.bars import BarState, WindowIds, timeframe_ms
from tickwave.contracts import Bar, Tick

T0 = 1_700_000_040_000  # on a minute boundary


@st.composite
def tick_streams(draw: st.DrawFn) -> list[Tick]:
    """Ticks of one symbol in time order, several per millisecond at times."""
    count = draw(st.integers(min_value=1, max_value=300))
    gaps = draw(st.lists(st.integers(min_value=0, max_value=900), min_size=count, max_size=count))
    mids = draw(st.lists(st.integers(min_value=-50, max_value=50), min_size=count, max_size=count))
    spreads = draw(st.lists(st.integers(min_value=0, max_value=8), min_size=count, max_size=count))
    ticks, time_ms, seq, mid = [], T0 + draw(st.integers(0, 59_999)), 0, 108_500
    for gap, step, spread in zip(gaps, mids, spreads, strict=True):
        seq = seq + 1 if gap == 0 else 0
        time_ms += gap
        mid += step
        bid = (mid - spread) / 100_000
        ticks.append(Tick(symbol="EURUSD", time_ms=time_ms, seq=seq, bid=bid, ask=(mid + spread) / 100_000, volume=1.0))
    return ticks


def batch_bars(ticks: list[Tick], timeframe: str) -> list[Bar]:
    """The reference: group ticks by window, compute each bar from scratch."""
    length = timeframe_ms(timeframe)
    groups: dict[int, list[Tick]] = defaultdict(list)
    for tick in ticks:
        groups[tick.time_ms - tick.time_ms % length].append(tick)
    bars = []
    for start in sorted(groups):
        group = sorted(groups[start], key=lambda t: (t.time_ms, t.seq))
        spreads = [t.ask - t.bid for t in group]
        mids = [(t.bid + t.ask) / 2 for t in group]
        bars.append(
            Bar(
                symbol="EURUSD",
                timeframe=timeframe,
                start_ms=start,
                end_ms=start + length,
                bid_open=group[0].bid,
                bid_high=max(t.bid for t in group),
                bid_low=min(t.bid for t in group),
                bid_close=group[-1].bid,
                ask_open=group[0].ask,
                ask_high=max(t.ask for t in group),
                ask_low=min(t.ask for t in group),
                ask_close=group[-1].ask,
                mid_open=mids[0],
                mid_high=max(mids),
                mid_low=min(mids),
                mid_close=mids[-1],
                tick_count=len(group),
                volume=float(len(group)),
                spread_mean=sum(spreads) / len(spreads),
                spread_max=max(spreads),
            )
        )
    return bars


def run(ticks: list[Tick], wait_ms: int, timeframes: tuple[str, ...] = ("1s", "1m")) -> tuple[list[Bar], list[Tick]]:
    state = BarState(timeframes, wait_ms)
    bars: list[Bar] = []
    late: list[Tick] = []
    for tick in ticks:
        closed, status = state.on_tick(tick)
        bars.extend(closed)
        if status == "late":
            late.append(tick)
    bars.extend(state.flush("EURUSD"))
    return bars, late


def by_timeframe(bars: list[Bar], timeframe: str) -> list[Bar]:
    return sorted((bar for bar in bars if bar.timeframe == timeframe), key=lambda bar: bar.start_ms)


def assert_bars_close(actual: list[Bar], expected: list[Bar]) -> None:
    assert [(b.start_ms, b.tick_count) for b in actual] == [(b.start_ms, b.tick_count) for b in expected]
    for got, want in zip(actual, expected, strict=True):
        # The mean spread is summed in arrival order, the reference in time order: last-bit differences.
        assert got.spread_mean == pytest.approx(want.spread_mean, rel=1e-12, abs=1e-15)
        assert got == msgspec.structs.replace(want, spread_mean=got.spread_mean)


@settings(max_examples=200, deadline=None)
@given(ticks=tick_streams())
def test_bar_state_when_ticks_in_order_then_equals_batch_group_by(ticks: list[Tick]) -> None:
    bars, late = run(ticks, wait_ms=0)

    assert late == []
    for timeframe in ("1s", "1m"):
        assert_bars_close(by_timeframe(bars, timeframe), batch_bars(ticks, timeframe))


@settings(max_examples=200, deadline=None)
@given(ticks=tick_streams(), seed=st.integers(), wait_ms=st.integers(min_value=0, max_value=3000))
def test_bar_state_when_shuffled_within_wait_then_same_bars(ticks: list[Tick], seed: int, wait_ms: int) -> None:
    rng = random.Random(seed)
    # Delay each tick's arrival by up to wait_ms: arrival order changes, lateness does not.
    arrivals = sorted(ticks, key=lambda t: (t.time_ms + rng.uniform(0, wait_ms), rng.random()))

    bars, late = run(arrivals, wait_ms=wait_ms)

    assert late == []
    for timeframe in ("1s", "1m"):
        assert_bars_close(by_timeframe(bars, timeframe), batch_bars(ticks, timeframe))


@settings(max_examples=200, deadline=None)
@given(ticks=tick_streams(), seed=st.integers(), wait_ms=st.integers(min_value=0, max_value=2000))
def test_bar_state_when_arbitrary_disorder_then_every_tick_in_a_bar_or_late(
    ticks: list[Tick], seed: int, wait_ms: int
) -> None:
    arrivals = ticks[:]
    random.Random(seed).shuffle(arrivals)

    bars, late = run(arrivals, wait_ms=wait_ms)

    on_time = [tick for tick in arrivals if tick not in late]
    for timeframe in ("1s", "1m"):
        assert sum(bar.tick_count for bar in by_timeframe(bars, timeframe)) == len(on_time)
        assert_bars_close(by_timeframe(bars, timeframe), batch_bars(on_time, timeframe))


def test_bar_state_when_tick_older_than_wait_then_late_and_bars_unchanged() -> None:
    ticks = [Tick(symbol="EURUSD", time_ms=T0 + offset, seq=0, bid=1.1, ask=1.1002) for offset in (0, 500, 2600)]
    stale = Tick(symbol="EURUSD", time_ms=T0 + 100, seq=0, bid=9.0, ask=9.1)
    state = BarState(("1s",), wait_ms=1000)
    for tick in ticks:
        state.on_tick(tick)

    closed, status = state.on_tick(stale)

    assert status == "late" and closed == []
    assert state.late_count == 1
    assert all(bar.bid_high < 2 for bar in state.flush("EURUSD"))


def test_bar_state_when_tick_redelivered_then_counted_once() -> None:
    tick = Tick(symbol="EURUSD", time_ms=T0, seq=0, bid=1.1, ask=1.1002)
    twin = Tick(symbol="EURUSD", time_ms=T0, seq=1, bid=1.1, ask=1.1002)  # same ms, distinct tick
    state = BarState(("1s",), wait_ms=500)

    statuses = [state.on_tick(item)[1] for item in (tick, twin, tick)]

    assert statuses == ["accepted", "accepted", "duplicate"]
    (bar,) = state.flush("EURUSD")
    assert bar.tick_count == 2
    assert state.duplicate_count == 1


@settings(max_examples=200, deadline=None)
@given(ticks=tick_streams(), seed=st.integers(), wait_ms=st.integers(min_value=0, max_value=2000))
def test_bar_state_when_ticks_redelivered_anywhere_then_each_counted_once_and_ids_kept_only_for_open_windows(
    ticks: list[Tick], seed: int, wait_ms: int
) -> None:
    rng = random.Random(seed)
    arrivals = ticks + rng.sample(ticks, k=rng.randint(0, len(ticks)))  # redelivered copies
    rng.shuffle(arrivals)
    state = BarState(("1s", "1m"), wait_ms=wait_ms)

    counted, bars = set(), []
    for tick in arrivals:
        closed, status = state.on_tick(tick)
        bars += closed
        if status == "accepted":
            assert (tick.time_ms, tick.seq) not in counted
            counted.add((tick.time_ms, tick.seq))
    open_starts = set(state.open_bars["1s"])
    bars += state.flush("EURUSD")

    accepted = sum(bar.tick_count for bar in bars if bar.timeframe == "1s")
    assert accepted == len(counted) <= len({(tick.time_ms, tick.seq) for tick in ticks})
    assert set(state.seen) <= open_starts  # the ids of closed windows are gone


def test_bar_state_when_restored_from_a_single_seen_set_then_split_by_window_and_duplicates_still_caught() -> None:
    state = BarState(("1s",), wait_ms=5000)
    first, second = (Tick(symbol="EURUSD", time_ms=T0 + offset, seq=0, bid=1.1, ask=1.1002) for offset in (10, 1200))
    state.on_tick(first)
    state.on_tick(second)
    old = state.__dict__ | {"seen": {(first.time_ms, 0), (second.time_ms, 0)}}  # the layout before per-window sets
    restored = BarState.__new__(BarState)

    restored.__setstate__(old)

    assert restored.seen == {T0: {(first.time_ms, 0)}, T0 + 1000: {(second.time_ms, 0)}}
    assert all(isinstance(ids, WindowIds) for ids in restored.seen.values())
    assert restored.on_tick(second)[1] == "duplicate"


ids_in_a_window = st.lists(
    st.tuples(st.integers(0, 999), st.one_of(st.just(0), st.integers(0, 3), st.integers(0, 2**40))), max_size=60
)


@settings(max_examples=300, deadline=None)
@given(ids=ids_in_a_window, seed=st.integers())
def test_window_ids_when_added_in_any_order_then_new_exactly_once_and_pickled_equal(
    ids: list[tuple[int, int]], seed: int
) -> None:
    arrivals = [(T0 + offset, seq) for offset, seq in ids]
    random.Random(seed).shuffle(arrivals)
    window, reference = WindowIds(T0), set()

    for time_ms, seq in arrivals:
        assert window.add(time_ms, seq) is ((time_ms, seq) not in reference)
        reference.add((time_ms, seq))

    assert window == reference and len(window) == len(reference)
    assert list(window) == sorted(reference, key=lambda i: (i[1] > 0, i))
    restored = pickle.loads(pickle.dumps(window))
    assert restored == window
    assert all(restored.add(time_ms, seq) is False for time_ms, seq in arrivals)


def test_window_ids_when_pickled_then_about_eight_bytes_per_id_not_one_object_each() -> None:
    window = WindowIds(T0)
    for offset in range(0, 1000, 2):
        window.add(T0 + offset, 0)

    assert (
        len(pickle.dumps(window, protocol=pickle.HIGHEST_PROTOCOL)) < 8 * 500 + 200
    )  # a set of tuples took ~14 bytes per id


def test_bar_state_when_restored_from_sets_per_window_then_window_ids_and_duplicates_still_caught() -> None:
    state = BarState(("1s",), wait_ms=5000)
    tick = Tick(symbol="EURUSD", time_ms=T0 + 10, seq=3, bid=1.1, ask=1.1002)
    state.on_tick(tick)
    old = state.__dict__ | {"seen": {T0: {(tick.time_ms, 3)}}}  # the layout of the previous release
    restored = BarState.__new__(BarState)

    restored.__setstate__(old)

    assert isinstance(restored.seen[T0], WindowIds) and restored.seen == {T0: {(tick.time_ms, 3)}}
    assert restored.on_tick(tick)[1] == "duplicate"


def test_bar_state_when_wall_clock_advances_then_quiet_symbol_bar_closes() -> None:
    state = BarState(("1s",), wait_ms=200)
    state.on_tick(Tick(symbol="EURUSD", time_ms=T0 + 10, seq=0, bid=1.1, ask=1.1002))

    assert state.advance_to(T0 + 1100, "EURUSD") == []
    (bar,) = state.advance_to(T0 + 1200, "EURUSD")
    assert (bar.start_ms, bar.end_ms) == (T0, T0 + 1000)


@pytest.mark.parametrize(("text", "length"), [("1s", 1000), ("1m", 60_000), ("5m", 300_000), ("1h", 3_600_000)])
def test_timeframe_ms_when_valid_then_length(text: str, length: int) -> None:
    assert timeframe_ms(text) == length


@pytest.mark.parametrize("text", ["", "1", "m", "0s", "1w", "-1m", "1.5m"])
def test_timeframe_ms_when_invalid_then_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="not like"):
        timeframe_ms(text)


def test_bar_state_when_timeframes_do_not_nest_then_value_error() -> None:
    with pytest.raises(ValueError, match="not a multiple"):
        BarState(("7s", "1m"), wait_ms=0)


@settings(max_examples=100, deadline=None)
@given(ticks=tick_streams())
def test_bar_state_when_three_nested_timeframes_then_each_equals_batch_group_by(ticks: list[Tick]) -> None:
    bars, _late = run(ticks, wait_ms=0, timeframes=("5s", "1s", "1m"))

    for timeframe in ("1s", "5s", "1m"):
        assert_bars_close(by_timeframe(bars, timeframe), batch_bars(ticks, timeframe))
