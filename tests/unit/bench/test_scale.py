"""The scale benchmark's plan of writes: a history at the desk's rate, in the synthetic day's proportions."""

from __future__ import annotations

import itertools

import pytest

from bench.scale import (
    DAY_MS,
    HOUR_MS,
    SYMBOLS,
    TICKS_PER_DAY,
    TICKS_PER_ORDER,
    backfill,
    one_more_hour,
    orders_for,
    span_ms,
)

END_MS = 1_795_000_000_000 // HOUR_MS * HOUR_MS


@pytest.mark.parametrize(
    ("previous", "ticks"), [(0, 50_000), (0, 1_000_000), (1_000_000, 10_000_000), (10_000_000, 100_000_000)]
)
def test_backfill_when_grown_then_chunks_tile_the_older_history_and_hold_every_added_tick(
    previous: int, ticks: int
) -> None:
    chunks = backfill(previous, ticks, END_MS)

    assert sum(chunk.ticks for chunk in chunks) == ticks - previous
    assert chunks[0].start_ms == END_MS - span_ms(ticks)
    assert chunks[-1].start_ms + chunks[-1].span_ms == (END_MS - span_ms(previous) if previous else END_MS)
    for before, after in itertools.pairwise(chunks):
        assert before.start_ms + before.span_ms == after.start_ms  # no gap, no overlap
    for chunk in chunks:
        assert chunk.ticks % len(SYMBOLS) == 0 and chunk.orders % (2 * len(SYMBOLS)) == 0
        assert chunk.span_ms % 60_000 == 0 and 0 < chunk.span_ms <= 7 * DAY_MS
        rate = chunk.ticks * DAY_MS / chunk.span_ms
        assert rate == pytest.approx(TICKS_PER_DAY, rel=0.02)  # the desk's rate in every chunk


@pytest.mark.parametrize("ticks", [50_000, 1_000_000, 100_000_000])
def test_orders_for_when_ticks_given_then_one_order_per_thousand_ticks(ticks: int) -> None:
    assert orders_for(ticks) == pytest.approx(ticks / TICKS_PER_ORDER, rel=0.05, abs=2 * len(SYMBOLS))


def test_span_when_a_year_of_ticks_then_a_year() -> None:
    assert span_ms(TICKS_PER_DAY * 365) == 365 * DAY_MS


def test_one_more_hour_when_asked_then_an_hour_at_the_desks_rate() -> None:
    hour = one_more_hour(END_MS)

    assert (hour.start_ms, hour.span_ms) == (END_MS, HOUR_MS)
    assert hour.ticks == pytest.approx(TICKS_PER_DAY / 24, rel=0.01)
    assert hour.orders >= 2 * len(SYMBOLS)
