"""Streaming features equal the batch reference: TA-Lib for its indicators, numpy for the rest."""

from __future__ import annotations

import itertools
import math

import msgspec
import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.features import FeatureSpec, FeatureState
from tests.unit.streams.bar_series import random_bars
from tickwave.contracts import Bar

SPEC = FeatureSpec()
REL = 1e-9


def batch_reference(bars: list[Bar], spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Every feature over the whole series at once (NaN during warm-up)."""
    close = np.array([bar.mid_close for bar in bars])
    high = np.array([bar.mid_high for bar in bars])
    low = np.array([bar.mid_low for bar in bars])
    spread = np.array([bar.spread_mean for bar in bars])
    out: dict[str, np.ndarray] = {}
    for period in spec.sma_periods:
        out[f"sma_{period}"] = talib.SMA(close, period)
    for period in spec.ema_periods:
        out[f"ema_{period}"] = talib.EMA(close, period)
    out[f"rsi_{spec.rsi_period}"] = talib.RSI(close, spec.rsi_period)
    out["macd"], out["macd_signal"], out["macd_hist"] = talib.MACD(close, *spec.macd)
    width = spec.bollinger_width
    out["bb_upper"], out["bb_middle"], out["bb_lower"] = talib.BBANDS(close, spec.bollinger_period, width, width, 0)
    out[f"atr_{spec.atr_period}"] = talib.ATR(high, low, close, spec.atr_period)
    log_close = np.log(close)
    for horizon in spec.return_horizons:
        shifted = np.full_like(close, np.nan)
        shifted[horizon:] = np.log(close[horizon:] / close[:-horizon])
        out[f"logret_{horizon}"] = shifted
    one_bar = np.diff(log_close, prepend=np.nan)
    n = spec.volatility_period
    out[f"rvol_{n}"] = np.array(
        [math.sqrt(math.fsum(one_bar[i - n + 1 : i + 1] ** 2)) if i >= n else np.nan for i in range(len(close))]
    )
    n = spec.spread_period
    z = np.full_like(spread, np.nan)
    for i in range(n - 1, len(spread)):
        window = spread[i - n + 1 : i + 1]
        deviation = window.std()
        z[i] = 0.0 if deviation <= 1e-12 * abs(window.mean()) else (spread[i] - window.mean()) / deviation
    out[f"spread_z_{n}"] = z
    out.update(ratio_reference(out, close, spread, spec))
    return out


def ratio_reference(
    levels: dict[str, np.ndarray], close: np.ndarray, spread: np.ndarray, spec: FeatureSpec
) -> dict[str, np.ndarray]:
    """The scale-free values from the reference levels, by their definitions (flat denominators give 0, %B 0.5)."""

    def ratio(numerator: np.ndarray, denominator: np.ndarray, flat: float = 0.0) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(np.abs(denominator) <= 1e-12 * np.abs(close), flat, numerator / denominator)

    atr = levels[f"atr_{spec.atr_period}"]
    out = {f"close_sma_{p}": ratio(close - levels[f"sma_{p}"], levels[f"sma_{p}"]) for p in spec.sma_periods}
    out |= {f"close_ema_{p}": ratio(close - levels[f"ema_{p}"], levels[f"ema_{p}"]) for p in spec.ema_periods}
    for fast, slow in itertools.pairwise(spec.ema_periods):
        out[f"ema_spread_{fast}_{slow}_atr"] = ratio(levels[f"ema_{fast}"] - levels[f"ema_{slow}"], atr)
    for name in ("macd", "macd_signal", "macd_hist"):
        out[f"{name}_atr"] = ratio(levels[name], atr)
    width = levels["bb_upper"] - levels["bb_lower"]
    out["bb_pct_b"] = ratio(close - levels["bb_lower"], width, flat=0.5)
    out["bb_bandwidth"] = ratio(width, levels["bb_middle"])
    out[f"atr_{spec.atr_period}_pct"] = atr / close
    out["spread_bps"] = spread * 10_000.0 / close
    # NaN while a level warms up (np.where above would have turned some into the flat value).
    for name, values in out.items():
        values[np.isnan(np.sum([levels[level] for level in _sources(name, spec)], axis=0))] = np.nan
    return out


def _sources(name: str, spec: FeatureSpec) -> list[str]:
    # The levels a scale-free value derives from (its warm-up is theirs).
    atr = f"atr_{spec.atr_period}"
    if name.startswith(("close_sma_", "close_ema_")):
        return [name.removeprefix("close_")]
    if name.startswith("ema_spread_"):
        fast, slow = name.removeprefix("ema_spread_").removesuffix("_atr").split("_")
        return [f"ema_{fast}", f"ema_{slow}", atr]
    if name.startswith("macd"):
        return [name.removesuffix("_atr"), atr]
    if name.startswith("bb_"):
        return ["bb_upper", "bb_middle", "bb_lower"]
    if name.startswith("atr_"):
        return [atr]
    return []


def tolerance(name: str, price: float) -> float:
    """Absolute floor for values that cross zero (relative error is meaningless at 0)."""
    if name.endswith("_atr") or name == "bb_pct_b":
        return 1e-6  # a ratio of two small differences: the references' own rounding, divided by a small range
    if name.startswith(("close_", "bb_bandwidth")):
        return 1e-9
    if name.startswith(("macd", "atr")):
        return 1e-12 * price
    if name.startswith("rsi"):
        return 1e-9
    if name.startswith(("logret", "rvol", "spread_z")):
        return 1e-12
    return 0.0


def assert_streaming_equals_batch(bars: list[Bar], spec: FeatureSpec) -> None:
    state = FeatureState(spec)
    vectors = [state.update(bar) for bar in bars]
    reference = batch_reference(bars, spec)
    price = bars[0].mid_close
    for index, vector in enumerate(vectors):
        assert vector is not None
        for name in spec.names:
            streamed, expected = vector.values[name], float(reference[name][index])
            if math.isnan(expected):
                assert streamed is None, f"{name}[{index}] should be warming up, got {streamed}"
            else:
                assert streamed is not None, f"{name}[{index}] is None, TA-Lib/numpy has {expected}"
                assert math.isclose(streamed, expected, rel_tol=REL, abs_tol=tolerance(name, price)), (
                    f"{name}[{index}]: streaming {streamed!r} != batch {expected!r}"
                )
        assert vector.is_warm == all(not math.isnan(reference[name][index]) for name in spec.names)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    count=st.integers(min_value=1, max_value=260),
    price=st.sampled_from([0.65, 1.0851, 151.25, 2650.0, 43_000.0]),
    volatility=st.sampled_from([1e-6, 2e-5, 1e-4, 3e-3, 2e-2]),
)
def test_feature_state_when_random_bars_then_equals_batch_reference(
    seed: int, count: int, price: float, volatility: float
) -> None:
    bars = random_bars(seed, count, price, volatility, point=price * 1e-5)

    assert_streaming_equals_batch(bars, SPEC)


@pytest.mark.parametrize(
    "spec",
    [
        FeatureSpec(
            sma_periods=(2,),
            ema_periods=(3,),
            rsi_period=2,
            macd=(3, 5, 2),
            bollinger_period=3,
            atr_period=2,
            return_horizons=(2,),
            volatility_period=3,
            spread_period=3,
        ),
        FeatureSpec(macd=(26, 12, 9)),  # reversed periods: TA-Lib swaps them
    ],
)
def test_feature_state_when_other_parameters_then_still_equals_batch_reference(spec: FeatureSpec) -> None:
    assert_streaming_equals_batch(random_bars(11, 120, 1.0851, 1e-4, 1e-5), spec)


def test_feature_state_when_flat_prices_then_rsi_zero_bands_collapse_and_z_zero() -> None:
    bars = random_bars(3, 80, 1.2, 0.0, 1e-5)
    flat = [msgspec.structs.replace(bar, spread_mean=2e-5) for bar in bars]

    assert_streaming_equals_batch(flat, SPEC)


def test_feature_state_when_long_history_then_no_drift() -> None:
    bars = random_bars(5, 20_000, 1.0851, 2e-5, 1e-5)

    assert_streaming_equals_batch(bars, SPEC)


def test_feature_state_when_bar_repeated_after_recovery_then_ignored() -> None:
    bars = random_bars(9, 60, 1.0851, 1e-4, 1e-5)
    state, clean = FeatureState(), FeatureState()
    for bar in bars[:40]:
        state.update(bar)
        clean.update(bar)

    assert state.update(bars[39]) is None
    assert state.update(bars[10]) is None
    assert state.update(bars[40]) == clean.update(bars[40])


def test_feature_vector_when_warm_then_all_numbers_and_schema_hash_set() -> None:
    state = FeatureState()
    vectors = [state.update(bar) for bar in random_bars(1, 60, 1.0851, 1e-4, 1e-5)]

    first_warm = next(index for index, vector in enumerate(vectors) if vector and vector.is_warm)
    assert first_warm == 49  # sma_50 / ema_50 are the last to warm
    assert vectors[-1] is not None
    assert vectors[-1].schema_hash == SPEC.schema_hash
    assert list(vectors[-1].values) == list(SPEC.names)


def test_schema_hash_when_parameters_change_then_differs() -> None:
    assert FeatureSpec().schema_hash != FeatureSpec(rsi_period=7).schema_hash
    assert FeatureSpec().schema_hash == FeatureSpec().schema_hash


def scaled(bar: Bar, factor: float) -> Bar:
    """The same bar with every price (and the spread) multiplied by ``factor``."""
    prices = {
        name: getattr(bar, name) * factor
        for name in (
            "bid_open",
            "bid_high",
            "bid_low",
            "bid_close",
            "ask_open",
            "ask_high",
            "ask_low",
            "ask_close",
            "mid_open",
            "mid_high",
            "mid_low",
            "mid_close",
            "spread_mean",
            "spread_max",
        )
    }
    return msgspec.structs.replace(bar, **prices)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    price=st.floats(min_value=0.01, max_value=50_000.0),
    volatility=st.sampled_from([0.0, 1e-6, 2e-5, 1e-4, 3e-3, 2e-2]),
    factor=st.floats(min_value=1e-4, max_value=1e4).filter(lambda value: value != 1.0),
)
def test_model_inputs_when_every_price_multiplied_by_a_positive_factor_then_unchanged(
    seed: int, price: float, volatility: float, factor: float
) -> None:
    bars = random_bars(seed, 90, price, volatility, point=price * 1e-5)
    original, rescaled = FeatureState(), FeatureState()

    pairs = [(original.update(bar), rescaled.update(scaled(bar, factor))) for bar in bars]

    compared = 0
    for plain, other in pairs:
        assert plain is not None and other is not None and plain.is_warm == other.is_warm
        if not plain.is_warm:
            continue
        for name in SPEC.model_names:
            a, b = plain.values[name], other.values[name]
            assert a is not None and b is not None
            assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9), f"{name}: {a!r} at scale 1, {b!r} at x{factor}"
        compared += 1
    assert compared == 90 - 49


def test_model_inputs_when_listed_then_no_price_level_among_them() -> None:
    levels = {"sma_", "ema_", "bb_upper", "bb_middle", "bb_lower", "macd", "atr_"}

    assert not [
        name for name in SPEC.model_names if name.startswith(tuple(levels)) and not name.endswith(("_atr", "_pct"))
    ]
    assert set(SPEC.model_names) <= set(SPEC.names)  # every model input is stored with the levels
