"""The training run, end to end: warehouse -> dataset -> leakage check -> train -> export -> register -> promote.

This is the imperative shell the CLI (``tickwave train``) and the orchestration call;
each step is a tested function of its own. Every check runs before anything is written:
too few rows, a single class, NaN or infinite features, a feature schema mismatch,
leaky features or an export that differs from the trained model stop the run with a
clear error and register nothing. A refused promotion does not fail the run: the new
version stays a candidate and the outcome says why. With ``models.mlflow_tracking_uri`` set,
the registry mirrors the run to MLflow (:mod:`models.tracking`); MLflow being down is a
warning in the log and in ``TrainOutcome.tracking``, never a failed run.

The walk-forward folds are replayed through the execution engine here, after training
(:func:`models.fold_judgement.judge_walk_forward`): only this run holds the fold models,
so their figures are recorded with the version, and every promotion judges them beside
the holdout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from models.base import DirectionModel, SavedModel, TrainingResult
from models.dataset import LabelSpec, build_dataset, query_bars, query_features
from models.ensemble import EnsembleDirectionModel
from models.errors import PromotionRefused
from models.evaluation import BacktestSettings
from models.fold_figures import folds_table
from models.fold_judgement import judge_walk_forward
from models.leakage import LeakageReport, check_point_in_time
from models.lgbm import LightGBMDirectionModel
from models.promotion import PromotionDecision
from models.registry import ModelRegistry
from models.registry_rows import RegistryEntry
from models.tracking import MirrorStatus
from models.xgb import XGBoostDirectionModel
from streams.features import FeatureSpec
from tickwave.clock import Clock, SystemClock
from tickwave.config import Settings
from tickwave.errors import ConfigurationError
from tickwave.modeling import SignalRules

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

logger = logging.getLogger(__name__)

TRAINERS: dict[str, type[DirectionModel[Any]]] = {
    model.framework: model for model in (XGBoostDirectionModel, LightGBMDirectionModel, EnsembleDirectionModel)
}


def trainer_for(framework: str, settings: Settings, clock: Clock | None = None) -> DirectionModel[Any]:
    """Return the ``DirectionModel`` of ``framework`` (``xgboost``, ``lightgbm`` or ``ensemble``) for ``settings``.

    ``clock`` dates what it saves (default: the system clock).

    Raises:
        ConfigurationError: for an unknown framework.
    """
    if framework not in TRAINERS:
        raise ConfigurationError(f"unknown model {framework!r}: one of {', '.join(TRAINERS)}")
    rules = SignalRules(settings.streams.entry_probability, settings.streams.min_edge)
    return TRAINERS[framework](settings.models, rules, BacktestSettings.from_settings(settings), clock)


@dataclass(frozen=True)
class TrainOutcome:
    """What a training run produced."""

    entry: RegistryEntry
    saved: SavedModel
    result: TrainingResult[Any]
    leakage: LeakageReport
    decision: PromotionDecision | None  # None when promotion was not attempted
    tracking: MirrorStatus | None = None  # the MLflow mirror's runs or failure; None when tracking is off


def train_model(
    settings: Settings,
    symbols: Sequence[str],
    range_ms: tuple[int, int],
    actor: str,
    *,
    promote: bool = True,
    client: Client | None = None,
    spec: FeatureSpec | None = None,
    clock: Clock | None = None,
) -> TrainOutcome:
    """Train a ``models.framework`` model as ``models.registry_id`` on ``symbols`` in ``[from, to)``; register, promote.

    Args:
        settings: the configuration (``models`` section, streams' signal thresholds, state dir).
        symbols: the symbols whose rows make the dataset.
        range_ms: ``[from, to)`` in epoch milliseconds; nothing after ``to`` is read.
        actor: who or what trains (recorded in the registry).
        promote: try to make the new version champion (the promotion rules apply).
        client: a warehouse client (default: a new connection).
        spec: the feature set the streams ran (default: ``FeatureSpec()``).
        clock: dates the metadata and the registry's changes (default: the system clock).

    Raises:
        NotEnoughDataError, InvalidFeaturesError, SchemaMismatchError, LeakageError,
        ParityError: the run stops before anything is stored or registered.
    """
    models = settings.models
    spec = spec or FeatureSpec()
    clock = clock or SystemClock()
    registry = ModelRegistry(settings, client, clock)
    try:
        features = query_features(registry.client, symbols, models.timeframe, range_ms, spec.names)
        bars = query_bars(registry.client, symbols, models.timeframe, range_ms)
        dataset = build_dataset(
            features,
            bars,
            spec.model_names,
            spec.schema_hash,
            LabelSpec(models.horizon_bars, models.dead_zone_bps),
            models.timeframe,
            range_ms,
            models.min_rows,
        )
        stored = features[features["schema_hash"] == spec.schema_hash]
        leakage = check_point_in_time(bars, stored, spec, models.leakage_windows, models.leakage_tolerance)
        trainer = trainer_for(models.framework, settings, clock)
        result = trainer.train(dataset)
        saved = trainer.save(result, registry.store, models.registry_id)
        # The fold models exist only here: their test blocks go through the engine now, recorded with the version.
        started = time.perf_counter()
        folds = judge_walk_forward(result, settings, models.registry_id)
        if folds:
            runs = [note for fold in folds for note in fold.notes]  # orders, trades and denials of each run
            logger.info(
                "walk-forward folds on the engine in %.1f s:\n%s",
                time.perf_counter() - started,
                "\n".join(folds_table(folds) + runs),
            )
        entry = registry.register(
            saved, result, actor, {key: value for fold in folds for key, value in fold.figures().items()}
        )
        decision = None
        if promote:
            try:
                decision = registry.promote(entry.model_id, entry.model_version, actor, holdout=result.holdout)
            except PromotionRefused as refused:
                logger.warning("%s stays a candidate: %s", entry.name, "; ".join(refused.reasons))
                decision = PromotionDecision(False, refused.reasons, refused.notes, refused.figures)
            entry = registry.entry(entry.model_id, entry.model_version)
        return TrainOutcome(entry, saved, result, leakage, decision, registry.mirrored)
    finally:
        if client is None:
            registry.close()
