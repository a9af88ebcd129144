"""Builders shared by the ingest unit tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from streams.ingest.batches import Candidates
from testkit.mt5_fake import FakeMetaTrader5, make_ticks
from testkit.mt5_fake import Tick as TerminalTick
from tickwave.config import default_symbols

REGISTRY = default_symbols()
NOW_MS = 1_709_539_200_000  # 2024-03-04 08:00:00 UTC
T0 = NOW_MS  # the same instant, read on an MT5 server clock


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


Step = Callable[["ScriptedTerminal"], None]


class ScriptedTerminal(FakeMetaTrader5):
    """A fake terminal that plays one script step each time the source checks a symbol's latest tick."""

    def __init__(self, script: list[Step], stop: threading.Event) -> None:
        super().__init__()
        self.script = list(script)
        self.stop = stop
        self.pushed: list[tuple[int, float, float]] = []
        for symbol, digits in (("EURUSD", 5), ("USDJPY", 3)):
            self.add_symbol(symbol, digits=digits)

    def push(self, symbol: str, rows: list[tuple[int, float, float]]) -> None:
        self.push_ticks(symbol, make_ticks(rows))
        self.pushed.extend(rows)

    def symbol_info_tick(self, symbol: str) -> TerminalTick | None:
        if self.script:
            self.script.pop(0)(self)
        else:
            self.stop.set()  # the script is done: this poll is the last
        return super().symbol_info_tick(symbol)
