"""Symbols and ticks of the fake ``MetaTrader5`` terminal (the package's market data calls).

- ``copy_ticks_from`` / ``copy_ticks_range`` return numpy structured arrays with the real
  field names and dtypes (:data:`adapters.mt5.api.TICK_DTYPE`), ordered by ``time_msc``,
  with both ends of a range included and several ticks allowed in one millisecond; times
  are given as ``datetime`` or integer seconds since 1970 on the server clock (naive
  datetimes are read as that clock, as the package does with UTC-built ones);
- ``symbol_info`` and ``symbol_info_tick`` return named tuples with the package's field names;
- the terminal keeps its tick history while the IPC link is down, so a client that
  reconnects can back-fill the gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adapters.mt5.api import TICK_DTYPE
from testkit.mt5.fake_link import FakeTerminalLink
from testkit.mt5.fake_records import SymbolInfo, TerminalInfo, Tick, TickArray, server_ms


@dataclass
class _Symbol:
    info: SymbolInfo
    ticks: TickArray = field(default_factory=lambda: np.empty(0, dtype=TICK_DTYPE))
    is_selected: bool = False


class FakeMetaTrader5(FakeTerminalLink):
    """An in-memory MetaTrader 5 terminal behind the package's API (see :mod:`testkit.mt5`).

    Args:
        terminal: what ``terminal_info`` reports.
    """

    def __init__(self, terminal: TerminalInfo | None = None) -> None:
        super().__init__(terminal)
        self._symbols: dict[str, _Symbol] = {}

    # ----------------------------------------------------------------------------------
    # Test controls (not part of the package)
    # ----------------------------------------------------------------------------------

    def add_symbol(self, name: str, digits: int = 5, tick_size: float | None = None, **info: Any) -> None:
        """Make ``name`` known to the terminal (not yet in Market Watch)."""
        size = tick_size if tick_size is not None else 10.0**-digits
        info = {"point": 10.0**-digits, "path": f"Fake\\{name}", **info}
        self._symbols[name] = _Symbol(SymbolInfo(name=name, digits=digits, trade_tick_size=size, **info))

    def push_ticks(self, symbol: str, ticks: TickArray) -> None:
        """Append ticks to a symbol's history, as the trade server would stream them.

        Raises:
            ValueError: if they go back in time (a terminal's history is ordered).
        """
        state = self._symbols[symbol]
        times = ticks["time_msc"]
        previous = state.ticks["time_msc"][-1:] if len(state.ticks) else times[:0]
        if len(times) and np.any(np.diff(np.concatenate([previous, times])) < 0):
            raise ValueError(f"ticks of {symbol} must not go back in time")
        state.ticks = np.concatenate([state.ticks, ticks.astype(TICK_DTYPE)])

    def _symbol(self, name: Any) -> _Symbol | None:
        state = self._symbols.get(name) if isinstance(name, str) else None
        if state is None:
            self._fail(self.RES_E_NOT_FOUND)
        return state

    def _filtered(self, ticks: TickArray, flags: Any) -> TickArray | None:
        if flags == self.COPY_TICKS_ALL:
            return ticks
        wanted = {
            self.COPY_TICKS_INFO: self.TICK_FLAG_BID | self.TICK_FLAG_ASK,
            self.COPY_TICKS_TRADE: self.TICK_FLAG_LAST | self.TICK_FLAG_VOLUME,
        }.get(flags)
        if wanted is None:
            return None
        selected: TickArray = ticks[(ticks["flags"] & wanted) != 0]
        return selected

    # ----------------------------------------------------------------------------------
    # The package's API: symbols and ticks
    # ----------------------------------------------------------------------------------

    def symbols_total(self) -> int:
        """Return how many symbols the terminal knows (0 on failure, as the package does)."""
        if not self._enter("symbols_total"):
            return 0
        self._succeed()
        return len(self._symbols)

    def symbol_select(self, symbol: str, enable: bool = True) -> bool:
        """Add ``symbol`` to Market Watch (or remove it)."""
        if not self._enter("symbol_select", symbol, enable):
            return False
        state = self._symbol(symbol)
        if state is None:
            return False
        state.is_selected = bool(enable)
        self._succeed()
        return True

    def symbol_info(self, symbol: str) -> SymbolInfo | None:
        """Return the symbol's properties, with the latest quote."""
        if not self._enter("symbol_info", symbol):
            return None
        state = self._symbol(symbol)
        if state is None:
            return None
        info = state.info._replace(select=state.is_selected, visible=state.is_selected)
        if len(state.ticks):
            latest = state.ticks[-1]
            info = info._replace(bid=float(latest["bid"]), ask=float(latest["ask"]), time=int(latest["time"]))
        self._succeed()
        return info

    def symbol_info_tick(self, symbol: str) -> Tick | None:
        """Return the symbol's latest tick (the symbol must be in Market Watch)."""
        if not self._enter("symbol_info_tick", symbol):
            return None
        state = self._symbol(symbol)
        if state is None:
            return None
        if not state.is_selected or not len(state.ticks):
            self._fail(self.RES_E_NOT_FOUND)
            return None
        self._succeed()
        return Tick(*state.ticks[-1].tolist())

    def copy_ticks_from(self, symbol: str, date_from: Any, count: int, flags: int) -> TickArray | None:
        """Return up to ``count`` ticks with ``time_msc >= date_from``, oldest first."""
        if not self._enter("copy_ticks_from", symbol, date_from, count, flags):
            return None
        state = self._symbol(symbol)
        if state is None:
            return None
        from_ms = server_ms(date_from)
        if from_ms is None or not isinstance(count, int) or count <= 0:
            self._fail(self.RES_E_INVALID_PARAMS)
            return None
        ticks = self._filtered(state.ticks, flags)
        if ticks is None:
            self._fail(self.RES_E_INVALID_PARAMS)
            return None
        start = int(np.searchsorted(ticks["time_msc"], from_ms, side="left"))
        self._succeed()
        return ticks[start : start + count].copy()

    def copy_ticks_range(self, symbol: str, date_from: Any, date_to: Any, flags: int) -> TickArray | None:
        """Return the ticks with ``date_from <= time_msc <= date_to`` (both ends included), oldest first."""
        if not self._enter("copy_ticks_range", symbol, date_from, date_to, flags):
            return None
        state = self._symbol(symbol)
        if state is None:
            return None
        from_ms, to_ms = server_ms(date_from), server_ms(date_to)
        if from_ms is None or to_ms is None or to_ms < from_ms:
            self._fail(self.RES_E_INVALID_PARAMS)
            return None
        ticks = self._filtered(state.ticks, flags)
        if ticks is None:
            self._fail(self.RES_E_INVALID_PARAMS)
            return None
        times = ticks["time_msc"]
        start = int(np.searchsorted(times, from_ms, side="left"))
        stop = int(np.searchsorted(times, to_ms, side="right"))
        self._succeed()
        return ticks[start:stop].copy()
