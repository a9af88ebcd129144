"""Protective stops: close a position whose price crossed its stop loss or take profit (read-only).

Engine-managed, so they hold for paper and MT5 alike; on MT5 the broker may also set
server-side levels as a backstop (:mod:`execution.brokers.mt5_stops`). The rule is the core's
(``stops.rs``); this class calls it.
"""

from __future__ import annotations

from typing import Final

from execution.core.decisions import ControlOutcome, EventBuilder
from execution.core.engine_state import EngineState
from tickwave.clock import Clock
from tickwave.contracts import Tick

NOTHING: Final = ControlOutcome()  # no stop crossed (frozen: one instance serves every tick)


class ProtectiveStops:
    """Decides, on each tick, whether a position's stop loss or take profit closes it."""

    def __init__(self, state: EngineState, clock: Clock, events: EventBuilder) -> None:
        self.state = state
        self.clock = clock
        self.events = events

    def on_tick(self, tick: Tick) -> ControlOutcome:
        """Close a position whose bid (long) or ask (short) crossed its stop loss or take profit.

        Levels are ``stop_loss_pips`` / ``take_profit_pips`` (or the symbol's own pair from
        ``stop_pips_by_symbol``) x the instrument's pip size
        from the position's average entry, derived from the journaled fills (a restart
        keeps them). Nothing while an order on the symbol is still working (the close in
        flight, or another), nor within a second of a denied close (no price, collar, rate:
        retried once a second, not per tick; the engine notes the denial). The orders go
        through the journal and broker like a flatten. The core's (``stops.rs``), one call.
        """
        found = self.state.protective_stop(tick, self.clock, self.events.instance_id)
        if found is None:
            return NOTHING
        events, intents = found
        return ControlOutcome(events=events, intents=intents)
