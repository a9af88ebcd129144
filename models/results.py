"""What the model lifecycle produces: scores, fold results, the trained result and the saved model.

Plain frozen records shared by the lifecycle (``models.base``), the models, the report and
the registry; they import nothing from those, so every one of them can import these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from models.dataset import LABELS, Dataset
from models.evaluation import ClassificationMetrics, TradingResult, log_loss
from models.prior import prior_log_loss, share_figures
from tickwave.modeling import ModelArtifact


class Classifier(Protocol):
    """What ``fit`` returns: anything that gives class probabilities (rows x 3, order ``LABELS``)."""

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Return class probabilities."""
        ...


ClassifierT = TypeVar("ClassifierT", bound=Classifier)


@dataclass(frozen=True)
class Evaluation:
    """Classification metrics and the backtest of one set of predictions."""

    metrics: ClassificationMetrics
    trading: TradingResult

    def as_dict(self, prefix: str) -> dict[str, float]:
        """Return every figure as ``{prefix + name: value}``."""
        return {**self.metrics.as_dict(prefix), **self.trading.as_dict(prefix)}


@dataclass(frozen=True)
class FoldResult:
    """One walk-forward step's ranges and scores."""

    index: int
    train_rows: int
    test_rows: int
    test_start_ms: int
    test_end_ms: int
    evaluation: Evaluation


@dataclass(frozen=True)
class TrainingResult(Generic[ClassifierT]):
    """Everything ``train`` produced: the final model, its holdout scores and the walk-forward scores."""

    model: ClassifierT
    dataset: Dataset
    holdout: Dataset
    holdout_probabilities: np.ndarray
    holdout_evaluation: Evaluation
    folds: list[FoldResult]
    walk_forward: Evaluation
    feature_importance: dict[str, float]
    params: dict[str, str]
    training_seconds: float
    development_rows: int
    # The out-of-sample rows of the walk-forward (fold after fold) and their probabilities: what an ensemble blends.
    walk_forward_dataset: Dataset | None = None
    walk_forward_probabilities: np.ndarray | None = None
    # The class shares of the final model's training labels (the development rows), and per walk-forward row the
    # shares of its fold's training labels: the class-frequency prior each is scored against (models.prior).
    class_frequencies: np.ndarray | None = None
    walk_forward_prior: np.ndarray | None = None

    def metrics(self) -> dict[str, float]:
        """Return the holdout figures (``holdout_*``), the walk-forward ones (``wf_*``) and the prior's beside them.

        The prior (``holdout_prior_log_loss``, ``wf_prior_log_loss``) predicts the training labels' class
        shares (``train_share_down`` ...) for every row: the log loss of a model with no edge.
        """
        figures = {
            **self.holdout_evaluation.as_dict("holdout_"),
            **self.walk_forward.as_dict("wf_"),
            "training_seconds": self.training_seconds,
        }
        if self.class_frequencies is not None:
            figures.update(share_figures(self.class_frequencies))
            figures["holdout_prior_log_loss"] = prior_log_loss(self.holdout.labels, self.class_frequencies)
        if self.walk_forward_prior is not None and self.walk_forward_dataset is not None:
            figures["wf_prior_log_loss"] = log_loss(self.walk_forward_dataset.labels, self.walk_forward_prior)
        return figures


@dataclass(frozen=True)
class SavedModel:
    """An exported, parity-checked model in the artifact store (not yet registered)."""

    model_id: str
    framework: str
    sha256: str
    onnx_bytes: bytes
    metadata: dict[str, Any] = field(repr=False)
    artifact_uri: str = ""

    def artifact(self, model_version: int) -> ModelArtifact:
        """Return the artifact the streams serve, under ``model_version``."""
        return ModelArtifact(
            self.model_id,
            model_version,
            self.onnx_bytes,
            tuple(self.metadata["feature_names"]),
            self.metadata["schema_hash"],
            LABELS,
            self.metadata["timeframe"],
            tuple(self.metadata["symbols"]),
        )
