"""The class-frequency prior: the training labels' shares, and the log loss of predicting them for every row."""

from __future__ import annotations

import numpy as np
import pytest

from models.dataset import DOWN, FLAT, UP
from models.prior import (
    PriorBaseline,
    class_frequencies,
    describe_shares,
    prior_baseline,
    prior_log_loss,
    prior_probabilities,
    share_figures,
)


def test_class_frequencies_when_labels_given_then_shares_in_label_order() -> None:
    labels = np.array([UP, UP, DOWN, UP, FLAT, DOWN, UP, UP])

    assert class_frequencies(labels).tolist() == [0.25, 0.125, 0.625]
    assert class_frequencies(np.array([], dtype=int)).tolist() == [0.0, 0.0, 0.0]


def test_prior_log_loss_when_hand_checked_then_mean_negative_log_share_of_each_true_label() -> None:
    # Shares of a real EURUSD hourly run: down 44 %, flat 5 %, up 51 %; four holdout rows.
    shares = (0.44, 0.05, 0.51)
    labels = np.array([DOWN, UP, UP, FLAT])

    expected = -(np.log(0.44) + 2 * np.log(0.51) + np.log(0.05)) / 4
    assert prior_log_loss(labels, shares) == pytest.approx(expected, rel=1e-12)
    assert prior_probabilities(shares, 2).tolist() == [list(shares), list(shares)]


def test_prior_log_loss_when_holdout_shares_equal_training_shares_then_the_entropy() -> None:
    labels = np.array([DOWN] * 44 + [FLAT] * 5 + [UP] * 51)
    shares = class_frequencies(labels)

    entropy = -float(np.sum(shares * np.log(shares)))
    assert prior_log_loss(labels, shares) == pytest.approx(entropy, rel=1e-12)
    assert entropy == pytest.approx(0.854, abs=1e-3)  # what a model of no edge scores on such labels


def test_shares_when_recorded_in_registry_metrics_then_read_back_and_described() -> None:
    figures = share_figures((0.44, 0.05, 0.51))

    assert figures == {"train_share_down": 0.44, "train_share_flat": 0.05, "train_share_up": 0.51}
    recorded = {**figures, "holdout_log_loss": 1.07, "wf_log_loss": 1.1, "wf_prior_log_loss": 0.86}
    assert prior_baseline(recorded) == PriorBaseline((0.44, 0.05, 0.51), 1.1, 0.86)
    assert prior_baseline({"train_share_down": 0.44, "holdout_log_loss": 1.07}) is None  # registered before the prior
    assert describe_shares((0.44, 0.05, 0.51)) == "down 44.0% / flat 5.0% / up 51.0%"
