"""No input stops the dataflow: absurd ticks become dead letters, and the good ticks after them go on.

The flow runs end to end in one process (``TestingSource``/``TestingSink``, ``run_main``).
A Hypothesis property drives generated tick sequences (extreme floats, subnormals, zero
volume, empty last, level jumps) through ingest's validator and the flow: it never
raises, and nothing it stores lies outside the symbol's bounds or is not finite.
"""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.features import FeatureSpec, FeatureState
from streams.flow import FlowSinks, build_flow
from streams.ingest.batches import Candidates
from streams.ingest.logic import TickValidator
from tests.unit.streams.test_flow import NOW_MS, T0
from tests.unit.streams.tiny_model import StaticProvider, tiny_artifact
from tickwave.clock import ManualClock
from tickwave.config import StreamsSettings, default_symbols
from tickwave.contracts import Bar, Tick, encode
from tickwave.instruments import TickBounds, tick_bounds
from tickwave.validation import ValidationRules

SETTINGS = StreamsSettings(timeframes=("1s", "1m"), late_wait_ms=500, close_on_wall_clock=False, model_refresh_s=0.01)
SYMBOLS = default_symbols()
BOUNDS = tick_bounds(SYMBOLS)


def gold(seconds: int, start_ms: int = T0, mid: float = 2000.0) -> list[Tick]:
    """XAUUSD, four ticks a second, a small deterministic wiggle around ``mid``."""
    ticks = []
    for index in range(seconds * 4):
        price = mid + ((index * 7919) % 13 - 6) * 0.05
        ticks.append(Tick("XAUUSD", start_ms + index * 250, 0, price - 0.1, price + 0.1, volume=1.0))
    return ticks


def run_flow(
    raw: list[bytes], rules: ValidationRules, streams: StreamsSettings = SETTINGS, model: bool = True
) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {name: [] for name in FlowSinks.__dataclass_fields__}
    sinks = FlowSinks(**{name: TestingSink(items) for name, items in out.items()})
    provider = StaticProvider(tiny_artifact(FeatureSpec(), timeframe="1s", symbols=("XAUUSD",))) if model else None
    run_main(build_flow(streams, TestingSource(raw, batch_size=64), sinks, provider, rules, clock=ManualClock(NOW_MS)))
    values = {name: [value for _key, value in items] for name, items in out.items()}
    values["ticks"] = [tick for batch in values["ticks"] for tick in batch]
    return values


def test_flow_when_six_gold_ticks_at_1e300_then_dead_letters_and_the_good_ticks_after_make_bars_features_signals() -> (
    None
):
    before, after = gold(120), gold(120, T0 + 120_000)
    absurd = [Tick("XAUUSD", T0 + 120_000 + i, 0, 1e300, 1e300) for i in range(6)]  # just ahead of the stream
    raw = [encode(tick) for tick in [*before, *absurd, *after]]

    out = run_flow(raw, ValidationRules(known_symbols=frozenset(SYMBOLS)))

    assert len(out["dead_letters"]) == 6 and out["dead_letters"] == out["quarantine"]
    assert all(dead.reason.startswith("implausible: bid 1e+300") for dead in out["dead_letters"])
    assert len(out["ticks"]) == len(before) + len(after)
    later = T0 + 121_000
    assert len([bar for bar in out["bars"] if bar.timeframe == "1s" and bar.start_ms >= later]) == 119
    assert all(bar.mid_high < 2100 for bar in out["bars"])
    assert [v for v in out["features"] if v.is_warm and v.bar_start_ms >= later]
    assert [s for s in out["signals"] if s.bar_start_ms >= later]


def test_flow_when_last_or_volume_is_1e308_then_dead_letters_and_the_bar_volume_stays_finite() -> None:
    ticks = gold(10)
    raw = [encode(tick) for tick in ticks]
    raw[8:8] = [encode(msgspec.structs.replace(ticks[8], seq=1, last=1e308))]
    raw[20:20] = [encode(msgspec.structs.replace(ticks[20], seq=1, volume=1e308))]
    raw[21:21] = [encode(msgspec.structs.replace(ticks[21], seq=1, volume=1e308))]

    out = run_flow(raw, ValidationRules.for_symbols(SYMBOLS), model=False)

    assert sorted(dead.reason.split(":")[0] for dead in out["dead_letters"]) == ["implausible"] * 3
    assert all(math.isfinite(bar.volume) and bar.volume == bar.tick_count for bar in out["bars"])


def test_flow_when_a_step_raises_on_one_record_then_that_record_is_a_dead_letter_and_the_flow_goes_on() -> None:
    # Bounds wide enough to let two volumes of 1e308 into one bar: their sum overflows and Bar refuses it.
    loose = ValidationRules(bounds={"XAUUSD": TickBounds(1e-300, 1e306, 1e308)})
    ticks = gold(10)
    raw = [encode(tick) for tick in ticks]
    raw[8:8] = [encode(msgspec.structs.replace(ticks[8], seq=1, volume=1e308))]
    raw[9:9] = [encode(msgspec.structs.replace(ticks[8], seq=2, volume=1e308))]

    out = run_flow(raw, loose, model=False)

    failed = [dead for dead in out["dead_letters"] if dead.reason.startswith("step_failed")]
    assert len(failed) == 1 and "finite" in failed[0].reason
    assert len([bar for bar in out["bars"] if bar.timeframe == "1s"]) == 9  # every other second's bar
    assert all(math.isfinite(bar.volume) for bar in out["bars"])


def test_flow_when_a_step_raised_on_a_record_and_the_flow_resumes_then_the_record_is_not_replayed(
    tmp_path: Path,
) -> None:
    loose = ValidationRules(bounds={"XAUUSD": TickBounds(1e-300, 1e306, 1e308)})
    ticks = gold(60)
    raw: list[Any] = [encode(tick) for tick in ticks]
    raw[40:40] = [encode(msgspec.structs.replace(ticks[40], seq=s, volume=1e308)) for s in (1, 2)]  # a bar of inf
    raw.insert(150, TestingSource.ABORT())
    init_db_dir(tmp_path, 1)
    out: dict[str, list[Any]] = {name: [] for name in FlowSinks.__dataclass_fields__}
    sinks = FlowSinks(**{name: TestingSink(items) for name, items in out.items()})

    for _attempt in range(2):  # aborted after the record, then resumed from the recovery store to the end
        flow = build_flow(SETTINGS, TestingSource(raw, batch_size=10), sinks, None, loose, clock=ManualClock(NOW_MS))
        run_main(flow, epoch_interval=timedelta(0), recovery_config=RecoveryConfig(str(tmp_path)))

    failed = [dead for _key, dead in out["dead_letters"] if dead.reason.startswith("step_failed")]
    assert len(failed) == 1  # dead-lettered once: the resumed run started past it
    seconds = {bar.start_ms for _key, bar in out["bars"] if bar.timeframe == "1s"}
    assert len(seconds) == 59 and all(math.isfinite(bar.volume) for _key, bar in out["bars"])


def test_features_when_a_bar_makes_a_value_infinite_then_null_and_the_indicators_start_over() -> None:
    state = FeatureState(FeatureSpec())
    bars = [bar_at(i, 2000.0 + (i % 3)) for i in range(60)]
    for bar in bars:
        state.update(bar)

    absurd = [state.update(bar_at(60 + i, 1e300 * (1 + i % 2))) for i in range(25)]  # raised before
    assert any(vector is not None and vector.values["bb_upper"] is None for vector in absurd)
    assert all(value is None or math.isfinite(value) for vector in absurd if vector for value in vector.values.values())
    recovered = [state.update(bar_at(85 + i, 2000.0 + (i % 3))) for i in range(60)]
    assert recovered[-1] is not None and recovered[-1].is_warm
    assert all(
        value is None or math.isfinite(value) for vector in recovered if vector for value in vector.values.values()
    )


def bar_at(index: int, mid: float) -> Bar:
    start = T0 + index * 1000
    return Bar(
        symbol="XAUUSD",
        timeframe="1s",
        start_ms=start,
        end_ms=start + 1000,
        bid_open=mid,
        bid_high=mid,
        bid_low=mid,
        bid_close=mid,
        ask_open=mid,
        ask_high=mid,
        ask_low=mid,
        ask_close=mid,
        mid_open=mid,
        mid_high=mid,
        mid_low=mid,
        mid_close=mid,
        tick_count=1,
        volume=1.0,
        spread_mean=0.0,
        spread_max=0.0,
    )


EXTREMES = [0.0, -0.0, 5e-324, 1e-300, 1e-10, 0.01, 1e300, 1e308, 1.7976931348623157e308, math.inf, math.nan, -1.0]
prices = st.one_of(st.sampled_from([2000.0, 2000.5, 2100.0, 4000.0, 1e6, 1e12, *EXTREMES]), st.floats(0.01, 1e15))
volumes = st.one_of(st.sampled_from([0.0, 1.0, *EXTREMES]), st.floats(0, 1e20))
lasts = st.one_of(st.just(0.0), st.just(math.nan), prices)  # NaN: an empty LAST as a reader leaves it
rows = st.tuples(st.integers(0, 2_000), prices, st.floats(0, 10), lasts, volumes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows, min_size=1, max_size=120))
def test_ingest_then_flow_when_any_tick_sequence_then_it_runs_and_stores_only_bounded_finite_values(
    generated: list[tuple[int, float, float, float, float]],
) -> None:
    validator = TickValidator(SYMBOLS, "test", 60_000, ManualClock(NOW_MS))
    times = np.cumsum([step for step, *_rest in generated]) + (NOW_MS - 600_000)
    bids = np.array([bid for _step, bid, *_rest in generated])
    with np.errstate(over="ignore", invalid="ignore"):
        asks = bids + np.array([spread for _step, _bid, spread, *_rest in generated])
    count = len(generated)
    candidates = Candidates(
        ("XAUUSD",),
        np.zeros(count, dtype=np.int32),
        times.astype(np.int64),
        bids,
        asks,
        np.array([last for *_head, last, _volume in generated]),
        np.array([volume for *_head, volume in generated]),
        np.full(count, 6, dtype=np.int64),
        lambda i: f"row {i}",
    )
    accepted = validator.validate(candidates).ticks.ticks()
    streams = StreamsSettings(timeframes=("1s", "1m"), late_wait_ms=500, close_on_wall_clock=False)

    out = run_flow([encode(tick) for tick in accepted], ValidationRules.for_symbols(SYMBOLS), streams, model=False)

    limits = BOUNDS["XAUUSD"]
    for tick in out["ticks"]:
        assert limits.price_min <= tick.bid <= tick.ask <= limits.price_max
        assert tick.last == 0 or limits.price_min <= tick.last <= limits.price_max
        assert tick.volume <= limits.tick_volume_max
    for bar in out["bars"]:
        assert limits.price_min <= bar.mid_low <= bar.mid_high <= limits.price_max
        assert math.isfinite(bar.volume) and math.isfinite(bar.spread_mean)
    for vector in out["features"]:
        assert all(value is None or math.isfinite(value) for value in vector.values.values())
    assert not [dead for dead in out["dead_letters"] if dead.reason.startswith("step_failed")]
