"""The leakage check: every stored feature at bar t must be what bars up to t produce.

The streams compute the features bar by bar (``streams.features.FeatureState``), so a
stored value at bar t can be replayed from the stored bars: feed a fresh feature state
the bars before t and compare. A feature that peeked at the future (a centred window,
a backfill that shifted a column, a join on the wrong bar) does not replay and is
caught, named, with an example. Training refuses such data and registers nothing.

The check replays ``windows`` evenly spaced stretches of each symbol's bars. Each
stretch starts ``warmup`` bars early, because the exponential indicators (EMA, MACD,
RSI, ATR) remember their whole history: after ten times the longest period their
start no longer matters beyond float rounding, and values are compared with a relative
tolerance scaled by the feature's typical size. Where the streams restarted without
their recovery store (their indicators began again: cold rows after warm ones), the
replay starts at that very bar. A feature fails when more than
``MAX_MISMATCH_FRACTION`` of its compared values differ: a leaky feature differs almost
everywhere; the allowance absorbs what the replay cannot know (a restart whose cold
rows were never stored).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.dataset import BAR_COLUMNS
from models.errors import LeakageError
from streams.features import FeatureSpec, FeatureState
from tickwave.contracts import Bar

logger = logging.getLogger(__name__)

MAX_MISMATCH_FRACTION = 0.05
CHECK_ROWS = 50  # compared bars per window, after its warm-up


def default_warmup_bars(spec: FeatureSpec) -> int:
    """Return ten times the longest look-back of ``spec`` (at least 200 bars)."""
    fast, slow, signal = spec.macd
    longest = max(
        *spec.sma_periods,
        *spec.ema_periods,
        *spec.return_horizons,
        spec.rsi_period + 1,
        max(fast, slow) + signal,
        spec.bollinger_period,
        spec.atr_period + 1,
        spec.volatility_period + 1,
        spec.spread_period,
    )
    return max(200, 10 * longest)


@dataclass
class LeakageReport:
    """What the replay compared and where it disagreed."""

    compared_rows: int = 0
    mismatches: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    def leaky_features(self) -> list[str]:
        """Return the features that failed the check, in model order of first failure."""
        if not self.compared_rows:
            return []
        limit = MAX_MISMATCH_FRACTION * self.compared_rows
        return [name for name, count in self.mismatches.items() if count > limit]


def _window_starts(length: int, window: int, count: int) -> list[int]:
    # Evenly spaced, de-duplicated start positions of windows that fit in the series.
    if length < window:
        return [0] if length else []
    return sorted({int(position) for position in np.linspace(0, length - window, num=count)})


def _restarts(rows: pd.DataFrame, starts_ms: np.ndarray) -> np.ndarray:
    # Bar positions where the streams restarted their feature state: a cold row after warm ones.
    ordered = rows.sort_values("bar_start_ms")
    warm = ordered["is_warm"].to_numpy(dtype=bool)
    restarted = np.flatnonzero(~warm[1:] & warm[:-1]) + 1
    positions: np.ndarray = np.searchsorted(starts_ms, ordered["bar_start_ms"].to_numpy(np.int64)[restarted])
    return positions


def replay_features(
    bars: pd.DataFrame,
    stored: pd.DataFrame,
    spec: FeatureSpec,
    windows: int,
    tolerance: float,
    warmup: int | None = None,
) -> LeakageReport:
    """Replay windows of each symbol's bars and compare with the stored warm feature rows.

    A restart of the streams without their recovery store shows in the stored rows as
    cold rows after warm ones: the feature state began again at that bar, so a window
    that spans it replays from exactly there instead.

    Args:
        bars: the stored bars (every ``BAR_COLUMNS`` column) of one timeframe.
        stored: the stored feature rows of ``spec``'s schema, warm and cold:
            ``symbol``, ``bar_start_ms``, ``is_warm`` and one column per feature name.
        spec: the feature set the streams ran.
        windows: replay windows per symbol.
        tolerance: relative difference allowed (scaled by the feature's median size).
        warmup: bars replayed before the compared ones (default: :func:`default_warmup_bars`).
    """
    names = list(spec.names)
    warmup = default_warmup_bars(spec) if warmup is None else warmup
    report = LeakageReport(mismatches=dict.fromkeys(names, 0))
    stored_by_symbol = {symbol: rows for symbol, rows in stored.groupby("symbol")}
    for symbol, series in bars.groupby("symbol", sort=True):
        rows = stored_by_symbol.get(symbol)
        if rows is None:
            continue
        series = series.sort_values("start_ms").drop_duplicates("start_ms", keep="last")
        rows = rows.drop_duplicates("bar_start_ms", keep="last")
        starts_ms = series["start_ms"].to_numpy(np.int64)
        restarts = _restarts(rows, starts_ms)
        warm_values = rows[rows["is_warm"].astype(bool)].set_index("bar_start_ms")[names]
        records = series.loc[:, list(BAR_COLUMNS)].to_dict("records")
        for start in _window_starts(len(records), warmup + CHECK_ROWS, windows):
            end = min(start + warmup + CHECK_ROWS, len(records))
            inside = restarts[(restarts > start) & (restarts < end)]
            replay_from = int(inside[-1]) if len(inside) else start
            compare_from = max(start + warmup, replay_from)
            state = FeatureState(spec)
            replayed: dict[int, list[float | None]] = {}
            for position in range(replay_from, end):
                vector = state.update(Bar(**records[position]))
                if vector is not None and position >= compare_from and vector.is_warm:
                    replayed[vector.bar_start_ms] = [vector.values[name] for name in names]
            common = warm_values.index.intersection(list(replayed))
            if common.empty:
                continue
            _compare(
                report,
                str(symbol),
                names,
                warm_values.loc[common],
                np.array([replayed[key] for key in common], dtype=np.float64),
                tolerance,
            )
    return report


def _compare(
    report: LeakageReport, symbol: str, names: Sequence[str], stored: pd.DataFrame, replay: np.ndarray, tolerance: float
) -> None:
    values = stored.to_numpy(dtype=np.float64)
    scale = np.maximum(np.median(np.abs(replay), axis=0), 1e-300)
    # Written as 'not within' so that a stored NaN counts as a difference.
    differs = ~(np.abs(values - replay) <= tolerance * np.maximum(np.abs(replay), scale))
    report.compared_rows += len(values)
    for column, name in enumerate(names):
        count = int(differs[:, column].sum())
        if count:
            report.mismatches[name] += count
            if name not in report.examples:
                row = int(np.argmax(differs[:, column]))
                report.examples[name] = (
                    f"{symbol} bar {int(stored.index[row])}: stored {values[row, column]!r}, "
                    f"replayed from bars up to it {replay[row, column]!r}"
                )


def check_point_in_time(
    bars: pd.DataFrame,
    stored: pd.DataFrame,
    spec: FeatureSpec,
    windows: int,
    tolerance: float,
    warmup: int | None = None,
) -> LeakageReport:
    """Run :func:`replay_features` and raise when a feature does not replay.

    Raises:
        LeakageError: naming each leaky feature with its mismatch count and an example.
    """
    report = replay_features(bars, stored, spec, windows, tolerance, warmup)
    leaky = report.leaky_features()
    if leaky:
        details = "; ".join(
            f"{name}: {report.mismatches[name]}/{report.compared_rows} differ, e.g. {report.examples[name]}"
            for name in leaky
        )
        raise LeakageError(
            f"features do not match their point-in-time replay (they use data after their bar): {details}. "
            "Nothing was trained; recompute the features with the streams"
        )
    if report.compared_rows == 0:
        logger.warning("point-in-time check compared no rows: the series are shorter than the replay warm-up")
    else:
        logger.info("point-in-time check: %d rows replayed, no leaky feature", report.compared_rows)
    return report
