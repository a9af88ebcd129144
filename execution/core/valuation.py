"""P&L valuation of the engine's state: the day's P&L, each fill's booked figures, the status summary.

Read-only over :class:`~execution.core.engine_state.EngineState`; what it keeps are caches (the
core's day valuation, the last trading day asked), never state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from msgspec.structs import replace as replace_struct
from tickwave_core import DayValuation, fill_figures

from execution.core.engine_state import EngineState
from execution.core.limits import RiskLimits
from execution.core.positions import Booking
from tickwave.contracts import Fill, Message, OrderFilled
from tickwave.instruments import Instrument, conversion_route
from tickwave.market import MarketCalendar


class Valuation:
    """Values an engine state in the account currency (the risk view's source of the day's P&L).

    The day's P&L is the core's (``day_loss.rs``: the exact sums of ``valuation.rs``, screened first
    in floats by ``day_screen.rs``), asked with this valuation's own caches; the engine state's gate
    keeps its own.
    """

    def __init__(self, state: EngineState) -> None:
        self.state = state
        self._memo = DayValuation()  # caches only, never state
        # The last instant asked for, the calendar asked, its trading day and the day's ISO text.
        self._day_text: tuple[int, MarketCalendar, date, str] | None = None

    def is_above(self, limits: RiskLimits, now_ms: int, floor: Decimal) -> bool:
        """Return what ``daily_pnl(limits, now_ms)`` (not None) ``> floor`` would: from the float screen when it can.

        The loss checks ask on every tick, fill and signal; the day is mostly far above its limit.
        """
        return self.state.day_is_above(self._memo, limits, now_ms, floor)

    def is_above_after(self, fill: OrderFilled, limits: RiskLimits, floor: Decimal) -> bool:
        """:meth:`is_above` at ``fill``'s time, just after it was booked: from the answer before it if only it moved."""
        return self.state.day_is_above(self._memo, limits, fill.event_at_ms, floor, fill)

    def unrealized_now(self) -> dict[str, Decimal]:
        """Unrealised P&L of every open position at the latest mid, in its quote currency (exact; the core's)."""
        return self.state.unrealized_now()

    def daily_pnl(self, limits: RiskLimits, now_ms: int) -> Decimal | None:
        """Return the trading day's P&L in the account currency, or None when a currency has no rate.

        Day P&L = realised today + (unrealised now - unrealised at the day's start, as marked
        at the rollover); each currency's sum is converted once, at the latest mids (exact).
        """
        return self.state.daily_pnl(self._memo, limits, now_ms)

    def trading_day(self, limits: RiskLimits, now_ms: int) -> str:
        """Return the trading day of ``now_ms`` as ISO text (the key of the realised P&L and the day's marks)."""
        known = self._day_text
        if known is not None and known[0] == now_ms and known[1] is limits.market:  # a tick's breakers ask twice
            return known[3]
        day = limits.market.trading_day(now_ms)
        text = known[3] if known is not None and known[2] == day else day.isoformat()
        self._day_text = (now_ms, limits.market, day, text)
        return text

    def booked(self, events: Sequence[Message]) -> list[Message]:
        """Return ``events`` with each ``Fill`` record carrying what its execution does to the position.

        Called on a group of broker events before it is journaled; the core's rule (``booking.rs``,
        through :meth:`EngineState.booked`): each ``OrderFilled`` is booked, in order, on a copy of
        its symbol's book exactly as the state will book it, and the ``Fill`` record of that
        execution gets the figures (see :class:`~tickwave.contracts.Fill`; the realised P&L also
        converted to the account currency at the latest mids); a fill booked before gets its
        recorded figures. A symbol's only fill of the group is kept booked ahead, so the state books
        it once, not twice.
        """
        return self.state.booked(events)


def status_summary(valuation: Valuation, instance_id: str, now_ms: int) -> dict[str, Any]:
    """Return a plain summary of the engine state ``valuation`` values, for ``tickwave execution status``."""
    state = valuation.state
    view = state.view
    return {
        "instance_id": instance_id,
        "trading_state": view.trading_state,
        "halted_symbols": sorted(view.halted_symbols),
        "positions_lots": {symbol: str(lots) for symbol, lots in sorted(view.positions.items()) if lots},
        "orders": len(state.orders) + state.retired_orders,  # those let go from memory too
        "working_orders": len(state.working_orders()),
        "signals_decided": len(state.decided_signals) + state.retired_signals,
        "daily_pnl": _money_text(valuation.daily_pnl(state.limits, now_ms)),
        "account_currency": state.limits.account_currency,
        "consecutive_rejects": view.consecutive_rejects,
        "defects": len(state.defects),
    }


def with_booking(
    fill: Fill,
    booking: Booking,
    spec: Instrument,
    account_currency: str,
    instruments: Mapping[str, Instrument],
    mids: Mapping[str, float],
) -> Fill:
    """Return the ``Fill`` record carrying ``booking`` (see :class:`~tickwave.contracts.Fill`).

    The realised P&L is converted to the account currency at ``mids`` (the engine: its latest
    mids; a backfill of fills booked later: the 1-minute bar mids at each fill's time).
    """
    # Amounts at the warehouse's scale (18 decimals: a no-op for prices of up to 16 decimals), so
    # the record and its warehouse row hold the same figures; a conversion (a division) rounds there.
    route = conversion_route(spec.quote, account_currency, instruments, mids)
    realized, account, entry_value = fill_figures(
        booking.realized, booking.entry_value_after, spec.contract_size, route
    )
    return replace_struct(
        fill,
        position_before_lots=booking.position_before,
        position_after_lots=booking.position_after,
        entry_value_after=entry_value,
        realized_pnl_quote=realized,
        realized_pnl_account=account,
        round_trip_id=booking.round_trip_id,
        opens_round_trip_id=booking.opens_round_trip_id,
    )


def _money_text(amount: Decimal | None) -> str:
    return "unknown (a conversion rate is missing)" if amount is None else f"{amount:.2f}"
