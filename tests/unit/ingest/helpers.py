"""Builders shared by the ingest unit tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streams.ingest.batches import Candidates
from tickwave.config import default_symbols

REGISTRY = default_symbols()
NOW_MS = 1_709_539_200_000  # 2024-03-04 08:00:00 UTC


def candidates(
    symbols: Sequence[str],
    time_ms: Sequence[int],
    bid: Sequence[float],
    ask: Sequence[float],
    last: Sequence[float] | None = None,
    volume: Sequence[float] | None = None,
    flags: Sequence[int] | None = None,
) -> Candidates:
    """Rows with one symbol each (``symbols[i]``); raw(i) is ``"row i"``."""
    names = tuple(dict.fromkeys(symbols))
    count = len(time_ms)
    return Candidates(
        names,
        np.array([names.index(symbol) for symbol in symbols], dtype=np.int32),
        np.array(time_ms, dtype=np.int64),
        np.array(bid, dtype=np.float64),
        np.array(ask, dtype=np.float64),
        np.array(last if last is not None else [0.0] * count, dtype=np.float64),
        np.array(volume if volume is not None else [0.0] * count, dtype=np.float64),
        np.array(flags if flags is not None else [6] * count, dtype=np.int64),
        lambda i: f"row {i}",
    )
