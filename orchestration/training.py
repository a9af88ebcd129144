"""Helpers behind the training assets and sensors: the training window and when to retrain.

The assets stay glue: the dataset, training, registry and promotion are the tested
functions of ``models/``; this module only decides *which* range and *whether*.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tickwave.timeframes import TIMEFRAMES_MS

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

DAY_MS = 86_400_000


@dataclass(frozen=True)
class TrainingWindow:
    """What a training run reads: symbols and ``[from, to)`` in epoch milliseconds."""

    symbols: tuple[str, ...]
    range_ms: tuple[int, int]


def stored_window(client: Client, timeframe: str, days: int) -> TrainingWindow | None:
    """Return the last ``days`` of stored features of ``timeframe`` (all their symbols), or None when none are stored.

    The window ends one bar after the newest stored feature vector (``to`` is exclusive).
    """
    rows = client.query(
        "SELECT symbol, toUnixTimestamp64Milli(max(bar_start_ms)) FROM features WHERE timeframe = {timeframe:String} "
        "GROUP BY symbol ORDER BY symbol",
        parameters={"timeframe": timeframe},
    ).result_rows
    if not rows:
        return None
    newest = max(int(row[1]) for row in rows) + TIMEFRAMES_MS[timeframe]
    return TrainingWindow(tuple(str(row[0]) for row in rows), (newest - days * DAY_MS, newest))


def new_labelled_bars(client: Client, timeframe: str, since_ms: int, horizon_bars: int) -> int:
    """Count bars of ``timeframe`` after ``since_ms`` whose label is known (``horizon_bars`` later bars exist).

    Counted per symbol: each symbol's newest ``horizon_bars`` bars have no label yet.
    """
    table = f"bars_{timeframe}"
    counts = client.query(
        f"SELECT symbol, count() FROM {table} FINAL "  # noqa: S608 - timeframe is validated by the settings
        "WHERE start_ms > fromUnixTimestamp64Milli(toInt64({since:Int64}), 'UTC') GROUP BY symbol",
        parameters={"since": since_ms},
    ).result_rows
    return sum(max(0, int(count) - horizon_bars) for _, count in counts)


def should_retrain(new_bars: int, threshold: int) -> bool:
    """Return True once at least ``threshold`` newly labelled bars landed since the champion's data."""
    return new_bars >= threshold
