"""Input drift (PSI) and live decay: the figures and the retraining rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.dataset import LabelSpec
from models.drift import DriftReport, DriftThresholds, input_drift, live_scores, population_stability_index


def test_psi_when_the_same_sample_then_zero_and_when_shifted_by_a_deviation_then_drifted() -> None:
    rng = np.random.default_rng(0)
    training = rng.normal(size=5_000)

    assert population_stability_index(training, training) == 0.0
    assert population_stability_index(training, np.tile(training, 3)) == pytest.approx(0.0, abs=1e-12)  # sizes differ
    assert population_stability_index(training, rng.normal(size=5_000)) < 0.02
    assert population_stability_index(training, rng.normal(loc=1.0, size=5_000)) > 0.25


@settings(max_examples=60, deadline=None)
@given(
    shift=st.floats(min_value=-3, max_value=3),
    exponent=st.integers(min_value=-8, max_value=8),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_psi_when_both_windows_are_rescaled_then_unchanged_and_never_negative(
    shift: float, exponent: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    training, live = rng.normal(size=800), rng.normal(loc=shift, size=600)
    scale = 2.0**exponent  # exact in binary: the same values fall in the same bins

    psi = population_stability_index(training, live)

    assert psi >= 0
    assert population_stability_index(training * scale, live * scale) == pytest.approx(psi, abs=1e-12)


def test_psi_when_a_side_has_no_finite_value_then_refused_and_the_input_left_out() -> None:
    with pytest.raises(ValueError, match="finite"):
        population_stability_index(np.array([np.nan]), np.array([1.0]))
    training = pd.DataFrame({"a": [0.1, 0.2, 0.3], "b": [np.nan] * 3})
    assert set(input_drift(training, training, ["a", "b"])) == {"a"}


def _report(**figures: object) -> DriftReport:
    return DriftReport("m", 3, "1m", 0, 1, 1000, 500, **figures)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("figures", "expected"),
    [
        ({"psi": {"rsi_14": 0.1, "ret_1": 0.05}}, []),
        ({"psi": {"rsi_14": 0.4}}, ["rsi_14 drifted: PSI 0.400 > 0.25"]),
        # decay: live log loss 1.3 > 1.25 x 1.0, over enough labelled predictions
        (
            {"live_log_loss": 1.3, "holdout_log_loss": 1.0, "live_scored": 200},
            ["live log loss 1.3000 > 1.25 x holdout 1.0000 over 200 predictions"],
        ),
        ({"live_log_loss": 1.3, "holdout_log_loss": 1.0, "live_scored": 199}, []),  # too few to judge
        ({"live_log_loss": 1.2, "holdout_log_loss": 1.0, "live_scored": 500}, []),  # within the ratio
    ],
)
def test_reasons_when_thresholds_are_crossed_then_named(figures: dict[str, object], expected: list[str]) -> None:
    report = _report(**figures)
    assert report.reasons(DriftThresholds()) == expected
    assert report.row(DriftThresholds(), 5)["is_retrain_due"] is bool(expected)


def test_live_scores_when_predictions_meet_their_labels_then_log_loss_and_accuracy_by_hand() -> None:
    # mid closes 1.0, 1.001, 1.002, 1.001: horizon 1, dead zone 1 bp -> up, up, down, (no label)
    bars = pd.DataFrame(
        {"symbol": "EURUSD", "start_ms": [0, 60_000, 120_000, 180_000], "mid_close": [1.0, 1.001, 1.002, 1.001]}
    )
    predictions = pd.DataFrame(
        {
            "symbol": "EURUSD",
            "bar_start_ms": [0, 60_000, 120_000, 180_000],
            "down": [0.1, 0.6, 0.5, 0.2],
            "flat": [0.1, 0.2, 0.25, 0.6],
            "up": [0.8, 0.2, 0.25, 0.2],
        }
    )

    scored, loss, accuracy = live_scores(predictions, bars, LabelSpec(horizon_bars=1, dead_zone_bps=1.0))

    assert scored == 3  # the last bar's label is not known yet
    assert loss == pytest.approx(-(np.log(0.8) + np.log(0.2) + np.log(0.5)) / 3)
    assert accuracy == pytest.approx(2 / 3)
