"""What "no edge" scores: the class-frequency prior, the baseline every model's log loss must beat.

The prior predicts, for every row, the shares of ``down``, ``flat`` and ``up`` among the
labels the model was trained on. It knows nothing about the market beyond how often each
label occurred, so a model whose log loss is not below the prior's has learnt nothing a
trader could use (it may well be worse: a model that starts from a uniform guess, or
over-fits noise, scores above the prior). The shares come from the training labels only
and the prior is scored on the rows the model is scored on (the holdout; in the
walk-forward, each fold's own training shares on its test block), so the baseline sees no
more of the future than the model does. Promotion (:mod:`models.promotion`) requires the
model's log loss below the prior's on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.dataset import LABELS
from models.evaluation import log_loss

SHARE_METRICS = tuple(f"train_share_{label}" for label in LABELS)  # the registry's names of the training shares


def class_frequencies(labels: np.ndarray) -> np.ndarray:
    """Return the share of each class among ``labels`` (class order ``LABELS``; zeros for no rows)."""
    counts = np.bincount(labels, minlength=len(LABELS)).astype(np.float64)
    total = counts.sum()
    return counts / total if total else counts


def prior_probabilities(frequencies: Sequence[float] | np.ndarray, rows: int) -> np.ndarray:
    """Return the prior's probabilities: ``frequencies`` on each of ``rows`` rows (rows x 3)."""
    return np.tile(np.asarray(frequencies, dtype=np.float64), (rows, 1))


def prior_log_loss(labels: np.ndarray, frequencies: Sequence[float] | np.ndarray) -> float:
    """Return the log loss of predicting ``frequencies`` for every row of ``labels``."""
    return log_loss(labels, prior_probabilities(frequencies, len(labels)))


def share_figures(frequencies: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Return the training shares as the registry records them (``train_share_down`` ...)."""
    return {name: float(share) for name, share in zip(SHARE_METRICS, frequencies, strict=True)}


@dataclass(frozen=True)
class PriorBaseline:
    """What a candidate's "no edge" gate compares: its training shares, and its walk-forward beside the prior's.

    The holdout is scored at promotion (the prior from ``shares``); the walk-forward's out-of-sample
    log losses, the model's and the prior's, were recorded at training (``wf_log_loss``,
    ``wf_prior_log_loss``): three times as many rows as the holdout, so chance is less likely to
    carry a model with no edge past both.
    """

    shares: tuple[float, ...]
    walk_forward_log_loss: float | None = None
    walk_forward_prior_log_loss: float | None = None


def prior_baseline(metrics: dict[str, float]) -> PriorBaseline | None:
    """Return the prior baseline recorded in a registry entry's metrics, or None when it records no shares."""
    if not all(name in metrics for name in SHARE_METRICS):
        return None
    return PriorBaseline(
        tuple(float(metrics[name]) for name in SHARE_METRICS),
        metrics.get("wf_log_loss"),
        metrics.get("wf_prior_log_loss"),
    )


def describe_shares(frequencies: Sequence[float] | np.ndarray) -> str:
    """Return the shares as a reader sees them: ``down 44.0% / flat 5.0% / up 51.0%``."""
    return " / ".join(f"{label} {100.0 * share:.1f}%" for label, share in zip(LABELS, frequencies, strict=True))
