"""Pre-trade risk checks: small pure functions that return a denial or ``None``.

The gate (:func:`first_denial`) runs them in a fixed order and stops at the first
denial; the order of :data:`CHECKS` is the documented order (see the README). A check
reads the proposed order, the risk view the engine keeps and the limits; it changes
nothing. Three checks also trip a breaker: the daily loss limit (moves trading to
``daily_loss_action``, REDUCING by default) and consecutive broker rejects (HALTED) act
on all trading, the flash-crash guard halts one symbol; the engine applies that
(``Denial.halts``). An order that only reduces a position passes the capital checks
(position, gross exposure, daily loss) but still the collar, the rate limit and the rest.
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

# The checks on an order's figures are the core's too (``gate.rs``): each answers ``(check, reason, halts)`` or None.
from tickwave_core import consecutive_rejects_denial as _consecutive_rejects
from tickwave_core import flash_crash_denial as _flash_crash
from tickwave_core import is_reducing as _is_reducing
from tickwave_core import max_order_size_denial as _max_order_size
from tickwave_core import max_position_denial as _max_position
from tickwave_core import signal_timeframe_denial as _signal_timeframe
from tickwave_core import signal_ttl_denial as _signal_ttl
from tickwave_core import stale_price as _stale_price
from tickwave_core import trading_state_denial as _trading_state

from execution.core.limits import RiskLimits
from tickwave.contracts import Side, Signal, Tick, TradingState
from tickwave.contracts.core import mid_price
from tickwave.instruments import conversion_route, convert
from tickwave.money import MONEY_CONTEXT, to_decimal

if TYPE_CHECKING:
    from tickwave_core import GateDenial  # a type of the core's stubs only

# MONEY_CONTEXT's operations, bound once: looking one up on the context costs ~60 ns (the exact sums run per fill).
_add: Final = MONEY_CONTEXT.add

# The checks' float rules are the execution core's (``risk.rs``): the flash-crash window (PriceWindow),
# the price collar and the order rate; the gate keeps their order and the words of their denials.
_collar_breach: Final = tickwave_core.collar_breach
_rate_breach: Final = tickwave_core.rate_breach
_ZERO: Final = Decimal(0)
# A float estimate's error bound, relative to the sum of its terms' sizes: each float step (a Decimal's nearest float,
# a mid's shortest text, a product, a sum, a rate) errs by 2**-53 of it at most; room for 8,000 (and 28-digit rounding).
ESTIMATE_ERROR: Final = tickwave_core.ESTIMATE_ERROR  # 2**-40, the core's (day_screen.rs)
FLOAT_ROUNDING: Final = tickwave_core.FLOAT_ROUNDING  # 2**-52: a float stands within 2**-53 of its number (relative)


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
    price_windows: dict[str, PriceWindow] = field(default_factory=dict)
    # Where the daily loss check values the day's P&L: a query, not state (the engine's valuation).
    day_pnl: DayPnl = field(default_factory=lambda: FixedDayPnl(), repr=False, compare=False)
    # A cache, not state: what the gross exposure check valued last (see LegValues).
    leg_values: LegValues = field(default_factory=lambda: LegValues(), repr=False, compare=False)

    def position(self, symbol: str) -> Decimal:
        """Return the signed filled position of ``symbol`` in lots."""
        return self.positions.get(symbol, Decimal(0))

    def exposure_lots(self, symbol: str) -> Decimal:
        """Return the position as if every working order filled: what the limits must hold for."""
        return self.positions.get(symbol, _ZERO) + self.pending.get(symbol, _ZERO)


class ProposedOrder:
    """The sized order a signal asks for, before the gate (compiled: C fields; the checks' figures worked out once)."""

    def __init__(self, signal: Signal, side: Side, quantity_lots: float, limit_price: float | None = None) -> None:
        self.signal = signal
        self.side = side
        self.quantity_lots = quantity_lots
        self.limit_price = limit_price
        self.symbol: str = signal.symbol
        lots = to_decimal(quantity_lots)
        self.signed_lots: Decimal = lots if side == "buy" else -lots
        self.reducing: bool | None = None  # is_reducing's answer during one gate pass (its view is unchanged)


class Denial(msgspec.Struct, frozen=True):
    """Why the gate refused an order, and which breaker (if any) it trips (a frozen msgspec struct: quick to build)."""

    check: str
    reason: str
    halts: Literal["", "trading", "symbol"] = ""


Check = Callable[[ProposedOrder, RiskView, RiskLimits, int], "Denial | None"]


def _denial(found: GateDenial | None) -> Denial | None:
    """The core's answer ``(check, reason, halts)`` as a :class:`Denial`, or None when the check passed."""
    return None if found is None else Denial(*found)


def mids_of(view: RiskView) -> dict[str, float]:
    """The latest mid of every symbol the view has a quote for (the conversion rates)."""
    return {symbol: mid_price(tick.bid, tick.ask) for symbol, tick in view.last_ticks.items()}


def exposure(
    symbol: str, lots: Decimal, view: RiskView, limits: RiskLimits, mids: Mapping[str, float] | None = None
) -> Decimal | None:
    """Return |lots| x contract size x mid of ``symbol`` in the account currency, or None without a price or rate."""
    spec, tick = limits.instruments.get(symbol), view.last_ticks.get(symbol)
    if spec is None or tick is None:
        return None
    notional = spec.notional(lots, mid_price(tick.bid, tick.ask))
    if spec.quote == limits.account_currency:
        return notional
    return convert(notional, spec.quote, limits.account_currency, limits.instruments, mids or mids_of(view))


class LegValues:
    """Each leg's exposure (account currency) as last valued, reused while nothing it depends on changed.

    A leg's amount depends on its lots, the limits (instrument specs, account currency)
    and the mids (its own and those of the conversion pairs). The memo is dropped as soon
    as the mids or the limits differ from those it was valued with (a tick that moved a
    mid, a ``set_limit``; limits are replaced, never mutated, so identity tells a change),
    and a leg is reused only for the same lots: signals decided with no tick between them
    (a bar close's) value only the legs whose lots changed. Measured: the gross exposure
    check of four legs, one changed, 23 -> 8 us.
    """

    def __init__(self) -> None:
        self._limits: RiskLimits | None = None
        self._ticks: dict[str, Tick] = {}  # the latest ticks the amounts were valued at
        self._mids: dict[str, float] = {}  # their mids
        self._amounts: dict[str, tuple[Decimal, Decimal | None]] = {}  # symbol -> (lots, amount)
        self._floats: dict[str, tuple[Decimal, float]] = {}  # symbol -> (lots, its float amount)
        self._rates: dict[str, float | None] = {}  # quote currency -> its float rate to the account currency
        self._limit = 0.0  # the limits' max_gross_exposure, as a float

    def mids(self, view: RiskView, limits: RiskLimits) -> dict[str, float]:
        """Return the mids to value legs at (:func:`mids_of`); forget every amount if the ticks or limits changed.

        Also the mids the valuation converts the day's P&L and each fill's realised P&L at
        (:mod:`execution.core.valuation`): one dict per tick instead of one per valuation.

        Keyed on the latest ticks themselves (compared as a dict: the same tick objects
        compare by identity, no mid is computed): equal ticks have equal mids, so an
        amount is only reused at the mids it was valued at. ~1.5 us less than building
        the mids on every check.
        """
        if limits is not self._limits or view.last_ticks != self._ticks:
            self._forget(limits, view, mids_of(view))
        return self._mids

    def _forget(self, limits: RiskLimits, view: RiskView, mids: dict[str, float]) -> None:
        # Every amount, now valued at other limits or ticks than these.
        self._limits, self._ticks, self._mids = limits, dict(view.last_ticks), mids
        self._amounts.clear()
        self._limit = float(limits.max_gross_exposure)
        self._floats.clear()
        self._rates.clear()

    def clears(self, order: ProposedOrder, view: RiskView, limits: RiskLimits, mids: dict[str, float]) -> bool:
        """Return True when the gross exposure after ``order``, summed in floats, is under the limit by its error bound.

        The exact sum is then under the limit too (False: unsure, or a leg has no spec or rate). Every term
        is positive: the bound is relative to the sum. ``mids``: as :meth:`mids` returned them, just before.
        """
        if limits is not self._limits or mids is not self._mids:
            self._forget(limits, view, mids)
        symbol, positions, pending = order.symbol, view.positions, view.pending
        total = 0.0
        for held in positions.keys() | pending.keys() | {symbol}:
            lots = positions.get(held, _ZERO) + pending.get(held, _ZERO)
            if held == symbol:
                lots += order.signed_lots
            if lots == 0:
                continue
            known = self._floats.get(held)
            if known is None or known[0] != lots:
                spec, mid = limits.instruments.get(held), mids.get(held)
                rate = None if spec is None or mid is None else self._rate(spec.quote, limits, mids)
                if spec is None or mid is None or rate is None:
                    return False
                known = self._floats[held] = (lots, abs(float(lots)) * spec.contract_size * mid * rate)
            total += known[1]
        return total + total * ESTIMATE_ERROR < self._limit - abs(self._limit) * FLOAT_ROUNDING

    def _rate(self, currency: str, limits: RiskLimits, mids: dict[str, float]) -> float | None:
        if currency not in self._rates:
            self._rates[currency] = float_rate(currency, limits, mids)
        return self._rates[currency]

    def amount(
        self, symbol: str, lots: Decimal, view: RiskView, limits: RiskLimits, mids: dict[str, float]
    ) -> Decimal | None:
        """Return :func:`exposure` of ``lots`` of ``symbol`` at ``mids``, valuing it only if not known.

        ``mids``: as :meth:`mids` returned them for ``view`` and ``limits``, just before.
        """
        if limits is not self._limits or mids is not self._mids:
            self._forget(limits, view, mids)
        known = self._amounts.get(symbol)
        if known is not None and known[0] == lots:
            return known[1]
        amount = exposure(symbol, lots, view, limits, mids)
        self._amounts[symbol] = (lots, amount)
        return amount


def float_rate(currency: str, limits: RiskLimits, mids: Mapping[str, float]) -> float | None:
    """Return the float rate from ``currency`` to the account currency along :func:`convert`'s route (None: none)."""
    route = conversion_route(currency, limits.account_currency, limits.instruments, mids)
    if route is None:
        return None
    rate = 1.0
    for mid, multiplies in route:
        rate = rate * mid if multiplies else rate / mid
    return rate


def is_reducing(order: ProposedOrder, view: RiskView) -> bool:
    """Return True when the order only brings the symbol's position (working orders included) towards flat."""
    if order.reducing is not None:
        return order.reducing
    return _is_reducing(view.exposure_lots(order.symbol), order.signed_lots)


# ---------------------------------------------------------------------------------------
# The checks, in gate order
# ---------------------------------------------------------------------------------------


def signal_timeframe_denial(signal: Signal, limits: RiskLimits) -> Denial | None:
    """Deny a signal of another timeframe than the one that drives its symbol.

    Two models on two timeframes would otherwise fight over one position (a 1 s signal
    flipping what a 1 min signal set a second earlier). Checked before sizing: such a
    signal says nothing about the position, so it is denied for what it is.
    """
    found = _signal_timeframe(signal.symbol, signal.timeframe, limits.driving_timeframe(signal.symbol))
    return _denial(found)


def check_trading_state(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """HALTED (globally or for the symbol) denies all; REDUCING denies what does not reduce the position."""
    symbol, state = order.symbol, view.trading_state
    reducing = state == "REDUCING" and is_reducing(order, view)  # asked only where it decides
    found = _trading_state(state, symbol, symbol in view.halted_symbols, reducing)
    return _denial(found)


def check_symbol_allowed(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny symbols outside the allowed list."""
    if order.symbol not in limits.allowed_symbols:
        return Denial("symbol_allowed", f"{order.symbol} is not an allowed symbol")
    return None


def check_market_open(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny while the market is closed."""
    if not limits.market.is_open(now_ms):
        return Denial("market_open", "the market is closed")
    return None


def check_signal_ttl(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny signals older than the TTL."""
    found = _signal_ttl(now_ms - order.signal.created_at_ms, limits.signal_ttl_ms)
    return _denial(found)


def check_max_order_size(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny orders larger than the largest order size."""
    found = _max_order_size(order.quantity_lots, limits.max_order_lots)
    return _denial(found)


def stale_price(symbol: str, view: RiskView, limits: RiskLimits, now_ms: int) -> str | None:
    """Say why the symbol has no usable price (no tick, or one older than ``max_tick_age_ms``), or None."""
    tick = view.last_ticks.get(symbol)
    return _stale_price(symbol, None if tick is None else tick.time_ms, now_ms, limits.max_tick_age_ms)


def check_no_price(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny without a usable price of the symbol (:func:`stale_price`)."""
    problem = stale_price(order.symbol, view, limits, now_ms)
    return Denial("no_price", problem) if problem is not None else None


def check_max_position(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny orders that leave the symbol's position (working orders included) beyond its limit."""
    # Capital checks let an order that only reduces through.
    found = _max_position(
        view.exposure_lots(order.symbol), order.signed_lots, is_reducing(order, view), limits.max_position_lots
    )
    return _denial(found)


def check_gross_exposure(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny orders that take the gross exposure (account currency) over its limit; every leg needs a rate."""
    if is_reducing(order, view):
        return None
    symbol = order.symbol
    if symbol not in limits.instruments:
        return Denial("instrument", f"no instrument spec for {symbol}")
    legs, mids = view.leg_values, view.leg_values.mids(view, limits)
    if legs.clears(order, view, limits, mids):  # far under the limit, as most orders are: no exact sum needed
        return None
    total = _ZERO
    positions, pending = view.positions, view.pending
    for held in sorted(positions.keys() | pending.keys() | {symbol}):
        lots = positions.get(held, _ZERO) + pending.get(held, _ZERO)  # view.exposure_lots, inlined (4+ legs a check)
        if held == symbol:
            lots += order.signed_lots
        if lots == 0:
            continue
        amount = legs.amount(held, lots, view, limits, mids)
        if amount is None:
            spec = limits.instruments.get(held)
            currency = spec.quote if spec is not None else held
            return Denial("no_rate", f"no rate to value {held} ({currency} -> {limits.account_currency})")
        total = _add(total, amount)
    if total > limits.max_gross_exposure:
        return Denial("gross_exposure", f"gross exposure would be {total:.2f} (limit {limits.max_gross_exposure})")
    return None


def check_price_collar(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny without a usable price (:func:`stale_price`), on a spread too wide, or a limit price far from mid."""
    problem = stale_price(order.symbol, view, limits, now_ms)
    if problem is not None:
        return Denial("price_collar", problem)
    tick = view.last_ticks[order.symbol]
    breach = _collar_breach(tick.bid, tick.ask, order.limit_price, limits.price_collar_bps)
    if breach is None:
        return None
    if breach[0] == "spread":
        return Denial("price_collar", f"spread {breach[1]:.1f} bps exceeds the collar {limits.price_collar_bps}")
    return Denial("price_collar", f"limit price is {breach[1]:.1f} bps from mid")


def check_order_rate(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny when the last second already holds the allowed number of orders."""
    # Times are in order, so only the few at the front can have left the window: O(expired), not O(all).
    recent = _rate_breach(view.order_times_ms, now_ms, limits.max_orders_per_second)
    if recent is not None:
        return Denial("order_rate", f"{recent} orders in the last second (limit {limits.max_orders_per_second})")
    return None


def check_daily_loss(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny what does not reduce once the day's loss reaches the limit (or cannot be valued)."""
    if is_reducing(order, view) or view.day_pnl.is_above(limits, now_ms, -limits.daily_loss_limit):
        return None  # the day's loss is short of the limit
    pnl = view.day_pnl.daily_pnl(limits, now_ms)
    if pnl is None:
        return Denial("no_rate", f"the day's P&L cannot be valued in {limits.account_currency} (a rate is missing)")
    if pnl <= -limits.daily_loss_limit:
        return Denial("daily_loss", f"daily P&L {pnl:.2f} breaches -{limits.daily_loss_limit}", "trading")
    return None


def check_consecutive_rejects(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny and halt trading after too many broker rejects in a row."""
    found = _consecutive_rejects(view.consecutive_rejects, limits.max_consecutive_rejects)
    return _denial(found)


def check_flash_crash(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny and halt the symbol when its mid moved more than the threshold within the window."""
    window = view.price_windows.get(order.symbol)
    move = window.move_pct() if window is not None else 0.0
    found = _flash_crash(order.symbol, move, limits.flash_crash_pct, limits.flash_crash_window_ms)
    return _denial(found)


CHECKS: Final[tuple[Check, ...]] = (
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


# An operator's reduce-only order (flatten): the gate without the trading state (it must
# work while HALTED), the signal's age and the breakers' trips; price, collar and rate stay.
OPERATOR_CHECKS: Final[tuple[Check, ...]] = (
    check_symbol_allowed,
    check_market_open,
    check_max_order_size,
    check_no_price,
    check_price_collar,
    check_order_rate,
)


def operator_denial(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Run the operator checks on a reduce-only order; return the first denial, or None."""
    if not is_reducing(order, view):
        return Denial("reduce_only", "an operator's flatten order must only reduce the position")
    return _first_of(OPERATOR_CHECKS, order, view, limits, now_ms)


def first_denial(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Run every check in order; return the first denial, or None when the order may go."""
    return _first_of(CHECKS, order, view, limits, now_ms)


def _first_of(
    checks: tuple[Check, ...], order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int
) -> Denial | None:
    order.reducing = is_reducing(order, view)  # asked by several checks: one answer for the pass
    try:
        for check in checks:
            if (denial := check(order, view, limits, now_ms)) is not None:
                return denial
        return None
    finally:
        order.reducing = None
