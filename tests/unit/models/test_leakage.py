"""The leakage check: stored features must replay from the bars up to their own bar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.errors import LeakageError
from models.leakage import check_point_in_time, default_warmup_bars, replay_features
from streams.features import FeatureSpec
from tests.unit.models.market import features_frame, market

SPEC = FeatureSpec()
FEATURES, BARS, BAR_LIST = market(count=1200)


def check(stored: pd.DataFrame) -> None:
    check_point_in_time(BARS, stored, SPEC, windows=6, tolerance=1e-6)


def test_check_when_features_come_from_the_streams_then_every_replayed_value_matches() -> None:
    report = replay_features(BARS, FEATURES, SPEC, windows=6, tolerance=1e-6)

    assert report.compared_rows >= 2 * 6 * 40
    assert report.leaky_features() == []
    assert sum(report.mismatches.values()) == 0


def test_check_when_a_feature_uses_the_next_bar_then_leakage_error_names_it() -> None:
    leaky = FEATURES.copy()
    # The classic shift bug: each row gets the following bar's one-bar return.
    leaky["logret_1"] = leaky.groupby("symbol")["logret_1"].shift(-1).fillna(0.0)

    with pytest.raises(LeakageError, match=r"logret_1: \d+/\d+ differ, e\.g\. (EURUSD|USDJPY) bar") as caught:
        check(leaky)

    assert "sma_5" not in str(caught.value)


def test_check_when_a_moving_average_is_centred_then_leakage_error() -> None:
    leaky = FEATURES.copy()
    mids = BARS.set_index(["symbol", "start_ms"])["mid_close"]
    centred = mids.groupby(level="symbol").transform(lambda series: series.rolling(5, center=True).mean())
    leaky["sma_5"] = centred.loc[list(zip(leaky["symbol"], leaky["bar_start_ms"], strict=True))].to_numpy()
    leaky["sma_5"] = leaky["sma_5"].fillna(leaky["sma_20"])

    with pytest.raises(LeakageError, match="sma_5"):
        check(leaky)


def test_check_when_the_streams_restarted_without_state_then_not_mistaken_for_leakage() -> None:
    # A restart at bar 700 of EURUSD: indicators warm up again from there, then drift back to the replay.
    eurusd = [bar for bar in BAR_LIST if bar.symbol == "EURUSD"]
    before = features_frame(eurusd[:700], SPEC)
    after = features_frame(eurusd[700:], SPEC)
    restarted = pd.concat([before, after, FEATURES[FEATURES["symbol"] == "USDJPY"]], ignore_index=True)
    assert not restarted["is_warm"].iloc[700]  # what the restart leaves in the warehouse

    report = check_point_in_time(BARS, restarted, SPEC, windows=6, tolerance=1e-6)
    without_restart_rows = replay_features(BARS, restarted[restarted["is_warm"]], SPEC, windows=6, tolerance=1e-6)

    assert report.compared_rows > 0
    assert sum(report.mismatches.values()) == 0  # the window spanning the restart replays from it
    assert sum(without_restart_rows.mismatches.values()) > 0  # (blind to the restart, the replay would differ)


def test_check_when_series_shorter_than_the_warm_up_then_nothing_compared_and_no_error() -> None:
    short = BARS.groupby("symbol").head(100)

    report = check_point_in_time(short, FEATURES, SPEC, windows=6, tolerance=1e-6)

    assert report.compared_rows == 0


def test_default_warmup_when_default_spec_then_ten_times_the_longest_look_back() -> None:
    assert default_warmup_bars(SPEC) == 500
    small = FeatureSpec(
        sma_periods=(3,),
        ema_periods=(3,),
        rsi_period=5,
        macd=(3, 6, 3),
        bollinger_period=5,
        atr_period=5,
        return_horizons=(1,),
        volatility_period=5,
        spread_period=5,
    )
    assert default_warmup_bars(small) == 200


def test_check_when_values_differ_only_by_float_rounding_then_accepted() -> None:
    rounded = FEATURES.copy()
    names = list(SPEC.names)
    rounded[names] = rounded[names].to_numpy() * (1 + 1e-12 * np.sign(rounded[names].to_numpy()))

    assert check_point_in_time(BARS, rounded, SPEC, windows=6, tolerance=1e-6).leaky_features() == []
