"""The promotion rules, the rollback target and the allowed stage changes (pure, no warehouse)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest

from models.dataset import DOWN, FLAT, UP
from models.errors import RegistryError
from models.evaluation import BaselineComparison
from models.fold_figures import HOLDOUT, NO_POSITION, FoldJudgement, StrategyFigures, judged_folds
from models.prior import PriorBaseline
from models.promotion import contract_mismatches, fold_share_failures, judge_promotion, rollback_target
from models.registry_rows import CANDIDATE, CHAMPION, RETIRED, RegistryEntry, RegistryEvent

LABELS = np.array([UP, DOWN, FLAT, UP, DOWN, FLAT] * 50)


def honest(confidence: float) -> np.ndarray:
    """Probabilities that put ``confidence`` on the true label (the rest split evenly)."""
    probabilities = np.full((len(LABELS), 3), (1 - confidence) / 2)
    probabilities[np.arange(len(LABELS)), LABELS] = confidence
    return probabilities


def test_judge_when_no_champion_and_sane_then_promoted() -> None:
    decision = judge_promotion(LABELS, honest(0.5), None, margin=0.01, calibration_bound=0.6)

    assert decision.is_promoted and decision.failures == []
    assert decision.figures["candidate_log_loss"] == pytest.approx(-np.log(0.5))


def test_judge_when_candidate_beats_champion_by_the_margin_then_promoted() -> None:
    decision = judge_promotion(LABELS, honest(0.6), honest(0.5), margin=0.2, calibration_bound=0.6)

    # -ln 0.6 = 0.511 <= -ln 0.5 x (1 - 0.2) = 0.555
    assert decision.is_promoted
    assert decision.figures["required_log_loss"] == pytest.approx(-np.log(0.5) * 0.8)


def test_judge_when_candidate_better_but_not_by_the_margin_then_refused() -> None:
    decision = judge_promotion(LABELS, honest(0.55), honest(0.5), margin=0.2, calibration_bound=0.6)

    # -ln 0.55 = 0.598 > 0.555
    assert not decision.is_promoted
    assert len(decision.failures) == 1
    assert "does not beat the champion" in decision.failures[0]


def test_judge_when_candidate_worse_than_champion_then_refused() -> None:
    decision = judge_promotion(LABELS, honest(0.4), honest(0.6), margin=0.0, calibration_bound=0.6)

    assert not decision.is_promoted and "does not beat the champion" in decision.failures[0]


def test_judge_when_output_has_nan_then_refused() -> None:
    probabilities = honest(0.6)
    probabilities[3, 1] = np.nan

    decision = judge_promotion(LABELS, probabilities, None, margin=0.0, calibration_bound=1.0)

    assert not decision.is_promoted and decision.failures == ["the candidate outputs NaN or infinite probabilities"]


def test_judge_when_output_is_constant_then_refused() -> None:
    constant = np.tile([0.3, 0.4, 0.3], (len(LABELS), 1))

    decision = judge_promotion(LABELS, constant, None, margin=0.0, calibration_bound=1.0)

    assert not decision.is_promoted and "constant" in decision.failures[0]


def test_judge_when_overconfident_then_calibration_bound_refuses() -> None:
    # 90% on the true label for half the rows, 90% on a wrong one for the other half: ECE ~0.4.
    probabilities = honest(0.9)
    probabilities[::2] = probabilities[::2][:, [1, 2, 0]]

    decision = judge_promotion(LABELS, probabilities, None, margin=0.0, calibration_bound=0.1)

    assert not decision.is_promoted and "calibration error" in decision.failures[0]
    assert decision.figures["candidate_calibration_error"] > 0.1


def test_judge_when_holdout_empty_then_refused() -> None:
    decision = judge_promotion(np.array([], dtype=int), np.empty((0, 3)), None, margin=0.0, calibration_bound=1.0)

    assert not decision.is_promoted and decision.failures == ["the holdout has no rows"]


THIRDS = PriorBaseline((1 / 3, 1 / 3, 1 / 3))  # the training shares of LABELS' mix: the prior scores ln 3 on it


def test_judge_when_the_candidate_is_worse_than_the_class_frequency_prior_then_refused_naming_both_figures() -> None:
    decision = judge_promotion(LABELS, honest(0.3), None, margin=0.0, calibration_bound=1.0, prior=THIRDS)

    assert not decision.is_promoted and len(decision.failures) == 1
    reason = decision.failures[0]
    assert f"holdout log loss {-np.log(0.3):.5f} is not below the class-frequency prior's {np.log(3):.5f}" in reason
    assert "down 33.3% / flat 33.3% / up 33.3%" in reason and "no edge over the label frequencies" in reason
    assert decision.figures["prior_log_loss"] == pytest.approx(np.log(3))
    assert decision.figures["candidate_log_loss"] == pytest.approx(-np.log(0.3))


def test_judge_when_the_candidate_beats_the_prior_then_promoted_with_the_prior_recorded() -> None:
    decision = judge_promotion(LABELS, honest(0.36), None, margin=0.0, calibration_bound=1.0, prior=THIRDS)

    assert decision.is_promoted, decision.failures
    assert decision.figures["prior_log_loss"] == pytest.approx(np.log(3))
    assert decision.figures["prior_required_log_loss"] == pytest.approx(np.log(3))


def test_judge_when_the_candidate_beats_the_prior_but_not_by_the_margin_then_refused() -> None:
    # -ln 0.36 = 1.0217 < ln 3 = 1.0986, but a 10 % margin needs <= 0.98875.
    decision = judge_promotion(
        LABELS, honest(0.36), None, margin=0.0, calibration_bound=1.0, prior=THIRDS, prior_margin=0.1
    )

    assert not decision.is_promoted
    assert decision.figures["prior_required_log_loss"] == pytest.approx(0.9 * np.log(3))
    assert ["models.prior_margin 0.1, needs < 0.98875" in reason for reason in decision.failures] == [True]


def test_judge_when_the_prior_is_given_then_it_predicts_the_training_shares_not_the_holdouts() -> None:
    # The holdout is a third of each class; the training shares were 20 / 20 / 60 %.
    prior = PriorBaseline((0.2, 0.2, 0.6))

    decision = judge_promotion(LABELS, honest(0.4), None, margin=0.0, calibration_bound=1.0, prior=prior)

    by_hand = -(np.log(0.2) + np.log(0.2) + np.log(0.6)) / 3
    assert decision.figures["prior_log_loss"] == pytest.approx(by_hand)
    assert decision.is_promoted  # -ln 0.4 = 0.916 < 1.243


@pytest.mark.parametrize(
    ("walk_forward", "is_promoted"),
    [((0.95, 0.94), False), ((0.94, 0.94), False), ((0.93, 0.94), True), ((0.93, None), True)],
)
def test_judge_when_the_walk_forward_is_not_below_its_prior_then_refused_out_of_sample(
    walk_forward: tuple[float, float | None], is_promoted: bool
) -> None:
    prior = PriorBaseline((1 / 3, 1 / 3, 1 / 3), *walk_forward)

    decision = judge_promotion(LABELS, honest(0.4), None, margin=0.0, calibration_bound=1.0, prior=prior)

    assert decision.is_promoted is is_promoted, decision.failures
    if not is_promoted:
        assert decision.failures == [
            f"walk-forward log loss {walk_forward[0]:.5f} is not below the class-frequency prior's 0.94000 (each "
            "fold's training shares on its test rows; models.prior_margin 0, needs < 0.94000): no edge over the "
            "label frequencies out of sample"
        ]
        assert decision.figures["wf_prior_log_loss"] == 0.94


def test_judge_when_no_prior_is_known_then_not_judged_against_it() -> None:
    decision = judge_promotion(LABELS, honest(0.3), None, margin=0.0, calibration_bound=1.0)

    assert decision.is_promoted and "prior_log_loss" not in decision.figures


def event(version: int, action: str, at: int, model_id: str = "m") -> RegistryEvent:
    return RegistryEvent(model_id, version, action, "", "", "test", "", at)


PROMOTED_1_2 = [event(1, "promoted", 1), event(2, "promoted", 2)]
ROLLED_BACK_3 = [*PROMOTED_1_2, event(3, "promoted", 3), event(3, "rolled_back", 4), event(2, "restored", 4)]
REPROMOTED_2 = [*PROMOTED_1_2, event(2, "rolled_back", 3), event(2, "promoted", 5), event(4, "promoted", 6)]


@pytest.mark.parametrize(
    ("events", "current", "expected"),
    [
        (PROMOTED_1_2, 2, 1),
        ([event(1, "promoted", 1)], 1, None),  # the first champion: nothing earlier
        (ROLLED_BACK_3, 2, 1),  # v3 was rolled back to v2; rolling back v2 goes to v1, never forward to v3
        (REPROMOTED_2, 4, 2),  # v2 rolled back, then promoted again after a fix: it counts again
        ([event(1, "registered", 1), event(1, "promotion_refused", 2)], 5, None),
        # another model id's v1 (a challenger of m's slot) replaced m v1: rolling it back restores m v1, not itself
        ([event(1, "promoted", 1), event(1, "promoted", 2, "lgbm")], ("lgbm", 1), ("m", 1)),
    ],
)
def test_rollback_target_when_history_given_then_latest_earlier_champion_not_rolled_back(
    events: list[RegistryEvent], current: int | tuple[str, int], expected: int | tuple[str, int] | None
) -> None:
    def key(version: int | tuple[str, int]) -> tuple[str, int]:
        return version if isinstance(version, tuple) else ("m", version)

    assert rollback_target(events, key(current)) == (None if expected is None else key(expected))


ENTRY = RegistryEntry("m", 1, CANDIDATE, "xgboost", "models/a.onnx", "a" * 64, "h", {}, {}, 0, 1, 2, 2)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ((CANDIDATE, CHAMPION), True),
        ((CHAMPION, RETIRED), True),
        ((RETIRED, CHAMPION), True),
        ((CANDIDATE, RETIRED), False),
        ((CHAMPION, CANDIDATE), False),
        ((RETIRED, CANDIDATE), False),
        ((CHAMPION, CHAMPION), False),
    ],
)
def test_moved_to_when_stage_changes_then_only_the_table_allows_it(path: tuple[str, str], allowed: bool) -> None:
    start = RegistryEntry(**{**ENTRY.__dict__, "stage": path[0]})

    if allowed:
        moved = start.moved_to(path[1], "alice@host", "why", 10)
        assert (moved.stage, moved.stage_changed_by, moved.stage_reason, moved.updated_at_ms) == (
            path[1],
            "alice@host",
            "why",
            10,
        )
    else:
        with pytest.raises(RegistryError, match="not an allowed stage change"):
            start.moved_to(path[1], "alice@host", "why", 10)


def trading(candidate_pnl: float, trades: int, flat: float = 0.0, last_direction: float = -5.0) -> BaselineComparison:
    return BaselineComparison(candidate_pnl, trades, {"flat": flat, "last_direction": last_direction})


@pytest.mark.parametrize(
    ("comparison", "failure"),
    [
        (trading(12.5, 30), None),
        (trading(-3.0, 30), "lost: holdout (candidate -3.00 vs flat 0.00)"),
        (trading(0.0, 30), "lost: holdout (candidate 0.00 vs flat 0.00)"),  # equal is not better
        (trading(4.0, 30, last_direction=9.0), "lost: holdout (candidate 4.00 vs last_direction 9.00)"),
        (trading(12.5, 3), "3 holdout trades, fewer than models.min_trades (10)"),
    ],
)
def test_judge_when_baselines_given_then_pnl_after_costs_must_beat_each_with_enough_trades(
    comparison: BaselineComparison, failure: str | None
) -> None:
    decision = judge_promotion(LABELS, honest(0.5), None, 0.01, 0.6, trading=comparison, min_trades=10)

    assert decision.is_promoted == (failure is None)
    if failure is None:
        assert decision.failures == []
    else:
        assert [reason for reason in decision.failures if failure in reason], decision.failures
    assert decision.figures["candidate_pnl_account"] == comparison.candidate_pnl_account
    assert decision.figures["candidate_trades"] == comparison.candidate_trades
    assert decision.figures["baseline_flat_pnl_account"] == comparison.baseline_pnl_account["flat"]
    assert decision.figures["baseline_last_direction_pnl_account"] == comparison.baseline_pnl_account["last_direction"]
    assert decision.figures["min_trades"] == 10


def test_judge_when_the_candidate_and_every_baseline_placed_no_order_then_no_judgement_and_no_promotion() -> None:
    idle = BaselineComparison(
        0.0, 0, {"flat": 0.0, "last_direction": 0.0}, orders={"candidate": 0, "flat": 0, "last_direction": 0}
    )

    decision = judge_promotion(LABELS, honest(0.5), None, 0.01, 0.6, trading=idle, min_trades=0)

    assert not decision.is_promoted
    assert decision.failures == [
        "no judgement on P&L: the candidate and every baseline placed no order in the "
        "engine backtest of the holdout (the denials are in the notes)"
    ]
    assert decision.figures["is_pnl_judged"] == 0.0
    assert not {"candidate_pnl_account", "baseline_flat_pnl_account"} & set(decision.figures)  # no comparison


def test_judge_when_only_a_baseline_placed_orders_then_it_is_a_comparison() -> None:
    comparison = BaselineComparison(
        0.0, 0, {"flat": 0.0, "last_direction": -4.0}, orders={"candidate": 0, "flat": 0, "last_direction": 12}
    )

    decision = judge_promotion(LABELS, honest(0.5), None, 0.01, 0.6, trading=comparison, min_trades=0)

    assert decision.figures["is_pnl_judged"] == 1.0
    assert decision.failures == [
        "P&L after costs on the engine beats every baseline in 0 of 1 folds (0%), fewer "
        "than models.promotion_min_fold_share 1 requires; lost: holdout (candidate 0.00 vs "
        "flat 0.00)"
    ]


def fold(name: str, candidate: str, last_direction: str = "-5.00", rows: int = 100) -> FoldJudgement:
    """A window on the engine: the candidate's P&L against flat (0) and last_direction's."""

    def strategy(pnl: str, trades: int = 0) -> StrategyFigures:
        return StrategyFigures(Decimal(pnl), trades, 2 * trades, 0.5 if trades else None, Decimal("1.25"))

    return FoldJudgement(
        name, rows, strategy(candidate, 20), {"flat": NO_POSITION, "last_direction": strategy(last_direction, 30)}
    )


WIN, LOSS = "12.50", "-3.10"


@pytest.mark.parametrize(
    ("candidates", "share", "is_passed", "lost"),
    [
        ([WIN, LOSS, WIN, LOSS, LOSS], 0.6, False, ["fold 1", "fold 3", "holdout"]),  # 2 of 5 won
        ([WIN, WIN, LOSS, WIN, WIN], 0.6, True, []),  # 4 of 5 won
        ([WIN, WIN, LOSS, WIN, LOSS], 0.6, True, []),  # 3 of 5 is exactly 0.6
        ([WIN, WIN, LOSS, WIN, LOSS], 0.61, False, ["fold 2", "holdout"]),
        ([WIN, WIN, WIN, WIN, LOSS], 1.0, False, ["holdout"]),  # the holdout is one fold among five
        ([LOSS] * 5, 0.0, True, []),  # share 0: P&L not a criterion
    ],
)
def test_fold_share_when_folds_are_won_and_lost_then_the_share_decides_and_names_the_folds_lost(
    candidates: list[str], share: float, is_passed: bool, lost: list[str]
) -> None:
    folds = [fold(str(index), pnl) for index, pnl in enumerate(candidates[:-1])] + [fold(HOLDOUT, candidates[-1])]

    failures, figures = fold_share_failures(folds, share)

    assert (failures == []) == is_passed, failures
    won = sum(pnl == WIN for pnl in candidates)
    assert (figures["folds_judged"], figures["folds_won"], figures["min_fold_share"]) == (5, won, share)
    assert figures["fold_won_share"] == pytest.approx(won / 5)
    if not is_passed:
        assert f"beats every baseline in {won} of 5 folds" in failures[0], failures
        named = [label for label in ("fold 0", "fold 1", "fold 2", "fold 3", "holdout") if f"{label} (" in failures[0]]
        assert named == lost, failures
        assert f"(candidate {LOSS} vs flat 0.00)" in failures[0], failures


@pytest.mark.parametrize(
    ("candidate", "last_direction", "lost_to"),
    [
        ("0.00", "-5.00", ["flat"]),  # no better than never trading
        ("7.25", "7.25", ["last_direction"]),  # equal to the momentum baseline's: not a win
        ("7.26", "7.25", []),  # a cent above every baseline wins
        ("-1.00", "3.00", ["flat", "last_direction"]),
    ],
)
def test_fold_when_the_candidate_ties_a_baseline_then_the_fold_is_lost(
    candidate: str, last_direction: str, lost_to: list[str]
) -> None:
    window = fold("0", candidate, last_direction)

    failures, figures = fold_share_failures([window], 1.0)

    assert window.lost_to() == lost_to
    assert (failures == []) == (not lost_to)
    assert figures["folds_won"] == (0 if lost_to else 1)


def test_judge_when_folds_given_then_the_share_rule_judges_and_the_table_is_recorded() -> None:
    folds = [fold("0", WIN), fold("1", LOSS), fold("2", LOSS), fold("3", WIN), fold(HOLDOUT, WIN)]
    holdout = trading(12.5, 30)

    refused = judge_promotion(
        LABELS, honest(0.5), None, 0.01, 0.6, trading=holdout, min_trades=10, folds=folds, min_fold_share=0.8
    )
    promoted = judge_promotion(
        LABELS, honest(0.5), None, 0.01, 0.6, trading=holdout, min_trades=10, folds=folds, min_fold_share=0.6
    )

    assert not refused.is_promoted and promoted.is_promoted, promoted.failures
    assert refused.failures[0].endswith(
        "lost: fold 1 (candidate -3.10 vs flat 0.00); fold 2 (candidate -3.10 vs flat 0.00)"
    ), refused.failures
    figures = promoted.figures
    assert figures["fold_1_candidate_pnl_account"] == -3.10 and figures["fold_holdout_last_direction_trades"] == 30
    assert figures["fold_0_flat_pnl_account"] == 0.0 and figures["fold_2_candidate_max_drawdown_account"] == 1.25
    assert judged_folds(figures, ("flat", "last_direction")) == folds  # read back exactly, in order


CONTRACT = {"timeframe": "1m", "horizon_bars": "5", "dead_zone_bps": "1.0", "symbols": "EURUSD,USDJPY"}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, []),
        ({"symbols": "USDJPY,XAUUSD"}, []),  # one symbol in common is enough: scored on the shared bars
        ({"timeframe": "5m"}, ["timeframe 5m != the champion's 1m"]),
        ({"horizon_bars": "10"}, ["labels"]),
        ({"dead_zone_bps": "0.5"}, ["labels"]),
        ({"symbols": "XAUUSD"}, ["no symbol in common with the champion's (EURUSD,USDJPY)"]),
    ],
)
def test_contract_mismatches_when_a_challenger_differs_then_each_difference_named(
    changes: dict[str, str], expected: list[str]
) -> None:
    champion = replace(ENTRY, model_id="ensemble_direction", params=CONTRACT)
    challenger = replace(ENTRY, model_id="lgbm_direction", framework="lightgbm", params={**CONTRACT, **changes})

    found = contract_mismatches(challenger, champion)

    assert [message[: len(prefix)] for message, prefix in zip(found, expected, strict=False)] == expected
    assert len(found) == len(expected)


def test_contract_mismatches_when_feature_schemas_differ_then_refused() -> None:
    champion = replace(ENTRY, params=CONTRACT)

    found = contract_mismatches(replace(champion, model_id="other", feature_schema_hash="other"), champion)

    assert found == ["feature schema other != the champion's h"]
