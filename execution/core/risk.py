"""Pre-trade risk checks: the core's gate (``gate.rs``), run on a risk view built outside the engine.

The gate runs the checks in a fixed order and stops at the first denial; the order of
:data:`CHECKS` is the documented order (see the README). A check reads the proposed order,
the risk view and the limits; it changes nothing. Three checks also trip a breaker: the daily
loss limit (moves trading to ``daily_loss_action``, REDUCING by default) and consecutive broker
rejects (HALTED) act on all trading, the flash-crash guard halts one symbol; the engine applies
that (``Denial.halts``). An order that only reduces a position passes the capital checks
(position, gross exposure, daily loss) but still the collar, the rate limit and the rest.

The engine asks its own state's gate (``EngineState.first_denial``: one call into the core per
order); the functions here answer for a :class:`RiskView` (read field by field), with the same
rules and words. What the kernel decides is asked of it, not copied: the market's hours
(``limits.market``), the conversion route (:func:`tickwave.instruments.conversion_route`) and the
day's P&L (the view's ``day_pnl``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Final, Literal, Protocol

import msgspec
import tickwave_core
from tickwave_core import PriceWindow as PriceWindow  # the flash-crash window, re-exported
from tickwave_core import is_reducing as _is_reducing
from tickwave_core import signal_timeframe_denial as _signal_timeframe

from execution.core.limits import RiskLimits
from tickwave.contracts import Side, Signal, Tick, TradingState
from tickwave.contracts.core import mid_price
from tickwave.money import to_decimal

if TYPE_CHECKING:
    from tickwave_core import GateDenial  # a type of the core's stubs only

_ZERO: Final = Decimal(0)


class DayPnl(Protocol):
    """Values the trading day's P&L in the account currency (None: a currency of it has no rate)."""

    def daily_pnl(self, limits: RiskLimits, now_ms: int) -> Decimal | None:
        """Return the P&L of the trading day of ``now_ms``."""
        ...

    def is_above(self, limits: RiskLimits, now_ms: int, floor: Decimal) -> bool:
        """Return what ``daily_pnl(limits, now_ms)`` (not None) ``> floor`` would (it may answer without it)."""
        ...


@dataclass(frozen=True)
class FixedDayPnl:
    """A day's P&L given in advance (a view built outside the engine)."""

    amount: Decimal | None = _ZERO

    def daily_pnl(self, limits: RiskLimits, now_ms: int) -> Decimal | None:
        """Return the given amount."""
        return self.amount

    def is_above(self, limits: RiskLimits, now_ms: int, floor: Decimal) -> bool:
        """Return True when the given amount is known and above ``floor``."""
        return self.amount is not None and self.amount > floor


@dataclass
class RiskView:
    """What the checks read: kept up to date by the engine, never changed by a check."""

    trading_state: TradingState = "ACTIVE"
    halted_symbols: set[str] = field(default_factory=set)
    positions: dict[str, Decimal] = field(default_factory=dict)
    pending: dict[str, Decimal] = field(default_factory=dict)  # signed lots of working orders not yet filled
    last_ticks: dict[str, Tick] = field(default_factory=dict)
    order_times_ms: deque[int] = field(default_factory=deque)
    consecutive_rejects: int = 0
    price_windows: dict[str, PriceWindow] = field(default_factory=dict)  # a view built outside the engine only
    # Where the daily loss check values the day's P&L: a query, not state (the engine's valuation).
    day_pnl: DayPnl = field(default_factory=lambda: FixedDayPnl(), repr=False, compare=False)

    def position(self, symbol: str) -> Decimal:
        """Return the signed filled position of ``symbol`` in lots."""
        return self.positions.get(symbol, Decimal(0))

    def exposure_lots(self, symbol: str) -> Decimal:
        """Return the position as if every working order filled: what the limits must hold for."""
        return self.positions.get(symbol, _ZERO) + self.pending.get(symbol, _ZERO)


class ProposedOrder:
    """The sized order a signal asks for, before the gate."""

    def __init__(self, signal: Signal, side: Side, quantity_lots: float, limit_price: float | None = None) -> None:
        self.signal = signal
        self.side = side
        self.quantity_lots = quantity_lots
        self.limit_price = limit_price
        self.symbol: str = signal.symbol
        lots = to_decimal(quantity_lots)
        self.signed_lots: Decimal = lots if side == "buy" else -lots


class Denial(msgspec.Struct, frozen=True):
    """Why the gate refused an order, and which breaker (if any) it trips (a frozen msgspec struct: quick to build)."""

    check: str
    reason: str
    halts: Literal["", "trading", "symbol"] = ""


Check = Callable[[ProposedOrder, RiskView, RiskLimits, int], "Denial | None"]


def denial_of(found: GateDenial | None) -> Denial | None:
    """The core's answer ``(check, reason, halts)`` as a :class:`Denial`, or None when the check passed."""
    return None if found is None else Denial(*found)


def mids_of(view: RiskView) -> dict[str, float]:
    """The latest mid of every symbol the view has a quote for (the conversion rates)."""
    return {symbol: mid_price(tick.bid, tick.ask) for symbol, tick in view.last_ticks.items()}


def exposure(
    symbol: str, lots: Decimal, view: RiskView, limits: RiskLimits, mids: Mapping[str, float] | None = None
) -> Decimal | None:
    """Return |lots| x contract size x mid of ``symbol`` in the account currency, or None without a price or rate."""
    return tickwave_core.exposure(symbol, lots, view, limits, None if mids is None else dict(mids))


def is_reducing(order: ProposedOrder, view: RiskView) -> bool:
    """Return True when the order only brings the symbol's position (working orders included) towards flat."""
    return _is_reducing(view.exposure_lots(order.symbol), order.signed_lots)


def signal_timeframe_denial(signal: Signal, limits: RiskLimits) -> Denial | None:
    """Deny a signal of another timeframe than the one that drives its symbol.

    Two models on two timeframes would otherwise fight over one position (a 1 s signal
    flipping what a 1 min signal set a second earlier). Checked before sizing: such a
    signal says nothing about the position, so it is denied for what it is.
    """
    return denial_of(_signal_timeframe(signal.symbol, signal.timeframe, limits.driving_timeframe(signal.symbol)))


# ---------------------------------------------------------------------------------------
# The checks, in gate order: each one check of the core's gate on its own
# ---------------------------------------------------------------------------------------


def _one(name: str, order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    return denial_of(tickwave_core.gate_denial(name, order, view, limits, now_ms))


def check_trading_state(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """HALTED (globally or for the symbol) denies all; REDUCING denies what does not reduce the position."""
    return _one("trading_state", order, view, limits, now_ms)


def check_symbol_allowed(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny symbols outside the allowed list."""
    return _one("symbol_allowed", order, view, limits, now_ms)


def check_market_open(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny while the market is closed."""
    return _one("market_open", order, view, limits, now_ms)


def check_signal_ttl(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny signals older than the TTL."""
    return _one("signal_ttl", order, view, limits, now_ms)


def check_max_order_size(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny orders larger than the largest order size."""
    return _one("max_order_size", order, view, limits, now_ms)


def check_no_price(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny without a usable price of the symbol (no tick, or one older than ``max_tick_age_ms``)."""
    return _one("no_price", order, view, limits, now_ms)


def check_max_position(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny orders that leave the symbol's position (working orders included) beyond its limit."""
    return _one("max_position", order, view, limits, now_ms)


def check_gross_exposure(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny orders that take the gross exposure (account currency) over its limit; every leg needs a rate.

    Summed in floats first, with a bound on their error; only a sum within it of the limit is summed exactly.
    """
    return _one("gross_exposure", order, view, limits, now_ms)


def check_price_collar(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny without a usable price, on a spread too wide, or a limit price far from mid."""
    return _one("price_collar", order, view, limits, now_ms)


def check_order_rate(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny when the last second already holds the allowed number of orders."""
    return _one("order_rate", order, view, limits, now_ms)


def check_daily_loss(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny what does not reduce once the day's loss reaches the limit (or cannot be valued)."""
    return _one("daily_loss", order, view, limits, now_ms)


def check_consecutive_rejects(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny and halt trading after too many broker rejects in a row."""
    return _one("consecutive_rejects", order, view, limits, now_ms)


def check_flash_crash(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny and halt the symbol when its mid moved more than the threshold within the window."""
    return _one("flash_crash", order, view, limits, now_ms)


_BY_NAME: Final[dict[str, Check]] = {
    check.__name__.removeprefix("check_"): check
    for check in (
        check_trading_state,
        check_symbol_allowed,
        check_market_open,
        check_signal_ttl,
        check_max_order_size,
        check_no_price,
        check_max_position,
        check_gross_exposure,
        check_price_collar,
        check_order_rate,
        check_daily_loss,
        check_consecutive_rejects,
        check_flash_crash,
    )
}
_ORDER, _OPERATOR_ORDER = tickwave_core.gate_checks()
CHECKS: Final[tuple[Check, ...]] = tuple(_BY_NAME[name] for name in _ORDER)  # the core's order
# An operator's reduce-only order (flatten): the gate without the trading state (it must
# work while HALTED), the signal's age and the breakers' trips; price, collar and rate stay.
OPERATOR_CHECKS: Final[tuple[Check, ...]] = tuple(_BY_NAME[name] for name in _OPERATOR_ORDER)


def operator_denial(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Run the operator checks on a reduce-only order; return the first denial, or None."""
    return denial_of(tickwave_core.gate_denial("operator", order, view, limits, now_ms))


def first_denial(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Run every check in order; return the first denial, or None when the order may go."""
    return denial_of(tickwave_core.gate_denial("all", order, view, limits, now_ms))
