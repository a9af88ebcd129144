"""Walk-forward splits in time, with a purge gap of h bars and an embargo before each test block.

The time axis is the sorted distinct bar starts of the dataset (all symbols share it).
The most recent ``holdout_fraction`` of it is the holdout; the part before is cut into
``folds + 1`` equal blocks: block 0 only trains, blocks 1..folds are the test blocks.
A test block's training rows are the rows before it, then:

- **purge**: the last h time steps before the block are dropped, and so is any
  earlier row whose label is not known before the block starts
  (``label_end_ms >= test start``, which matters around gaps in a series);
- **embargo**: the ``embargo_bars`` time steps before the purge gap are dropped too,
  because neighbouring bars' features are correlated;
- **expanding** keeps everything earlier; **rolling** keeps only the last
  ``rolling_window_bars`` time steps before the embargo.

So between the last training bar and the first test bar lie at least h + embargo bars.
The holdout is split from the development rows the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Scheme = Literal["expanding", "rolling"]


@dataclass(frozen=True)
class Fold:
    """One walk-forward step: row positions to train on and to test on."""

    index: int
    train: np.ndarray
    test: np.ndarray
    test_start_ms: int
    test_end_ms: int  # exclusive


def _training_rows(
    times_ms: np.ndarray,
    label_end_ms: np.ndarray,
    axis: np.ndarray,
    test_position: int,
    horizon_bars: int,
    embargo_bars: int,
    first_position: int,
) -> np.ndarray:
    # Rows before the test block minus the purge gap (h bars, by label end) and the embargo.
    test_start = axis[test_position]
    last_allowed = test_position - horizon_bars - embargo_bars  # exclusive position on the time axis
    if last_allowed <= first_position:
        return np.empty(0, dtype=np.int64)
    upper = axis[last_allowed]
    lower = axis[first_position]
    keep = (times_ms >= lower) & (times_ms < upper) & (label_end_ms < test_start)
    return np.flatnonzero(keep)


def holdout_split(
    times_ms: np.ndarray, label_end_ms: np.ndarray, holdout_fraction: float, horizon_bars: int, embargo_bars: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split rows into (development, holdout): the holdout is the most recent share of the time axis.

    Development rows are purged and embargoed against the holdout like any test block.
    """
    axis = np.unique(times_ms)
    position = min(len(axis) - 1, max(1, round(len(axis) * (1.0 - holdout_fraction))))
    holdout = np.flatnonzero(times_ms >= axis[position])
    development = _training_rows(times_ms, label_end_ms, axis, position, horizon_bars, embargo_bars, 0)
    return development, holdout


def walk_forward(
    times_ms: np.ndarray,
    label_end_ms: np.ndarray,
    folds: int,
    horizon_bars: int,
    embargo_bars: int,
    scheme: Scheme = "expanding",
    rolling_window_bars: int = 0,
) -> list[Fold]:
    """Return the walk-forward folds over rows sorted by time.

    Args:
        times_ms: bar start of each row, non-decreasing.
        label_end_ms: when each row's label is known (start of bar t+h).
        folds: number of test blocks.
        horizon_bars: the label horizon h (the purge gap, in bars).
        embargo_bars: extra bars dropped after the purge gap.
        scheme: ``expanding`` or ``rolling`` training windows.
        rolling_window_bars: training window length of the rolling scheme (time steps).

    Returns:
        The folds in time order; a fold without training rows is left out.
    """
    axis = np.unique(times_ms)
    bounds = np.linspace(0, len(axis), num=folds + 2).round().astype(int)
    result: list[Fold] = []
    for index in range(folds):
        start, end = int(bounds[index + 1]), int(bounds[index + 2])
        if start >= end:
            continue
        first = 0
        if scheme == "rolling":
            first = max(0, start - horizon_bars - embargo_bars - rolling_window_bars)
        train = _training_rows(times_ms, label_end_ms, axis, start, horizon_bars, embargo_bars, first)
        end_ms = int(axis[end]) if end < len(axis) else int(axis[-1]) + 1
        test = np.flatnonzero((times_ms >= axis[start]) & (times_ms < end_ms))
        if len(train) and len(test):
            result.append(Fold(len(result), train, test, int(axis[start]), end_ms))
    return result
