"""Labels, the point-in-time dataset, and every bad input it refuses."""

from __future__ import annotations

import msgspec
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.dataset import (
    DOWN,
    FLAT,
    NO_LABEL,
    OUTCOME_COLUMNS,
    UP,
    Dataset,
    LabelSpec,
    build_dataset,
    direction_labels,
)
from models.errors import InvalidFeaturesError, NotEnoughDataError, SchemaMismatchError
from streams.features import FeatureSpec
from tests.unit.models.market import MINUTE, T0, features_frame, market

SPEC = FeatureSpec()
LABELS = LabelSpec(horizon_bars=5, dead_zone_bps=1.0)
FEATURES, BARS, BAR_LIST = market(count=600)
RANGE = (T0, T0 + 600 * MINUTE)


def build(features: pd.DataFrame = FEATURES, bars: pd.DataFrame = BARS, min_rows: int = 100) -> Dataset:
    return build_dataset(features, bars, SPEC.names, SPEC.schema_hash, LABELS, "1m", RANGE, min_rows)


@pytest.mark.parametrize(
    ("mids", "horizon", "dead_zone_bps", "expected"),
    [
        # +2 bps, -5 bps, +3 bps, +50 bps; the last bar has no horizon.
        ([100.0, 100.02, 99.97, 100.0, 100.5], 1, 1.0, [UP, DOWN, UP, UP, NO_LABEL]),
        # within the dead zone either way is flat; exactly no move is flat.
        ([100.0, 100.0099, 100.0, 99.9901, 99.9901], 1, 1.0, [FLAT, FLAT, FLAT, FLAT, NO_LABEL]),
        # just outside the dead zone: 1.01 bps up, then 1.01 bps down.
        ([100.0, 100.0101, 100.0], 1, 1.0, [UP, DOWN, NO_LABEL]),
        # horizon 2 compares t with t+2 only: 100 -> 100.5 is up although t+1 dipped.
        ([100.0, 99.0, 100.5, 100.5, 98.0], 2, 1.0, [UP, UP, DOWN, NO_LABEL, NO_LABEL]),
        # a wide dead zone makes small moves flat.
        ([100.0, 100.02, 99.97], 1, 10.0, [FLAT, FLAT, NO_LABEL]),
        # shorter than the horizon: nothing can be labelled.
        ([100.0, 101.0], 3, 1.0, [NO_LABEL, NO_LABEL]),
    ],
)
def test_direction_labels_when_hand_checked_then_match(
    mids: list[float], horizon: int, dead_zone_bps: float, expected: list[int]
) -> None:
    labels = direction_labels(np.array(mids), horizon, dead_zone_bps)

    assert labels.tolist() == expected


def test_build_dataset_when_joined_then_rows_are_warm_labelled_and_time_ordered() -> None:
    dataset = build()
    frame = dataset.frame

    warm_per_symbol = FEATURES[FEATURES["is_warm"]].groupby("symbol").size()
    assert len(dataset) == int((warm_per_symbol - LABELS.horizon_bars).sum())
    assert list(frame.columns[: len(OUTCOME_COLUMNS)]) == list(OUTCOME_COLUMNS)
    assert list(frame.columns[len(OUTCOME_COLUMNS) :]) == list(SPEC.names)
    assert frame[["bar_start_ms", "symbol"]].equals(
        frame[["bar_start_ms", "symbol"]].sort_values(["bar_start_ms", "symbol"]).reset_index(drop=True)
    )
    assert (frame["label_end_ms"] == frame["bar_start_ms"] + LABELS.horizon_bars * MINUTE).all()
    assert dataset.features.dtype == np.float32
    assert set(dataset.labels) == {DOWN, FLAT, UP}


def test_build_dataset_when_row_checked_by_hand_then_outcome_columns_match_the_bars() -> None:
    dataset = build()
    row = dataset.frame.iloc[100]
    series = [bar for bar in BAR_LIST if bar.symbol == row["symbol"]]
    index = next(position for position, bar in enumerate(series) if bar.start_ms == row["bar_start_ms"])
    move_bps = (series[index + 5].mid_close / series[index].mid_close - 1) * 10_000

    assert row["mid_close"] == series[index].mid_close
    assert row["next_mid_close"] == series[index + 1].mid_close
    assert (row["bid_close"], row["ask_close"]) == (series[index].bid_close, series[index].ask_close)
    assert row["label"] == (UP if move_bps > 1 else DOWN if move_bps < -1 else FLAT)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cutoff_index=st.integers(min_value=120, max_value=560),
    scale=st.floats(min_value=0.5, max_value=2.0),
    drop=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_build_dataset_when_data_after_t_altered_then_rows_up_to_t_unchanged(
    cutoff_index: int, scale: float, drop: bool, seed: int
) -> None:
    cutoff_ms = T0 + cutoff_index * MINUTE
    features, bars = FEATURES.copy(), BARS.copy()
    later_features, later_bars = features["bar_start_ms"] > cutoff_ms, bars["start_ms"] > cutoff_ms
    # After t: prices scaled, features scrambled, rows shuffled (or dropped).
    for column in ("mid_close", "bid_close", "ask_close"):
        bars.loc[later_bars, column] *= scale
    rng = np.random.default_rng(seed)
    for name in SPEC.names:
        features.loc[later_features, name] = rng.permutation(features.loc[later_features, name].to_numpy())
    if drop:
        features, bars = features[~later_features], bars[~later_bars]
    features = features.sample(frac=1.0, random_state=seed)
    bars = bars.sample(frac=1.0, random_state=seed)

    original, altered = build().frame, build(features, bars, min_rows=1).frame
    key = ["symbol", "bar_start_ms"]
    merged = original.merge(altered, on=key, suffixes=("", "_altered"))
    known = merged[merged["label_end_ms"] <= cutoff_ms]

    at_or_before = merged[merged["bar_start_ms"] <= cutoff_ms]
    # Only rows whose horizon reaches past t may lose their label (when the later bars are dropped).
    assert (original["bar_start_ms"] <= cutoff_ms).sum() - len(at_or_before) <= 2 * LABELS.horizon_bars
    for name in SPEC.names:
        assert (at_or_before[name] == at_or_before[f"{name}_altered"]).all(), name
    assert (known["label"] == known["label_altered"]).all()
    assert (known["mid_close"] == known["mid_close_altered"]).all()


def test_feature_state_when_bars_after_t_altered_then_features_up_to_t_unchanged() -> None:
    cutoff = 300
    eurusd = [bar for bar in BAR_LIST if bar.symbol == "EURUSD"]
    changed = eurusd[: cutoff + 1] + [
        msgspec.structs.replace(
            bar, mid_close=bar.mid_close * 1.5, mid_high=bar.mid_high * 1.5, spread_mean=bar.spread_mean * 3
        )
        for bar in eurusd[cutoff + 1 :]
    ]
    cutoff_ms = eurusd[cutoff].start_ms

    before, after = features_frame(eurusd, SPEC), features_frame(changed, SPEC)

    pd.testing.assert_frame_equal(
        before[before["bar_start_ms"] <= cutoff_ms].reset_index(drop=True),
        after[after["bar_start_ms"] <= cutoff_ms].reset_index(drop=True),
    )
    assert not before[before["bar_start_ms"] > cutoff_ms].equals(after[after["bar_start_ms"] > cutoff_ms])


def test_build_dataset_when_too_few_rows_then_not_enough_data() -> None:
    with pytest.raises(NotEnoughDataError, match=r"labelled rows .* at least 5000 needed"):
        build(min_rows=5000)


def test_build_dataset_when_no_features_in_range_then_not_enough_data() -> None:
    with pytest.raises(NotEnoughDataError, match="0 labelled rows"):
        build(FEATURES.iloc[0:0], BARS)


def test_build_dataset_when_single_class_then_not_enough_data() -> None:
    flat_bars = BARS.assign(mid_close=1.1, bid_close=1.0999, ask_close=1.1001)

    with pytest.raises(NotEnoughDataError, match=r"labelled 'flat' \(a single class\)"):
        build(FEATURES, flat_bars)


def test_build_dataset_when_a_class_is_missing_then_not_enough_data() -> None:
    with pytest.raises(NotEnoughDataError, match=r"no row .* labelled flat"):
        build_dataset(FEATURES, BARS, SPEC.names, SPEC.schema_hash, LabelSpec(5, 0.0), "1m", RANGE, 100)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, None])
def test_build_dataset_when_a_warm_feature_is_not_finite_then_invalid_features(bad: float | None) -> None:
    features = FEATURES.copy()
    features["rsi_14"] = features["rsi_14"].astype(object)
    warm_rows = features.index[features["is_warm"]]
    features.loc[warm_rows[[10, 40]], "rsi_14"] = bad

    with pytest.raises(InvalidFeaturesError, match=r"feature rsi_14 is NaN, infinite or missing in 2 warm rows"):
        build(features)


def test_build_dataset_when_features_of_another_schema_then_schema_mismatch() -> None:
    other = FEATURES.assign(schema_hash="0123456789abcdef")

    with pytest.raises(SchemaMismatchError, match="feature schema 0123456789abcdef"):
        build(other)


def test_build_dataset_when_schemas_mixed_then_only_the_model_schema_is_used() -> None:
    mixed = pd.concat([FEATURES, FEATURES.assign(schema_hash="0123456789abcdef", rsi_14=np.nan)])

    assert build(mixed).frame.equals(build().frame)


def test_build_dataset_when_features_redelivered_then_counted_once() -> None:
    doubled = pd.concat([FEATURES, FEATURES.iloc[:200]])
    bars_doubled = pd.concat([BARS, BARS.iloc[:200]])

    assert build(doubled, bars_doubled).frame.equals(build().frame)
