"""Plausibility bounds of ticks and the level-shift rule of the spike filter (``tickwave.validation``).

A local process can write any tick file or message: what the bounds refuse never reaches
a sum, and a burst of absurd ticks never moves the reference the dataflow's bars and the
execution process's prices follow.
"""

from __future__ import annotations

import pickle

import msgspec
import pytest

from tests.unit.tickwave.spike_walks import dataclass_pickle
from tickwave.config import StreamsSettings, SymbolSpec, default_symbols
from tickwave.contracts import Tick
from tickwave.instruments import GRID_STEPS, UNLISTED_BOUNDS, instrument_for, tick_bounds
from tickwave.validation import Rejection, SpikeFilter, ValidationRules, check_decoded, check_raw

NOW_MS = 1_709_539_200_000
RULES = ValidationRules.for_symbols(default_symbols())


def raw_tick(symbol: str = "XAUUSD", bid: float = 2000.0, ask: float = 2000.5, **fields: float) -> bytes:
    values = {"symbol": symbol, "time_ms": NOW_MS, "seq": 0, "bid": bid, "ask": ask, "last": 0.0, "volume": 0.0}
    return msgspec.json.encode({"type": "tick.v1", **values, **fields})


def test_bounds_when_left_out_then_from_the_grid_of_the_symbol() -> None:
    bounds = tick_bounds(default_symbols())["XAUUSD"]

    assert bounds.price_min == 0.01
    assert bounds.price_max == pytest.approx(0.01 * 2**53)
    assert bounds.tick_volume_max == pytest.approx(0.01 * 2**53)


def test_bounds_when_configured_then_the_symbols_own() -> None:
    spec = SymbolSpec(digits=2, tick_size=0.01, price_min=100.0, price_max=100_000.0, tick_volume_max=1e6)

    bounds = instrument_for("XAUUSD", spec).bounds

    assert (bounds.price_min, bounds.price_max, bounds.tick_volume_max) == (100.0, 100_000.0, 1e6)


def test_symbol_spec_when_bounds_cross_or_infinite_then_refused() -> None:
    with pytest.raises(ValueError, match="price_min"):
        SymbolSpec(digits=2, tick_size=0.01, price_min=5.0, price_max=1.0)
    with pytest.raises(ValueError, match="finite"):
        SymbolSpec(digits=2, tick_size=0.01, price_max=float("inf"))


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"bid": 1e300, "ask": 1e300}, "bid 1e+300 > price_max"),
        ({"last": 1e308}, "last 1e+308 > price_max"),
        ({"volume": 1e308}, "volume 1e+308 > tick_volume_max"),
        ({"bid": 5e-324, "ask": 2000.0}, "bid 5e-324 < price_min 0.01"),
    ],
)
def test_check_raw_when_a_value_is_beyond_the_bounds_then_implausible(fields: dict[str, float], detail: str) -> None:
    checked = check_raw(raw_tick(**fields), RULES, NOW_MS)

    assert isinstance(checked, Rejection) and checked.check == "implausible"
    assert detail in checked.reason


def test_check_decoded_when_beyond_the_bounds_then_the_same_rejection_as_check_raw() -> None:
    tick = Tick("XAUUSD", NOW_MS, 0, 2000.0, 2000.5, 0.0, 1e308)

    checked = check_decoded(tick, RULES, NOW_MS)

    assert isinstance(checked, Rejection) and checked.check == "implausible"


def test_check_raw_when_a_symbol_has_no_instrument_then_the_unlisted_bounds() -> None:
    rules = ValidationRules()  # every symbol accepted

    assert isinstance(check_raw(raw_tick("ANY", 1.0, 1.1), rules, NOW_MS), Tick)
    checked = check_raw(raw_tick("ANY", 1e300, 1e300), rules, NOW_MS)
    assert isinstance(checked, Rejection) and checked.check == "implausible"
    assert UNLISTED_BOUNDS.price_max == GRID_STEPS


def ticks_at(mid: float, start_ms: int, count: int, step_ms: int, symbol: str = "XAUUSD") -> list[Tick]:
    return [Tick(symbol, start_ms + i * step_ms, 0, mid - 0.25, mid + 0.25) for i in range(count)]


def settled(filter_: SpikeFilter, mid: float = 2000.0, count: int = 10) -> int:
    """Feed ``count`` ticks at ``mid`` one second apart; return the time of the last."""
    ticks = ticks_at(mid, NOW_MS, count, 1000)
    assert all(filter_.check(tick) is None for tick in ticks)
    return ticks[-1].time_ms


def test_spike_filter_when_six_ticks_at_once_far_away_then_none_believed() -> None:
    filter_ = SpikeFilter.from_settings(StreamsSettings())
    last_ms = settled(filter_)

    verdicts = [filter_.check(tick) for tick in ticks_at(1e12, last_ms + 1000, 6, 1)]

    assert all(verdict is not None for verdict in verdicts)
    assert filter_.reference == pytest.approx(2000.0)


def test_spike_filter_when_a_plausible_shift_arrives_in_one_burst_then_not_believed() -> None:
    filter_ = SpikeFilter.from_settings(StreamsSettings())
    last_ms = settled(filter_)

    burst = ticks_at(2100.0, last_ms + 1000, 20, 300)  # +5 %, twenty ticks within six seconds

    assert all(filter_.check(tick) is not None for tick in burst)
    assert filter_.reference == pytest.approx(2000.0)


def test_spike_filter_when_a_shift_holds_in_time_and_size_then_followed() -> None:
    filter_ = SpikeFilter.from_settings(StreamsSettings())
    last_ms = settled(filter_)

    verdicts = [filter_.check(tick) for tick in ticks_at(2100.0, last_ms + 1000, 12, 1000)]  # +5 %, 11 s

    assert all(verdict is not None for verdict in verdicts[:10])  # five ticks, but not yet ten seconds
    assert verdicts[10] is None and filter_.reference == pytest.approx(2100.0)
    assert filter_.check(ticks_at(2100.5, last_ms + 13_000, 1, 1)[0]) is None


def test_spike_filter_when_a_held_shift_is_beyond_the_max_factor_then_never_believed() -> None:
    filter_ = SpikeFilter.from_settings(StreamsSettings())
    last_ms = settled(filter_)

    verdicts = [filter_.check(tick) for tick in ticks_at(50_000.0, last_ms + 1000, 60, 1000)]  # 25x for a minute

    assert all(verdict is not None and "never a level shift" in verdict for verdict in verdicts)
    assert filter_.reference == pytest.approx(2000.0)


def test_spike_filter_when_the_shift_wanders_beyond_the_tolerance_then_it_starts_again() -> None:
    filter_ = SpikeFilter.from_settings(StreamsSettings())
    last_ms = settled(filter_)
    mids = [2100.0 if i % 2 else 2300.0 for i in range(15)]  # 10 % apart: never one level

    verdicts = [filter_.check(Tick("XAUUSD", last_ms + 1000 * (i + 1), 0, m, m)) for i, m in enumerate(mids)]

    assert all(verdict is not None for verdict in verdicts)


def test_spike_filter_when_shift_ticks_are_stamped_before_the_reference_then_they_do_not_count() -> None:
    filter_ = SpikeFilter.from_settings(StreamsSettings())
    last_ms = settled(filter_)

    # From a minute before the newest tick believed at the old level.
    verdicts = [filter_.check(tick) for tick in ticks_at(2100.0, last_ms - 60_000, 12, 1000)]

    assert all(verdict is not None for verdict in verdicts) and filter_.reference == pytest.approx(2000.0)


def test_spike_filter_when_the_first_tick_was_wrong_then_the_market_is_believed_after_holding() -> None:
    filter_ = SpikeFilter.from_settings(StreamsSettings())
    assert filter_.check(ticks_at(90_000.0, NOW_MS, 1, 1)[0]) is None  # a bad first print becomes the reference

    verdicts = [filter_.check(tick) for tick in ticks_at(2000.0, NOW_MS + 1000, 12, 1000)]

    assert None in verdicts and filter_.reference == pytest.approx(2000.0)


def test_spike_filter_when_pickled_before_the_time_rule_then_it_reads_the_defaults() -> None:
    old = SpikeFilter(reference=2000.0, pending_side=1, pending_count=2)
    state = old.__getstate__()
    for name in ("confirm_ms", "tolerance_bps", "max_factor", "reference_ms", "held", "pending_low", "pending_high"):
        state.pop(name)
    restored = pickle.loads(dataclass_pickle(state))

    assert restored.check(Tick("XAUUSD", NOW_MS, 0, 2100.0, 2100.0)) is not None
    assert restored.check(Tick("XAUUSD", NOW_MS + 1, 0, 2000.0, 2000.0)) is None
