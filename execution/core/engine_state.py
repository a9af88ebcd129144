"""The engine's trading state and its one writer, held by the execution core (``engine_state.rs``).

Everything the journal rebuilds (orders, positions and their books, signals and commands
already decided, trading state and symbol halts, realised P&L per day, the day's marks)
plus the latest quotes and the limits in force. :class:`EngineState` is the only code that
changes it: ``apply`` with each recorded event, ``observe_tick`` with each validated quote
(ticks are prices, not journaled), ``set_limits`` with an operator's ``set_limit``,
``note_stop_denied`` with a protective close the gate refused and ``retire`` with the
reconciliation's window. The decision code (:mod:`execution.core.decisions`,
:mod:`execution.core.commands`, :mod:`execution.core.stops`, :mod:`execution.core.valuation`) only
reads it: the orders, books, bookings and the risk view's containers the core keeps in step
with its own values (a read costs a dict lookup), and one call for a derived answer
(``working_orders``, ``orders_in_window``, ``window_start``, ``status_of``, ``is_decided``).
"""

from __future__ import annotations

from typing import Final

import tickwave_core
from tickwave_core import EngineState as EngineState  # the state and its writer, re-exported
from tickwave_core import book_fill as book_fill  # the fill booking rule the state books with

__all__ = [
    "DAY_ROLLOVER",
    "FLATTEN",
    "RATE_WINDOW_MS",
    "RETIRE_MARGIN_MS",
    "SYMBOL_HALTED",
    "SYMBOL_RESUMED",
    "TRADING_STATE",
    "EngineState",
    "book_fill",
]

RATE_WINDOW_MS: Final[int] = tickwave_core.RATE_WINDOW_MS
# How far past the reconciliation's window ended orders stay in memory, and how far a signal's
# creation time may run ahead of its decision's (two hosts' clocks): see EngineState.retire.
RETIRE_MARGIN_MS: Final[int] = tickwave_core.RETIRE_MARGIN_MS

# Risk event kinds that change state (the rest only inform).
TRADING_STATE: Final = "trading_state"
SYMBOL_HALTED: Final = "symbol_halted"
SYMBOL_RESUMED: Final = "symbol_resumed"
FLATTEN: Final = "flatten"
DAY_ROLLOVER: Final = "day_rollover"  # marks each position's unrealised P&L at the trading day's start
