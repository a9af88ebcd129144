"""Validation rules, seq numbering, MT5 poll de-duplication, merging and pacing."""

from __future__ import annotations

import math
from collections import Counter

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.ingest.batches import SourceBatch, TickBatch
from streams.ingest.logic import (
    Pacer,
    PollCursor,
    SeqCursor,
    TickValidator,
    assign_seq,
    merge_by_time,
    select_new,
    within,
)
from tests.unit.ingest.helpers import NOW_MS, REGISTRY, candidates
from tickwave.clock import ManualClock
from tickwave.contracts import Tick
from tickwave.instruments import tick_bounds


def validator(max_future_ms: int = 60_000) -> TickValidator:
    return TickValidator(REGISTRY, "test", max_future_ms, ManualClock(NOW_MS))


@pytest.mark.parametrize(
    ("row", "code"),
    [
        (("XYZ", NOW_MS, 1.0, 1.1, 0.0, 0.0, 6), "unknown_symbol"),
        (("EURUSD", NOW_MS, math.nan, 1.1, 0.0, 0.0, 6), "non_finite"),
        (("EURUSD", NOW_MS, 1.0, math.inf, 0.0, 0.0, 6), "non_finite"),
        (("EURUSD", NOW_MS, 1.0, 1.1, 0.0, -math.inf, 6), "non_finite"),
        (("EURUSD", NOW_MS, 0.0, 1.1, 0.0, 0.0, 6), "non_positive"),
        (("EURUSD", NOW_MS, -1.0, -0.5, 0.0, 0.0, 6), "non_positive"),
        (("EURUSD", NOW_MS, 1.2, 1.1, 0.0, 0.0, 6), "ask_below_bid"),
        (("EURUSD", NOW_MS, 1.0, 1.1, -0.5, 0.0, 6), "negative"),
        (("EURUSD", NOW_MS, 1.0, 1.1, 0.0, -1.0, 6), "negative"),
        (("EURUSD", NOW_MS, 1.0, 1.1, 0.0, 0.0, 2**32), "bad_flags"),
        (("EURUSD", -1, 1.0, 1.1, 0.0, 0.0, 6), "before_min_time"),
        (("EURUSD", NOW_MS + 60_001, 1.0, 1.1, 0.0, 0.0, 6), "future_timestamp"),
    ],
)
def test_validate_when_row_impossible_then_rejected_with_reason_and_raw(row: tuple, code: str) -> None:
    symbol, time_ms, bid, ask, last, volume, flags = row
    rows = candidates(
        ["EURUSD", symbol, "EURUSD"],
        [NOW_MS - 2, time_ms, NOW_MS],
        [1.0, bid, 1.0],
        [1.1, ask, 1.1],
        [0.0, last, 0.0],
        [0.0, volume, 0.0],
        [6, flags, 6],
    )

    result = validator().validate(rows)

    assert [rejected.reason.split(":")[0] for rejected in result.rejected] == [code]
    assert result.rejected[0].raw == "row 1"
    assert result.rejected[0].symbol == symbol
    assert result.ticks.time_ms.tolist() == [NOW_MS - 2, NOW_MS]


def test_validate_when_time_goes_back_then_out_of_order_and_later_rows_kept() -> None:
    rows = candidates(["EURUSD"] * 4, [NOW_MS - 5, NOW_MS - 9, NOW_MS - 5, NOW_MS - 4], [1.0] * 4, [1.1] * 4)

    result = validator().validate(rows)

    assert [r.raw for r in result.rejected] == ["row 1"]
    assert result.rejected[0].reason.startswith("out_of_order: time_ms")
    assert list(zip(result.ticks.time_ms.tolist(), result.ticks.seq.tolist(), strict=True)) == [
        (NOW_MS - 5, 0),
        (NOW_MS - 5, 1),
        (NOW_MS - 4, 0),
    ]


def test_validate_when_next_batch_starts_in_the_same_millisecond_then_seq_continues() -> None:
    check = validator()
    check.validate(candidates(["EURUSD", "USDJPY"], [NOW_MS, NOW_MS], [1.0, 150.0], [1.1, 150.1]))

    result = check.validate(
        candidates(
            ["EURUSD", "EURUSD", "USDJPY"], [NOW_MS, NOW_MS + 1, NOW_MS - 1], [1.0] * 2 + [150.0], [1.1] * 2 + [150.1]
        )
    )

    assert [tick.tick_id for tick in result.ticks.ticks()] == [f"EURUSD:{NOW_MS}:1", f"EURUSD:{NOW_MS + 1}:0"]
    assert result.rejected[0].reason.startswith("out_of_order")


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)
any_float = st.one_of(finite, st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, 1e300, 1e308]))


@settings(deadline=None)
@given(bid=any_float, ask=any_float, last=any_float, volume=any_float, flags=st.integers(-5, 2**33))
def test_validate_when_any_values_then_accepts_exactly_what_tick_and_the_bounds_accept(
    bid: float, ask: float, last: float, volume: float, flags: int
) -> None:
    try:
        Tick("EURUSD", NOW_MS, 0, bid, ask, last, volume, flags, "test")
        msgspec.json.decode(msgspec.json.encode(Tick("EURUSD", NOW_MS, 0, bid, ask, last, volume, flags)), type=Tick)
        tick_accepts = 0 <= flags < 2**32  # Tick leaves flags unbounded; MT5 flags are uint32
        limits = tick_bounds(REGISTRY)["EURUSD"]  # and the symbol's plausibility bounds
        tick_accepts &= limits.price_min <= bid <= ask <= limits.price_max and volume <= limits.tick_volume_max
        tick_accepts &= last == 0 or limits.price_min <= last <= limits.price_max
    except (ValueError, msgspec.ValidationError):
        tick_accepts = False

    result = validator().validate(candidates(["EURUSD"], [NOW_MS], [bid], [ask], [last], [volume], [flags]))

    assert len(result.ticks) == int(tick_accepts)
    assert len(result.rejected) == int(not tick_accepts)


@settings(deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=200), st.lists(st.integers(1, 50), min_size=1, max_size=10))
def test_assign_seq_when_batches_split_anywhere_then_ordinal_within_each_millisecond(
    steps: list[int], cuts: list[int]
) -> None:
    times = np.cumsum(np.array([0, *steps[1:]]) // 10).astype(np.int64)  # many repeats
    cursor, parts, start = SeqCursor(), [], 0
    for size in [*cuts, len(times)]:
        parts.append(assign_seq(times[start : start + size], cursor))
        start += size
        if start >= len(times):
            break

    seq = np.concatenate(parts).tolist()
    expected = [list(times[: i + 1]).count(t) - 1 for i, t in enumerate(times.tolist())]
    assert seq == expected


tick_history = st.lists(st.sampled_from([0, 0, 0, 1, 4, 5]), min_size=1, max_size=120).map(
    lambda gaps: np.cumsum(np.array(gaps) * 250).astype(np.int64)  # many ticks share a millisecond
)


@settings(max_examples=200, deadline=None)
@given(tick_history, st.lists(st.tuples(st.integers(0, 12), st.integers(1, 6)), min_size=1, max_size=40))
def test_select_new_when_polled_with_overlapping_inclusive_windows_then_each_tick_once(
    history: np.ndarray, polls: list[tuple[int, int]]
) -> None:
    # The terminal's history grows; each poll reads [second of the cursor, +window] inclusive.
    cursor, sent, visible = PollCursor(), [], 0
    for grow, window_s in polls:
        visible = min(len(history), visible + grow)
        shown = history[:visible]
        start = cursor.last_time_msc // 1000 * 1000 if cursor.last_time_msc >= 0 else 0
        while True:
            end = start + window_s * 1000
            window = np.flatnonzero((shown >= start) & (shown <= end))
            fresh = select_new(shown[window], cursor)
            sent.extend(window[fresh].tolist())
            if end >= (shown[-1] if len(shown) else 0):
                break
            start = end

    assert sent == list(range(len(sent)))  # in order, none twice, none skipped
    assert len(sent) == visible


def batch(symbol: str, times: list[int]) -> TickBatch:
    count = len(times)
    ints, floats = np.zeros(count, np.int64), np.ones(count)
    return TickBatch(
        (symbol,),
        np.zeros(count, np.int32),
        np.array(times, np.int64),
        ints,
        floats,
        floats * 2,
        floats * 0,
        floats * 0,
        ints + 6,
        "test",
    )


@settings(deadline=None)
@given(st.lists(st.lists(st.integers(0, 1000), max_size=40), min_size=1, max_size=4), st.integers(1, 15))
def test_merge_by_time_when_streams_interleave_then_ordered_and_nothing_lost(
    streams: list[list[int]], size: int
) -> None:
    sources = []
    for index, times in enumerate(streams):
        ordered = sorted(times)
        sources.append(
            iter([SourceBatch(batch(f"S{index}", ordered[i : i + size])) for i in range(0, len(ordered), size)])
        )

    merged = TickBatch.concat([b.ticks for b in merge_by_time(sources)])

    assert merged.time_ms.tolist() == sorted(t for times in streams for t in times)
    assert Counter(merged.symbols[c] for c in merged.symbol_code.tolist()) == Counter(
        {f"S{i}": len(times) for i, times in enumerate(streams) if times}
    )


def test_within_when_bounds_given_then_half_open_window() -> None:
    ticks = batch("EURUSD", [10, 20, 30, 40])

    assert within(ticks, 20, 40).time_ms.tolist() == [20, 30]
    assert within(ticks, None, None) is ticks


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(round(seconds, 6))
        self.now += seconds
        return False


def test_pacer_when_speed_given_then_slices_released_when_due() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, clock, clock.wait, slice_s=0.03)

    released = [(part.time_ms.tolist(), clock.now) for part in pacer.pace(batch("EURUSD", [0, 100, 400, 2000]))]

    assert released == [([0, 100], 100.0), ([400], 100.04), ([2000], 100.2)]
    assert pacer.virtual_now_ms() == 2000


def test_pacer_when_stopped_while_waiting_then_ends() -> None:
    pacer = Pacer(1.0, lambda: 0.0, lambda seconds: True)

    assert [part.time_ms.tolist() for part in pacer.pace(batch("EURUSD", [0, 5000]))] == [[0]]


def test_pacer_when_max_speed_then_batch_passes_untouched() -> None:
    ticks = batch("EURUSD", [0, 10_000])

    assert list(Pacer(None, lambda: 0.0, lambda s: False).pace(ticks)) == [ticks]
    with pytest.raises(ValueError, match="speed"):
        Pacer(0.0, lambda: 0.0, lambda s: False)
