"""Drift of the champion's inputs and decay of its live performance.

Two questions, answered hourly (the Dagster asset ``model_drift``) for each champion:

- **Input drift**: for every model input, the population stability index (PSI) of the
  live window (``models.drift_window_hours``) against the champion's own training window.
  Bins are the training distribution's deciles, so PSI is unchanged by any monotonic
  rescaling of an input; a proportion is floored at 1e-4 so an empty bin counts instead
  of dividing by zero. Rule of thumb (and default threshold): under 0.1 stable, over 0.25
  drifted (``models.drift_psi_threshold``).
- **Performance decay**: the champion's live predictions scored against what happened
  over the label horizon (the training labels' rule), log loss and accuracy beside the
  holdout's figures from the registry; decayed when the live log loss exceeds
  ``models.decay_log_loss_ratio`` x the holdout's, judged once ``models.decay_min_rows``
  live predictions are labelled.

Either one asks for retraining (the sensor ``retrain_on_drift``). Pure functions here;
:func:`measure_drift` is the warehouse shell.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.dataset import LABELS, LabelSpec, direction_labels, query_bars, query_features, query_predictions
from models.evaluation import log_loss

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from models.registry_rows import RegistryEntry

logger = logging.getLogger(__name__)

PSI_BINS = 10
PSI_FLOOR = 1e-4


def population_stability_index(expected: np.ndarray, actual: np.ndarray, bins: int = PSI_BINS) -> float:
    """Return the PSI of ``actual`` against ``expected`` over the expected's quantile bins (NaN dropped).

    Raises:
        ValueError: when either side has no finite value.
    """
    expected = expected[np.isfinite(expected)]
    actual = actual[np.isfinite(actual)]
    if not len(expected) or not len(actual):
        raise ValueError("PSI needs finite values on both sides")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    expected_share = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1)
    actual_share = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1)
    e = np.maximum(expected_share / len(expected), PSI_FLOOR)
    a = np.maximum(actual_share / len(actual), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class DriftThresholds:
    """When drift or decay asks for retraining (``models.*`` settings)."""

    psi: float = 0.25
    log_loss_ratio: float = 1.25
    min_rows: int = 200


@dataclass(frozen=True)
class DriftReport:
    """One champion's drift and decay over one live window."""

    model_id: str
    model_version: int
    timeframe: str
    window_from_ms: int
    window_to_ms: int
    training_rows: int
    live_rows: int
    psi: Mapping[str, float] = field(default_factory=dict)
    live_scored: int = 0  # live predictions whose label is known
    live_log_loss: float | None = None
    live_accuracy: float | None = None
    holdout_log_loss: float | None = None
    holdout_accuracy: float | None = None

    @property
    def max_psi(self) -> float:
        """The largest PSI of any input (0 when none was measured)."""
        return max(self.psi.values(), default=0.0)

    @property
    def worst_input(self) -> str:
        """The input with the largest PSI ('' when none was measured)."""
        return max(self.psi, key=lambda name: self.psi[name], default="")

    def reasons(self, thresholds: DriftThresholds) -> list[str]:
        """Return why the champion should be retrained (empty: it need not be)."""
        found = [
            f"{name} drifted: PSI {value:.3f} > {thresholds.psi}"
            for name, value in sorted(self.psi.items())
            if value > thresholds.psi
        ]
        if (
            self.live_log_loss is not None
            and self.holdout_log_loss
            and self.live_scored >= thresholds.min_rows
            and self.live_log_loss > thresholds.log_loss_ratio * self.holdout_log_loss
        ):
            found.append(
                f"live log loss {self.live_log_loss:.4f} > {thresholds.log_loss_ratio} x holdout "
                f"{self.holdout_log_loss:.4f} over {self.live_scored} predictions"
            )
        return found

    def row(self, thresholds: DriftThresholds, measured_at_ms: int) -> dict[str, object]:
        """Return the ``model_drift`` row of this report."""
        reasons = self.reasons(thresholds)
        return {
            "model_id": self.model_id,
            "model_version": self.model_version,
            "timeframe": self.timeframe,
            "window_from_ms": self.window_from_ms,
            "window_to_ms": self.window_to_ms,
            "training_rows": self.training_rows,
            "live_rows": self.live_rows,
            "psi": dict(self.psi),
            "max_psi": self.max_psi,
            "worst_input": self.worst_input,
            "live_scored": self.live_scored,
            "live_log_loss": self.live_log_loss,
            "live_accuracy": self.live_accuracy,
            "holdout_log_loss": self.holdout_log_loss,
            "holdout_accuracy": self.holdout_accuracy,
            "is_retrain_due": bool(reasons),
            "reasons": "; ".join(reasons),
            "measured_at_ms": measured_at_ms,
        }


def input_drift(training: pd.DataFrame, live: pd.DataFrame, names: Sequence[str]) -> dict[str, float]:
    """Return the PSI of every input with finite values on both sides."""
    drift = {}
    for name in names:
        try:
            drift[name] = population_stability_index(training[name].to_numpy(float), live[name].to_numpy(float))
        except ValueError:
            continue  # an input never warm in one window: nothing to compare
    return drift


def bar_labels(bars: pd.DataFrame, label_spec: LabelSpec) -> pd.DataFrame | None:
    """Label each bar (``symbol``, ``start_ms``, ``mid_close``) by the direction that followed it, per symbol.

    Returns:
        ``symbol``, ``bar_start_ms``, ``label`` (negative where the horizon is not known yet); None without bars.
    """
    labelled = []
    for symbol, group in bars.sort_values("start_ms").groupby("symbol"):
        labels = direction_labels(group["mid_close"].to_numpy(float), label_spec.horizon_bars, label_spec.dead_zone_bps)
        labelled.append(pd.DataFrame({"symbol": symbol, "bar_start_ms": group["start_ms"].to_numpy(), "label": labels}))
    return pd.concat(labelled) if labelled else None


def live_scores(
    predictions: pd.DataFrame, bars: pd.DataFrame, label_spec: LabelSpec
) -> tuple[int, float | None, float | None]:
    """Score live predictions (``symbol``, ``bar_start_ms``, one column per label) against their bars' labels.

    Returns:
        (labelled predictions, log loss, accuracy); None figures when none is labelled yet.
    """
    labelled = bar_labels(bars, label_spec)
    if labelled is None or predictions.empty:
        return 0, None, None
    frame = predictions.merge(labelled, on=["symbol", "bar_start_ms"], how="inner")
    frame = frame[(frame["label"] >= 0) & (frame["label"] < len(LABELS))]
    if frame.empty:
        return 0, None, None
    labels = frame["label"].to_numpy(int)
    probabilities = frame[list(LABELS)].to_numpy(float)
    accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    return len(frame), log_loss(labels, probabilities), accuracy


def measure_drift(
    client: Client,
    entry: RegistryEntry,
    names: Sequence[str],
    timeframe: str,
    symbols: Sequence[str],
    label_spec: LabelSpec,
    window_ms: int,
    now_ms: int,
) -> DriftReport:
    """Read the training and live windows of ``entry`` from the warehouse and measure drift and decay."""
    live_range = (now_ms - window_ms, now_ms)
    training = query_features(client, symbols, timeframe, (entry.trained_from_ms, entry.trained_to_ms), names)
    live = query_features(client, symbols, timeframe, live_range, names)
    training = training[training["is_warm"].astype(bool) & (training["schema_hash"] == entry.feature_schema_hash)]
    live = live[live["is_warm"].astype(bool) & (live["schema_hash"] == entry.feature_schema_hash)]
    predictions = query_predictions(client, entry.model_id, entry.model_version, timeframe, range_ms=live_range)
    bars = query_bars(client, symbols, timeframe, (live_range[0], now_ms + 1))
    scored, live_loss, live_accuracy = live_scores(predictions, bars, label_spec)
    metrics = entry.metrics
    return DriftReport(
        entry.model_id,
        entry.model_version,
        timeframe,
        *live_range,
        len(training),
        len(live),
        input_drift(training, live, names),
        scored,
        live_loss,
        live_accuracy,
        metrics.get("holdout_log_loss"),
        metrics.get("holdout_accuracy"),
    )
