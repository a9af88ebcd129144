"""The review of a promotion: a candidate's holdout, both models' served probabilities, the live shadow figures.

What :func:`models.promotion.judge_promotion` and :func:`models.shadow.judge_shadow` judge is
read here: the candidate's holdout rebuilt from the warehouse, the candidate's and the
champion's probabilities through the served ONNX models, the engine backtest of the holdout
against the baselines beside the walk-forward folds' recorded at training
(:mod:`models.fold_judgement`), and the two models' live predictions.
"""

from __future__ import annotations

import numpy as np

from models.dataset import Dataset, LabelSpec, build_dataset, query_bars, query_features
from models.fold_figures import HOLDOUT, FoldJudgement, recorded_folds
from models.fold_judgement import judge_window
from models.prior import prior_baseline
from models.promotion import PromotionDecision, judge_promotion
from models.registry_rows import RegistryEntry
from models.registry_table import RegistryTable
from models.serving import ServingModel
from models.shadow import NO_SHADOW, compare_live, judge_shadow
from tickwave.config import Settings
from tickwave.errors import ConfigurationError
from tickwave.modeling import CHALLENGER, SignalRules


class PromotionReview:
    """Reads what a promotion is judged on and applies the rules; writes nothing."""

    def __init__(self, table: RegistryTable, settings: Settings) -> None:
        """Read through ``table``; judge with the ``models`` and ``streams`` settings."""
        self.table = table
        self.settings = settings

    def holdout_for(self, entry: RegistryEntry) -> Dataset:
        """Rebuild the candidate's holdout from the warehouse (its symbols, timeframe, range and labels).

        Raises:
            NotEnoughDataError: when the warehouse no longer holds rows in that range.
        """
        params = entry.params
        try:
            symbols = params["symbols"].split(",")
            range_ms = (int(params["holdout_from_ms"]), int(params["holdout_to_ms"]))
            label_spec = LabelSpec(int(params["horizon_bars"]), float(params["dead_zone_bps"]))
            timeframe = params["timeframe"]
        except (KeyError, ValueError) as exc:
            raise ConfigurationError(f"{entry.name} lacks the holdout description in its params: {exc}") from exc
        names = self.table.artifact(entry).feature_names
        features = query_features(self.table.client, symbols, timeframe, range_ms, names)
        bars = query_bars(self.table.client, symbols, timeframe, range_ms)
        return build_dataset(
            features,
            bars,
            names,
            entry.feature_schema_hash,
            label_spec,
            timeframe,
            range_ms,
            min_rows=1,
            require_classes=False,
        )

    def evaluate(self, candidate: RegistryEntry, holdout: Dataset) -> PromotionDecision:
        """Judge ``candidate`` against its slot's champion on ``holdout``, through the served ONNX models."""
        table = self.table
        champion = table.champion(candidate.slot, candidate.timeframe)
        features = holdout.features
        candidate_probabilities = ServingModel(table.artifact(candidate), holdout.schema_hash).predict_batch(features)
        champion_probabilities = None
        notes: list[str] = []
        if champion is None:
            notes.append("no champion yet: judged by the sanity checks alone")
        elif champion.name == candidate.name:
            notes.append("the candidate is the champion")
        elif champion.feature_schema_hash != holdout.schema_hash:
            notes.append(
                f"champion {champion.name} uses feature schema {champion.feature_schema_hash}, the candidate "
                f"{holdout.schema_hash}: not comparable on the same features, judged by the sanity checks alone"
            )
        else:
            champion_model = ServingModel(table.artifact(champion), holdout.schema_hash)
            champion_probabilities = champion_model.predict_batch(features)
            notes.append(f"compared with champion {champion.name} on {len(holdout)} holdout rows")
            if champion.trained_to_ms > int(holdout.times_ms.min()):
                notes.append(f"champion {champion.name} was trained on data overlapping the holdout (favours it)")
        models, streams = self.settings.models, self.settings.streams
        prior = prior_baseline(candidate.metrics)
        if prior is None:
            notes.append(
                f"{candidate.name} records no training class shares: not judged against the class-frequency prior"
            )
        trading = None
        folds: list[FoldJudgement] = []
        if models.baselines:
            # Through the live execution engine (sizing, gate, paper costs); the vectorised P&L rides along.
            window = judge_window(
                HOLDOUT,
                holdout.frame,
                candidate_probabilities.astype(np.float64),
                SignalRules(streams.entry_probability, streams.min_edge),
                self.settings,
                holdout.timeframe,
                models.baselines,
                candidate.model_id,
                candidate.model_version,
            )
            trading = window.comparison
            notes.extend(trading.notes)
            folds = [*recorded_folds(candidate.metrics, models.baselines), window.fold]
            if len(folds) == 1:
                notes.append(
                    f"{candidate.name} records no walk-forward fold on the engine (fold_<n>_*): its P&L "
                    "is judged on the holdout alone"
                )
        else:
            notes.append("no baselines configured (models.baselines): not judged on P&L")
        return judge_promotion(
            holdout.labels,
            candidate_probabilities.astype(np.float64),
            None if champion_probabilities is None else champion_probabilities.astype(np.float64),
            models.promotion_margin,
            models.calibration_bound,
            notes,
            trading,
            models.min_trades,
            prior,
            models.prior_margin,
            folds,
            models.promotion_min_fold_share,
        )

    def judged_in_shadow(self, candidate: RegistryEntry, decision: PromotionDecision) -> PromotionDecision:
        """Return ``decision`` with the live shadow comparison with the champion, when there is one to compare with.

        Its figures are always recorded; with ``models.shadow_min_days`` > 0 its criteria must pass too.
        """
        min_days = self.settings.models.shadow_min_days
        table = self.table
        champion = table.champion(candidate.slot, candidate.timeframe)
        notes = list(decision.notes)
        if champion is None or champion.name == candidate.name:
            comparison = NO_SHADOW
            if min_days > 0:
                notes.append("no champion to compare with on live data: models.shadow_min_days does not apply")
                min_days = 0
        else:
            comparison = compare_live(
                table.client,
                (candidate.model_id, candidate.model_version),
                (champion.model_id, champion.model_version),
                candidate.timeframe,
                candidate.params.get("symbols", "").split(","),
                candidate.label_spec,
                table.clock.now_ms(),
            )
            if comparison.rows or candidate.stage == CHALLENGER or min_days > 0:
                notes.append(
                    f"live shadow comparison with champion {champion.name}: {comparison.rows} shared "
                    f"labelled predictions over {comparison.days:.2f} days (models.shadow_min_days "
                    f"{min_days:g})"
                )
        failures, figures = judge_shadow(comparison, min_days)
        return PromotionDecision(
            decision.is_promoted and not failures, decision.failures + failures, notes, {**decision.figures, **figures}
        )
