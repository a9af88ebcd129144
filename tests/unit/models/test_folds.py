"""Walk-forward folds and the holdout split: order, purge gap, embargo, rolling windows."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.folds import holdout_split, walk_forward

STEP = 60_000


def grid(steps: int, symbols: int = 2, horizon: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``symbols`` series on one gapless time axis, sorted by time; label end = t + h."""
    times = np.repeat(np.arange(steps, dtype=np.int64) * STEP, symbols)
    return times, times + horizon * STEP


def positions(times_ms: np.ndarray) -> np.ndarray:
    return times_ms // STEP


def test_walk_forward_when_hand_checked_then_blocks_gaps_and_training_rows_match() -> None:
    # 50 steps, 4 folds: blocks of 10 steps; h = 2, embargo = 1 -> training ends 3 steps before each test block.
    times, label_end = grid(50, symbols=1, horizon=2)

    folds = walk_forward(times, label_end, folds=4, horizon_bars=2, embargo_bars=1)

    assert [(int(positions(times[f.test]).min()), int(positions(times[f.test]).max())) for f in folds] == [
        (10, 19),
        (20, 29),
        (30, 39),
        (40, 49),
    ]
    assert [int(positions(times[f.train]).max()) for f in folds] == [6, 16, 26, 36]
    assert [len(f.train) for f in folds] == [7, 17, 27, 37]


def test_walk_forward_when_rolling_then_training_window_has_fixed_length() -> None:
    times, label_end = grid(60, symbols=1, horizon=2)

    folds = walk_forward(
        times, label_end, folds=5, horizon_bars=2, embargo_bars=1, scheme="rolling", rolling_window_bars=8
    )

    assert [len(fold.train) for fold in folds] == [7, 8, 8, 8, 8]  # the first is cut at the start of the data
    for fold in folds:
        first_test = int(positions(times[fold.test]).min())
        assert int(positions(times[fold.train]).max()) == first_test - 2 - 1 - 1


@settings(max_examples=60, deadline=None)
@given(
    steps=st.integers(min_value=30, max_value=400),
    symbols=st.integers(min_value=1, max_value=3),
    folds=st.integers(min_value=1, max_value=6),
    horizon=st.integers(min_value=1, max_value=10),
    embargo=st.integers(min_value=0, max_value=10),
    rolling=st.booleans(),
)
def test_walk_forward_when_any_shape_then_train_precedes_test_by_purge_plus_embargo(
    steps: int, symbols: int, folds: int, horizon: int, embargo: int, rolling: bool
) -> None:
    times, label_end = grid(steps, symbols, horizon)

    result = walk_forward(times, label_end, folds, horizon, embargo, "rolling" if rolling else "expanding", 20)

    tested = np.concatenate([fold.test for fold in result]) if result else np.empty(0, dtype=np.int64)
    assert len(np.unique(tested)) == len(tested)  # test blocks never overlap
    for earlier, later in pairwise(result):
        assert times[earlier.test].max() < times[later.test].min()
    for fold in result:
        test_start = times[fold.test].min()
        assert positions(times[fold.train]).max() <= positions(test_start) - horizon - embargo - 1
        assert label_end[fold.train].max() < test_start  # purged: every training label is known before the test
        assert fold.test_start_ms == test_start


def test_walk_forward_when_a_series_has_a_gap_then_labels_spanning_it_are_purged_too() -> None:
    times = np.array([step * STEP for step in range(40) if not 16 <= step <= 19], dtype=np.int64)
    label_end = np.full(len(times), times[-1] + STEP)
    label_end[:-3] = times[3:]  # h = 3 bars of this series: bar 15's label ends at bar 22, across the gap

    folds = walk_forward(times, label_end, folds=1, horizon_bars=3, embargo_bars=0)

    test_start = int(positions(times[folds[0].test]).min())
    assert test_start == 22
    assert 15 < test_start - 3  # the position cut alone would keep bar 15 ...
    assert int(positions(times[folds[0].train]).max()) == 14  # ... but its label is not known before the test


def test_holdout_split_when_hand_checked_then_most_recent_share_is_held_out_and_purged() -> None:
    times, label_end = grid(100, symbols=2, horizon=5)

    development, holdout = holdout_split(times, label_end, holdout_fraction=0.2, horizon_bars=5, embargo_bars=3)

    assert positions(times[holdout]).min() == 80 and len(holdout) == 40
    assert positions(times[development]).max() == 80 - 5 - 3 - 1
    assert label_end[development].max() < times[holdout].min()


@pytest.mark.parametrize("fraction", [0.001, 0.999])
def test_holdout_split_when_fraction_extreme_then_both_parts_keep_a_step(fraction: float) -> None:
    times, label_end = grid(50, symbols=1, horizon=1)

    development, holdout = holdout_split(times, label_end, fraction, horizon_bars=1, embargo_bars=0)

    assert len(holdout) >= 1
    assert len(development) + len(holdout) <= len(times)
