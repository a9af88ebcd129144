"""Protective stops: close a position whose price crossed its stop loss or take profit (read-only).

Engine-managed, so they hold for paper and MT5 alike; on MT5 the broker may also set
server-side levels as a backstop (:mod:`execution.brokers.mt5_stops`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from execution.core.decisions import ControlOutcome, EventBuilder, closing_orders
from execution.core.engine_state import RATE_WINDOW_MS, EngineState
from tickwave.clock import Clock
from tickwave.contracts import Signal, Tick
from tickwave.money import to_decimal

NOTHING: Final = ControlOutcome()  # no stop crossed (frozen: one instance serves every tick)


def protective_signal(which: str, tick: Tick, part: int) -> Signal:
    """The decision a protective close traces to (its id names the level, symbol, tick time and part)."""
    kind = "sl" if which == "stop loss" else "tp"
    return Signal(
        signal_id=f"{kind}-{tick.symbol}-{tick.time_ms}-{tick.seq}-{part}",
        symbol=tick.symbol,
        timeframe="protective",
        bar_start_ms=tick.time_ms,
        direction="flat",
        strength=0.0,
        confidence=1.0,
        model_id=f"protective:{kind}",
        model_version=0,
        created_at_ms=tick.time_ms,
    )


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
        through the journal and broker like a flatten.
        """
        state, symbol = self.state, tick.symbol
        limits = state.limits
        stop_loss_pips, take_profit_pips = limits.stop_pips(symbol)
        if not (stop_loss_pips or take_profit_pips):  # no stop set (the default): nothing else to read
            return NOTHING
        book, spec = state.books.get(symbol), limits.instruments.get(symbol)
        position = state.view.positions.get(symbol, Decimal(0))
        if book is None or spec is None or not position:
            return NOTHING
        if state.view.pending.get(symbol):
            return NOTHING
        entry = sum((lots * price for lots, price in book.entries), Decimal(0)) / position
        pip = to_decimal(spec.pip_size)
        direction = 1 if position > 0 else -1
        exit_price = to_decimal(tick.bid if position > 0 else tick.ask)
        moved_pips = (exit_price - entry) * direction / pip
        if stop_loss_pips and moved_pips <= -to_decimal(stop_loss_pips):
            which = "stop loss"
        elif take_profit_pips and moved_pips >= to_decimal(take_profit_pips):
            which = "take profit"
        else:
            return NOTHING
        now_ms = self.clock.now_ms()
        if now_ms - state.stop_denied_at_ms.get(symbol, -RATE_WINDOW_MS) < RATE_WINDOW_MS:
            return NOTHING
        intents, denials = closing_orders(state, symbol, lambda part: protective_signal(which, tick, part), now_ms)
        detail = (
            f"{which} {symbol}: {position} lots from {entry:.6g} at {exit_price} ({moved_pips:.1f} pips); "
            f"closing with {len(intents)} reduce-only orders, {len(denials)} denied"
        )
        report = self.events.risk("protective_stop", "warning", detail, now_ms, symbol=symbol, check="protective_stop")
        return ControlOutcome(events=(report, *denials), intents=tuple(intents))
