"""The model lifecycle, owned by one base class; a concrete model only implements ``fit`` and ``to_onnx``.

``DirectionModel.train`` runs the whole evaluation on a point-in-time dataset:

1. split off the most recent ``holdout_fraction`` (purged and embargoed);
2. walk forward over the rest: for each test block, ``fit`` on the rows before it
   (purge + embargo, expanding or rolling) and predict the block; score every fold and
   all out-of-sample predictions together (classification metrics and a backtest);
3. ``fit`` the final model on the whole development part and score it on the holdout.

``DirectionModel.save`` exports the final model to ONNX (the model's own ``to_onnx``
graph, with Tickwave's metadata embedded), checks its parity with the trained model on
the holdout (else nothing is stored), writes the metadata JSON beside the artifact in
the content-addressed store, and the HTML report beside both.

The model that is saved is the one scored on the holdout: it is never refitted on the
holdout afterwards, so the reported figures are the served model's.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic

import numpy as np

from models.dataset import LABELS, Dataset, require_all_classes
from models.errors import NotEnoughDataError
from models.evaluation import (
    TRADING_DAYS_PER_YEAR,
    BacktestSettings,
    backtest,
    classification_metrics,
    signal_positions,
    timeframe_seconds,
)
from models.export import embed_metadata, library_versions, parity_check
from models.folds import holdout_split, walk_forward
from models.prior import class_frequencies, prior_probabilities
from models.report import write_report as write
from models.results import Classifier, ClassifierT, Evaluation, FoldResult, SavedModel, TrainingResult
from models.store import ArtifactStore
from tickwave.clock import Clock, SystemClock
from tickwave.config import ModelsSettings
from tickwave.errors import DataQualityError
from tickwave.modeling import ModelArtifact, SignalRules

if TYPE_CHECKING:
    from onnx import ModelProto

__all__ = ["Classifier", "DirectionModel", "Evaluation", "FoldResult", "SavedModel", "TrainingResult"]

logger = logging.getLogger(__name__)


class DirectionModel(ABC, Generic[ClassifierT]):
    """Trains, evaluates, exports and saves a down/flat/up classifier; subclasses implement ``fit`` and ``to_onnx``."""

    framework: ClassVar[str] = "unknown"

    def __init__(
        self,
        settings: ModelsSettings,
        rules: SignalRules,
        backtest: BacktestSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Configure from the ``models`` settings, the streams' signal thresholds and the backtest's sizes.

        ``clock`` dates the saved metadata (default: the system clock).
        """
        self.settings = settings
        self.rules = rules
        self.clock = clock or SystemClock()
        self.backtest_settings = backtest or BacktestSettings(
            lots=settings.backtest_lots,
            bars_per_year=TRADING_DAYS_PER_YEAR * 86_400 / timeframe_seconds(settings.timeframe),
        )

    @abstractmethod
    def fit(self, features: np.ndarray, labels: np.ndarray) -> ClassifierT:
        """Return a classifier trained on ``features`` (float32, rows x features) and class indices."""

    @abstractmethod
    def to_onnx(self, model: ClassifierT, width: int) -> ModelProto:
        """Return the ONNX graph of ``model``, computing what ``model.predict_proba`` does.

        Input ``features`` (float32, rows x ``width``); outputs ``label`` and
        ``probabilities`` (rows x 3, order ``LABELS``). The same trained model must give
        the same graph, so the same bytes and SHA-256.
        """

    def onnx_metadata(self, model: ClassifierT) -> dict[str, str]:
        """Return what else the export embeds as ``tickwave.*`` metadata about ``model`` (default: nothing)."""
        return {}

    def export_onnx(
        self,
        model: ClassifierT,
        feature_names: Sequence[str],
        schema_hash: str,
        about: Mapping[str, str] | None = None,
    ) -> bytes:
        """Return the ONNX bytes of ``model`` with Tickwave's metadata embedded (:func:`models.export.embed_metadata`).

        ``about`` adds ``tickwave.*`` metadata (the timeframe and label the model was
        trained for), so a consumer can check more than the feature schema.
        """
        return embed_metadata(
            self.to_onnx(model, len(feature_names)),
            feature_names,
            schema_hash,
            LABELS,
            {**(about or {}), **self.onnx_metadata(model)},
        )

    def params(self) -> dict[str, str]:
        """Return the hyper-parameters to record in the registry (default: the ``models`` settings)."""
        return {key: str(value) for key, value in self.settings.model_dump().items()}

    def predict(self, model: Classifier, features: np.ndarray) -> np.ndarray:
        """Return the probabilities of ``model`` (rows x 3), checked for shape and finiteness.

        Raises:
            DataQualityError: when the model's output is malformed or not finite.
        """
        if not len(features):
            return np.empty((0, len(LABELS)))
        probabilities = np.asarray(model.predict_proba(features), dtype=np.float64)
        if probabilities.shape != (len(features), len(LABELS)):
            raise DataQualityError(f"model output shape {probabilities.shape}, expected ({len(features)}, 3)")
        if not np.isfinite(probabilities).all():
            raise DataQualityError("the model predicts NaN or infinite probabilities")
        return probabilities

    def feature_importance(self, model: Classifier, names: tuple[str, ...]) -> dict[str, float]:
        """Return the importance of each feature (empty when the model has none)."""
        importances = getattr(model, "feature_importances_", None)
        if importances is None:
            return {}
        return {name: float(value) for name, value in zip(names, importances, strict=True)}

    def evaluate(self, dataset: Dataset, probabilities: np.ndarray) -> Evaluation:
        """Score probabilities on ``dataset``: classification metrics and the backtest of their signals."""
        metrics = classification_metrics(dataset.labels, probabilities, self.rules)
        trading = backtest(dataset.frame, signal_positions(probabilities, self.rules), self.backtest_settings)
        return Evaluation(metrics, trading)

    def _fit_checked(self, dataset: Dataset, rows: np.ndarray, what: str) -> ClassifierT:
        require_all_classes(dataset.labels[rows], what)
        return self.fit(dataset.features[rows], dataset.labels[rows])

    def train(self, dataset: Dataset) -> TrainingResult[ClassifierT]:
        """Walk forward over the development part, then fit the final model and score it on the holdout.

        Raises:
            NotEnoughDataError: when no fold fits before the holdout, or a training set
                lacks a class.
        """
        started = time.perf_counter()
        settings = self.settings
        development_rows, holdout_rows = holdout_split(
            dataset.times_ms,
            dataset.label_end_ms,
            settings.holdout_fraction,
            settings.horizon_bars,
            settings.embargo_bars,
        )
        development, holdout = dataset.take(development_rows), dataset.take(holdout_rows)
        folds = walk_forward(
            development.times_ms,
            development.label_end_ms,
            settings.folds,
            settings.horizon_bars,
            settings.embargo_bars,
            settings.fold_scheme,
            settings.rolling_window_bars,
        )
        if not folds or not len(holdout):
            raise NotEnoughDataError(
                f"{len(dataset)} rows leave no walk-forward fold or holdout after the purge gap "
                f"({settings.horizon_bars} bars) and embargo ({settings.embargo_bars} bars): widen the range"
            )
        results: list[FoldResult] = []
        tested: list[np.ndarray] = []
        tested_probabilities: list[np.ndarray] = []
        tested_priors: list[np.ndarray] = []  # the class-frequency prior of each fold: its training labels' shares
        for fold in folds:
            model = self._fit_checked(development, fold.train, f"the training rows of fold {fold.index}")
            probabilities = self.predict(model, development.features[fold.test])
            evaluation = self.evaluate(development.take(fold.test), probabilities)
            results.append(
                FoldResult(
                    fold.index, len(fold.train), len(fold.test), fold.test_start_ms, fold.test_end_ms, evaluation
                )
            )
            tested.append(fold.test)
            tested_probabilities.append(probabilities)
            tested_priors.append(prior_probabilities(class_frequencies(development.labels[fold.train]), len(fold.test)))
            logger.info(
                "fold %d: train %d rows, test %d rows, log loss %.4f",
                fold.index,
                len(fold.train),
                len(fold.test),
                evaluation.metrics.log_loss,
            )
        out_of_sample = development.take(np.concatenate(tested))
        out_of_sample_probabilities = np.concatenate(tested_probabilities)
        walk_forward_evaluation = self.evaluate(out_of_sample, out_of_sample_probabilities)
        final = self._fit_checked(development, np.arange(len(development)), "the development rows")
        holdout_probabilities = self.predict(final, holdout.features)
        holdout_evaluation = self.evaluate(holdout, holdout_probabilities)
        logger.info("holdout: %d rows, log loss %.4f", len(holdout), holdout_evaluation.metrics.log_loss)
        return TrainingResult(
            model=final,
            dataset=dataset,
            holdout=holdout,
            holdout_probabilities=holdout_probabilities,
            holdout_evaluation=holdout_evaluation,
            folds=results,
            walk_forward=walk_forward_evaluation,
            feature_importance=self.feature_importance(final, dataset.feature_names),
            params=self.params(),
            training_seconds=time.perf_counter() - started,
            development_rows=len(development),
            walk_forward_dataset=out_of_sample,
            walk_forward_probabilities=out_of_sample_probabilities,
            class_frequencies=class_frequencies(development.labels),
            walk_forward_prior=np.concatenate(tested_priors),
        )

    def save(
        self, result: TrainingResult[ClassifierT], store: ArtifactStore, model_id: str, write_report: bool = True
    ) -> SavedModel:
        """Export to ONNX, check parity on the holdout, store the artifact with its metadata and report.

        Raises:
            ParityError: the export differs from the trained model; nothing is stored.
        """
        dataset = result.dataset
        about = {
            "model_id": model_id,
            "timeframe": dataset.timeframe,
            "label": dataset.label_spec.describe(),
            "symbols": json.dumps(list(dataset.symbols)),
        }
        onnx_bytes = self.export_onnx(result.model, dataset.feature_names, dataset.schema_hash, about)
        probe = ModelArtifact(
            model_id,
            0,
            onnx_bytes,
            dataset.feature_names,
            dataset.schema_hash,
            LABELS,
            dataset.timeframe,
            dataset.symbols,
        )
        difference = parity_check(
            result.holdout_probabilities, probe, result.holdout.features, self.settings.parity_tolerance
        )
        metadata = self.metadata(result, model_id, difference)
        digest = store.put(onnx_bytes, metadata)
        saved = SavedModel(
            model_id,
            self.framework,
            digest,
            onnx_bytes,
            {**metadata, "artifact_sha256": digest},
            store.relative_uri(digest),
        )
        if write_report:
            write(store.report_dir(digest), result, saved)
        logger.info("model=%s artifact %s stored (parity max |diff| %.2g)", model_id, digest[:12], difference)
        return saved

    def metadata(self, result: TrainingResult[ClassifierT], model_id: str, parity_difference: float) -> dict[str, Any]:
        """Return the metadata written beside the artifact."""
        dataset, holdout = result.dataset, result.holdout
        return {
            "model_id": model_id,
            "framework": self.framework,
            "created_at": datetime.fromtimestamp(self.clock.now_ms() / 1000, tz=UTC).isoformat(timespec="milliseconds"),
            "feature_names": list(dataset.feature_names),
            "schema_hash": dataset.schema_hash,
            "labels": list(LABELS),
            "label_definition": dataset.label_spec.describe(),
            "horizon_bars": dataset.label_spec.horizon_bars,
            "dead_zone_bps": dataset.label_spec.dead_zone_bps,
            "timeframe": dataset.timeframe,
            "symbols": list(dataset.symbols),
            "data_range_ms": [dataset.from_ms, dataset.to_ms],
            "rows": len(dataset),
            "development_rows": result.development_rows,
            "holdout_range_ms": [int(holdout.times_ms.min()), dataset.to_ms],
            "holdout_rows": len(holdout),
            "fold_scheme": self.settings.fold_scheme,
            "folds": [_fold_summary(fold) for fold in result.folds],
            "signal_rules": {"entry_probability": self.rules.entry_probability, "min_edge": self.rules.min_edge},
            "params": result.params,
            "metrics": result.metrics(),
            "feature_importance": result.feature_importance,
            "parity_max_abs_diff": parity_difference,
            "library_versions": library_versions(),
        }


def _fold_summary(fold: FoldResult) -> dict[str, Any]:
    # One fold's ranges and figures, for the metadata JSON.
    return {
        "index": fold.index,
        "train_rows": fold.train_rows,
        "test_rows": fold.test_rows,
        "test_range_ms": [fold.test_start_ms, fold.test_end_ms],
        **fold.evaluation.as_dict(""),
    }
