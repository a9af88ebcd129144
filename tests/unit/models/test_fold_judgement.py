"""A window judged on the engine: the candidate and each baseline, P&L, trades, hit rate and max drawdown."""

from __future__ import annotations

import gc
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from bench.backtest import synthetic_holdout
from models.fold_figures import HOLDOUT, NO_POSITION, folds_table, judged_folds
from models.fold_judgement import _Replay, judge_window, judgement_pool
from tests.unit.models.test_engine_backtest import ONE_HOT, RULES, _frame, _settings


def test_judge_window_when_a_long_wins_and_a_short_loses_then_figures_by_hand(tmp_path: Path) -> None:
    # EURUSD mids 0, 10, ..., 50 pips above 1.1, spread 2 pips; 1 lot: a pip is 10 USD.
    frame = _frame("EURUSD", [0, 10, 20, 30, 40, 50], 0.0001, 1.1, 2)
    calls = ["up", "up", "down", "down", "flat"]
    probabilities = np.array([ONE_HOT[call] for call in calls])
    config = _settings(tmp_path, max_position_lots=1.0, max_order_lots=2.0)

    window = judge_window("2", frame, probabilities, RULES, config, "1m", ("flat", "last_direction"))

    candidate = window.fold.candidate
    # The long: in at 0 + 1, out at 20 - 1 (+18 pips, 180 USD); the short: in at 19, out at 40 + 1 (-22 pips).
    assert candidate.pnl_account == Decimal("-40")
    assert (candidate.trades, candidate.hit_rate) == (2, 0.5)
    assert candidate.max_drawdown_account == Decimal("220")  # from +180 down to -40
    assert window.comparison.candidate_pnl_account == window.comparison.vectorised_pnl_account == -40.0
    # last_direction (no move before the first bar: flat, then long every bar): 0 + 1 ... 50 - 1 = +38 pips.
    assert window.fold.baselines["last_direction"].pnl_account == Decimal("380")
    assert window.fold.baselines["last_direction"].hit_rate == 1.0
    assert window.fold.baselines["flat"] == NO_POSITION  # never holds a position: not replayed
    assert window.fold.lost_to() == ["flat", "last_direction"]
    assert any("fold 2: engine backtest of flat: never holds a position" in note for note in window.fold.notes)


def test_judged_folds_when_figures_recorded_then_read_back_exactly_and_tabled(tmp_path: Path) -> None:
    frame = _frame("EURUSD", [0, 10, 20, 30, 40, 50], 0.0001, 1.1, 2)
    probabilities = np.array([ONE_HOT[call] for call in ["up", "up", "up", "up", "up"]])
    config = _settings(tmp_path, max_position_lots=1.0, max_order_lots=2.0)
    window = judge_window("0", frame, probabilities, RULES, config, "1m", ("flat", "last_direction")).fold

    read = judged_folds(window.figures(), ("flat", "last_direction"))

    assert read == [window]
    table = folds_table(read)
    assert table[1].startswith("fold 0") and "480.00 / 1 / 100.0% / 0.00" in table[1], table
    assert table[1].endswith("won"), table


@pytest.mark.parametrize("baselines", [("flat",), ("flat", "last_direction")])
def test_judged_folds_when_a_baseline_was_not_recorded_then_the_fold_is_left_out(
    tmp_path: Path, baselines: tuple[str, ...]
) -> None:
    frame = _frame("EURUSD", [0, 10, 20], 0.0001, 1.1, 2)
    config = _settings(tmp_path, max_position_lots=1.0, max_order_lots=2.0)
    window = judge_window("1", frame, np.array([ONE_HOT["up"]] * 2), RULES, config, "1m", baselines).fold

    read = judged_folds(window.figures(), ("flat", "last_direction"))

    assert read == ([window] if "last_direction" in baselines else [])


def test_judge_window_when_baselines_replay_in_a_worker_then_the_same_figures_as_one_after_another(
    tmp_path: Path,
) -> None:
    frame, probabilities = synthetic_holdout(3_000, seed=3)
    config = _settings(tmp_path, slippage_bps=0.5, max_position_lots=1.0, max_order_lots=0.4)
    baselines = ("flat", "last_direction")

    with judgement_pool(
        config.model_copy(update={"models": config.models.model_copy(update={"judgement_parallel_rows": 0})}),
        len(frame),
        2,
    ) as pool:
        assert pool is not None
        parallel = judge_window(HOLDOUT, frame, probabilities, RULES, config, "1m", baselines, "m", 3, pool)
    sequential = judge_window(HOLDOUT, frame, probabilities, RULES, config, "1m", baselines, "m", 3)

    assert parallel == sequential
    assert parallel.fold.candidate.orders > 100 and parallel.fold.baselines["last_direction"].orders > 100
    assert parallel.fold.baselines["flat"] == NO_POSITION


def test_judgement_pool_when_the_window_is_below_the_threshold_then_none(tmp_path: Path) -> None:
    config = _settings(tmp_path)
    rows = config.models.judgement_parallel_rows

    with judgement_pool(config, rows - 1, 2) as small, judgement_pool(config, rows, 1) as alone:
        assert small is None and alone is None


def test_judge_window_when_its_replays_run_then_the_collector_waits_and_collects_again_after(tmp_path: Path) -> None:
    frame, probabilities = synthetic_holdout(600)
    config = _settings(tmp_path)
    replayed: list[int] = []  # the collections that ran while a strategy replayed
    monitor = _Collections()
    gc.callbacks.append(monitor)
    original = _Replay.run

    def counted(replay: _Replay, ticks: object = None) -> object:
        before = monitor.count
        result = original(replay, ticks)  # type: ignore[arg-type]
        replayed.append(monitor.count - before)
        return result

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_Replay, "run", counted)
            judge_window(HOLDOUT, frame, probabilities, RULES, config, "1m", ("flat", "last_direction"))
    finally:
        gc.callbacks.remove(monitor)

    assert replayed == [0, 0] and gc.isenabled()


class _Collections:
    """Counts the collector's passes (a ``gc.callbacks`` entry)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        self.count += phase == "start"
