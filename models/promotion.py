"""The promotion and rollback rules, as pure functions of what the registry read (no warehouse).

- :func:`judge_promotion`: may a candidate replace the champion, judged on its holdout
  (sanity, calibration, log loss below the class-frequency prior's, log-loss margin over the
  champion) and walk-forward (P&L against the baselines on the engine in each fold)?
- :func:`fold_share_failures`: does the candidate beat every baseline in enough folds?
- :func:`contract_mismatches`: can a challenger be scored beside a champion at all?
- :func:`rollback_target`: which earlier champion does a rollback restore?
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np

from models.evaluation import BaselineComparison, log_loss, reliability
from models.fold_figures import HOLDOUT, FoldJudgement, StrategyFigures
from models.prior import PriorBaseline, describe_shares, prior_log_loss
from models.registry_rows import RegistryEntry, RegistryEvent

CONSTANT_STD = 1e-6  # below this spread across rows, a class probability counts as constant


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a candidate may replace the champion, why, and the figures compared."""

    is_promoted: bool
    failures: list[str]
    notes: list[str]
    figures: dict[str, float]


def judge_promotion(
    labels: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray | None,
    margin: float,
    calibration_bound: float,
    notes: Sequence[str] = (),
    trading: BaselineComparison | None = None,
    min_trades: int = 0,
    prior: PriorBaseline | None = None,
    prior_margin: float = 0.0,
    folds: Sequence[FoldJudgement] = (),
    min_fold_share: float = 1.0,
) -> PromotionDecision:
    """Apply the promotion rules to probabilities on one holdout (rows x 3, class order ``LABELS``).

    Args:
        labels: the holdout's class indices.
        candidate: the candidate's probabilities.
        champion: the champion's probabilities on the same rows, or None (no comparable champion).
        margin: relative log-loss improvement required over the champion.
        calibration_bound: largest expected calibration error allowed for any class.
        notes: context to keep with the decision.
        trading: the candidate's holdout P&L after costs beside the baselines' (None: not judged on P&L).
        min_trades: fewest holdout trades the candidate must make for its P&L to count.
        prior: the class shares of the candidate's training labels (class order ``LABELS``), which the "no
            edge" baseline predicts for every row, and the walk-forward log losses of the candidate and of
            that prior: the candidate's must be below the prior's on the holdout and in the walk-forward
            (None: not judged against the prior).
        prior_margin: relative log-loss improvement required over the prior (0: strictly below it).
        folds: the candidate and the baselines on the engine in each judged window (the walk-forward folds'
            test blocks and the holdout); empty: the holdout of ``trading`` is the one window.
        min_fold_share: share of the windows in which the candidate must beat every baseline
            (:func:`fold_share_failures`).
    """
    failures: list[str] = []
    figures: dict[str, float] = {"holdout_rows": float(len(labels))}
    if not len(labels):
        return PromotionDecision(False, ["the holdout has no rows"], list(notes), figures)
    if not np.isfinite(candidate).all():
        return PromotionDecision(False, ["the candidate outputs NaN or infinite probabilities"], list(notes), figures)
    spread = float(np.max(np.std(candidate, axis=0)))
    calibration = max(reliability(labels, candidate, index).error for index in range(candidate.shape[1]))
    candidate_loss = log_loss(labels, candidate)
    figures.update(
        candidate_log_loss=candidate_loss, candidate_calibration_error=calibration, candidate_probability_std=spread
    )
    if spread < CONSTANT_STD:
        failures.append(f"the candidate's output is constant (largest std across rows {spread:.2g})")
    if calibration > calibration_bound:
        failures.append(f"calibration error {calibration:.3f} exceeds the bound {calibration_bound:g}")
    if prior is not None:
        failures.extend(_prior_failures(labels, candidate_loss, prior, prior_margin, figures))
    if trading is not None and not trading.is_judgement:
        # Zeros against zeros (every signal denied, say) compare nothing: no verdict on P&L, so no promotion.
        figures.update(is_pnl_judged=0.0)
        failures.append(
            "no judgement on P&L: the candidate and every baseline placed no order in the engine "
            "backtest of the holdout (the denials are in the notes)"
        )
    elif trading is not None:
        figures.update(trading.figures(), min_trades=float(min_trades), is_pnl_judged=1.0)
        if trading.candidate_trades < min_trades:
            failures.append(f"{trading.candidate_trades} holdout trades, fewer than models.min_trades ({min_trades})")
        fold_failures, fold_figures = fold_share_failures(
            list(folds) or [_holdout_fold(trading, len(labels))], min_fold_share
        )
        failures.extend(fold_failures)
        figures.update(fold_figures)
        for fold in folds:  # the per-fold table (a holdout without engine folds has none)
            figures.update(fold.figures())
    if champion is not None:
        champion_loss = log_loss(labels, champion)
        required = champion_loss * (1.0 - margin)
        figures.update(champion_log_loss=champion_loss, required_log_loss=required)
        if not candidate_loss <= required:
            failures.append(
                f"holdout log loss {candidate_loss:.5f} does not beat the champion's {champion_loss:.5f} "
                f"by the margin {margin:g} (needs <= {required:.5f})"
            )
    return PromotionDecision(not failures, failures, list(notes), figures)


def fold_share_failures(folds: Sequence[FoldJudgement], min_share: float) -> tuple[list[str], dict[str, float]]:
    """Return why the candidate does not beat the baselines in enough folds (empty: it does), and the figures.

    A fold is won when the candidate's P&L after costs on the engine is strictly above every
    baseline's (a tie is a loss: a candidate that trades no better than a simple strategy adds
    nothing). At least ``min_share`` of the folds must be won; the reason names each fold lost,
    with the P&L it lost by.
    """
    won = [fold for fold in folds if not fold.lost_to()]
    share = Fraction(len(won), len(folds)) if folds else Fraction(0)
    required = Fraction(str(min_share))
    figures = {
        "folds_judged": float(len(folds)),
        "folds_won": float(len(won)),
        "fold_won_share": float(share),
        "min_fold_share": min_share,
    }
    if folds and share >= required:
        return [], figures
    lost = "; ".join(
        f"{fold.label} (candidate {fold.candidate.pnl_account:.2f} vs "
        + ", ".join(f"{name} {fold.baselines[name].pnl_account:.2f}" for name in fold.lost_to())
        + ")"
        for fold in folds
        if fold.lost_to()
    )
    return [
        f"P&L after costs on the engine beats every baseline in {len(won)} of {len(folds)} folds ({float(share):.0%}), "
        f"fewer than models.promotion_min_fold_share {min_share:g} requires; lost: {lost or 'no fold judged'}"
    ], figures


def _holdout_fold(trading: BaselineComparison, rows: int) -> FoldJudgement:
    # The holdout comparison alone as the one window (no per-fold engine figures: the vectorised comparison).
    def strategy(pnl: float, trades: int = 0) -> StrategyFigures:
        return StrategyFigures(Decimal(repr(pnl)), trades, 0, None, Decimal(0))

    return FoldJudgement(
        HOLDOUT,
        rows,
        strategy(trading.candidate_pnl_account, trading.candidate_trades),
        {name: strategy(pnl) for name, pnl in trading.baseline_pnl_account.items()},
    )


def _prior_failures(
    labels: np.ndarray, candidate_loss: float, prior: PriorBaseline, margin: float, figures: dict[str, float]
) -> list[str]:
    # The "no edge" gate: below the log loss of predicting the training labels' shares, on the holdout
    # (scored here) and in the walk-forward (recorded at training: more rows, so less room for chance).
    failures = []
    prior_loss = prior_log_loss(labels, prior.shares)
    required = prior_loss * (1.0 - margin)
    figures.update(prior_log_loss=prior_loss, prior_required_log_loss=required, prior_margin=margin)
    if not candidate_loss < required:
        failures.append(
            f"holdout log loss {candidate_loss:.5f} is not below the class-frequency prior's {prior_loss:.5f} "
            f"(predicting the training labels' shares, {describe_shares(prior.shares)}, for every row; "
            f"models.prior_margin {margin:g}, needs < {required:.5f}): no edge over the label frequencies"
        )
    if prior.walk_forward_log_loss is not None and prior.walk_forward_prior_log_loss is not None:
        model, baseline = prior.walk_forward_log_loss, prior.walk_forward_prior_log_loss
        figures.update(wf_log_loss=model, wf_prior_log_loss=baseline)
        if not model < baseline * (1.0 - margin):
            failures.append(
                f"walk-forward log loss {model:.5f} is not below the class-frequency prior's {baseline:.5f} "
                f"(each fold's training shares on its test rows; models.prior_margin {margin:g}, needs < "
                f"{baseline * (1.0 - margin):.5f}): no edge over the label frequencies out of sample"
            )
    return failures


def rollback_target(events: Iterable[RegistryEvent], current: tuple[str, int]) -> tuple[str, int] | None:
    """Return the ``(model_id, version)`` to restore: the latest earlier champion not rolled back since its promotion.

    ``events``: the audit trail of every version of the slot, whatever its model id.
    """
    last_action: dict[tuple[str, int], str] = {}
    promoted_order: list[tuple[str, int]] = []
    for event in sorted(events, key=lambda event: event.occurred_at_ms):
        key = (event.model_id, event.model_version)
        if event.action in ("promoted", "rolled_back"):
            last_action[key] = event.action
        if event.action == "promoted":
            promoted_order.append(key)
    for key in reversed(promoted_order):
        if key != current and last_action.get(key) == "promoted":
            return key
    return None


def contract_mismatches(challenger: RegistryEntry, champion: RegistryEntry) -> list[str]:
    """Return why ``challenger`` cannot be scored beside ``champion`` and compared with it (empty: it can).

    Both must score the same vectors (timeframe and feature schema: the flow serves one
    feature set) and be judged against the same labels (horizon and dead zone), on at
    least one symbol in common. The framework and the model id may differ.
    """
    mismatches = []
    if challenger.timeframe != champion.timeframe:
        mismatches.append(f"timeframe {challenger.timeframe} != the champion's {champion.timeframe}")
    if challenger.feature_schema_hash != champion.feature_schema_hash:
        mismatches.append(
            f"feature schema {challenger.feature_schema_hash} != the champion's {champion.feature_schema_hash}"
        )
    if challenger.label_spec != champion.label_spec:
        mismatches.append(
            f"labels {challenger.label_spec.describe()} != the champion's {champion.label_spec.describe()}"
        )
    mine = set(challenger.params.get("symbols", "").split(",")) - {""}
    theirs = set(champion.params.get("symbols", "").split(",")) - {""}
    if not mine & theirs:
        mismatches.append(f"no symbol in common with the champion's ({','.join(sorted(theirs))})")
    return mismatches
