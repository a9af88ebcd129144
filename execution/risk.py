"""Pre-trade risk checks: small pure functions that return a denial or ``None``.

The gate (:func:`first_denial`) runs them in a fixed order and stops at the first
denial; the order of :data:`CHECKS` is the documented order (see the README). A check
reads the proposed order, the risk view the engine keeps and the limits; it changes
nothing. Three checks also trip a breaker: the daily loss limit and consecutive broker
rejects halt all trading, the flash-crash guard halts one symbol; the engine applies
that (``Denial.halts``).
"""

from __future__ import annotations

import decimal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from tickwave.config import ExecutionSettings
from tickwave.contracts import Side, Signal, Tick, TradingState
from tickwave.money import MONEY_CONTEXT, to_decimal

ACCOUNT_CURRENCY = "USD"
# Converting at a rate is a division and cannot be exact (tickwave.money traps rounding):
# it is done once, after the exact sums in the quote currency, to 28 significant digits.
CONVERSION_CONTEXT = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN, traps=[decimal.InvalidOperation])
_BPS = 10_000.0


@dataclass(frozen=True)
class RiskLimits:
    """The limits the checks enforce, from the ``execution`` settings."""

    allowed_symbols: frozenset[str]
    market_hours: Literal["fx", "always"]
    signal_ttl_ms: int
    max_order_lots: float
    max_position_lots: float
    max_gross_exposure: Decimal
    contract_size: Decimal
    max_tick_age_ms: int
    price_collar_bps: float
    max_orders_per_second: int
    daily_loss_limit: Decimal
    max_consecutive_rejects: int
    flash_crash_pct: float
    flash_crash_window_ms: int

    @classmethod
    def from_settings(cls, settings: ExecutionSettings) -> RiskLimits:
        """Build the limits from the ``execution`` settings."""
        return cls(
            allowed_symbols=frozenset(settings.allowed_symbols),
            market_hours=settings.market_hours,
            signal_ttl_ms=settings.signal_ttl_ms,
            max_order_lots=settings.max_order_lots,
            max_position_lots=settings.max_position_lots,
            max_gross_exposure=to_decimal(settings.max_gross_exposure),
            contract_size=to_decimal(settings.contract_size),
            max_tick_age_ms=settings.max_tick_age_ms,
            price_collar_bps=settings.price_collar_bps,
            max_orders_per_second=settings.max_orders_per_second,
            daily_loss_limit=to_decimal(settings.daily_loss_limit),
            max_consecutive_rejects=settings.max_consecutive_rejects,
            flash_crash_pct=settings.flash_crash_pct,
            flash_crash_window_ms=settings.flash_crash_window_ms,
        )


class PriceWindow:
    """The lowest and highest mid of one symbol over the last ``window_ms`` (O(1) amortised)."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        # Monotonic deques of (time_ms, mid): increasing mids for the minimum, decreasing for the maximum.
        self._low: deque[tuple[int, float]] = deque()
        self._high: deque[tuple[int, float]] = deque()

    def update(self, time_ms: int, mid: float) -> None:
        """Add one mid and forget those older than the window."""
        while self._low and self._low[-1][1] >= mid:
            self._low.pop()
        self._low.append((time_ms, mid))
        while self._high and self._high[-1][1] <= mid:
            self._high.pop()
        self._high.append((time_ms, mid))
        horizon = time_ms - self.window_ms
        while self._low[0][0] < horizon:
            self._low.popleft()
        while self._high[0][0] < horizon:
            self._high.popleft()

    def move_pct(self) -> float:
        """Return the high-low range over the window as a percentage of the low (0 when empty)."""
        if not self._low:
            return 0.0
        low, high = self._low[0][1], self._high[0][1]
        return (high - low) / low * 100.0


@dataclass
class RiskView:
    """What the checks read: kept up to date by the engine, never changed by a check."""

    trading_state: TradingState = "ACTIVE"
    halted_symbols: set[str] = field(default_factory=set)
    positions: dict[str, Decimal] = field(default_factory=dict)
    pending: dict[str, Decimal] = field(default_factory=dict)  # signed lots of working orders not yet filled
    last_ticks: dict[str, Tick] = field(default_factory=dict)
    order_times_ms: deque[int] = field(default_factory=deque)
    daily_pnl: Decimal = Decimal(0)
    consecutive_rejects: int = 0
    price_windows: dict[str, PriceWindow] = field(default_factory=dict)

    def position(self, symbol: str) -> Decimal:
        """Return the signed filled position of ``symbol`` in lots."""
        return self.positions.get(symbol, Decimal(0))

    def exposure_lots(self, symbol: str) -> Decimal:
        """Return the position as if every working order filled: what the limits must hold for."""
        return self.positions.get(symbol, Decimal(0)) + self.pending.get(symbol, Decimal(0))


@dataclass(frozen=True)
class ProposedOrder:
    """The sized order a signal asks for, before the gate."""

    signal: Signal
    side: Side
    quantity_lots: float
    limit_price: float | None = None

    @property
    def signed_lots(self) -> Decimal:
        """Return the quantity with the sign of its side."""
        lots = to_decimal(self.quantity_lots)
        return lots if self.side == "buy" else -lots


@dataclass(frozen=True)
class Denial:
    """Why the gate refused an order, and which breaker (if any) it trips."""

    check: str
    reason: str
    halts: Literal["", "trading", "symbol"] = ""


Check = Callable[[ProposedOrder, RiskView, RiskLimits, int], "Denial | None"]


def account_value(symbol: str, quote_amount: Decimal, mid: float) -> Decimal:
    """Convert an amount in ``symbol``'s quote currency to the account currency (USD).

    USD-quoted symbols (EURUSD, XAUUSD) need nothing; USD-based ones (USDJPY) divide by
    the mid. Crosses are taken as USD-quoted: an approximation the README states.
    """
    if symbol.startswith(ACCOUNT_CURRENCY) and not symbol.endswith(ACCOUNT_CURRENCY):
        return CONVERSION_CONTEXT.divide(quote_amount, to_decimal(mid))
    return quote_amount


def exposure(symbol: str, lots: Decimal, mid: float, contract_size: Decimal) -> Decimal:
    """Return the absolute notional of a position in the account currency."""
    units = MONEY_CONTEXT.multiply(abs(lots), contract_size)
    return account_value(symbol, MONEY_CONTEXT.multiply(units, to_decimal(mid)), mid)


def is_market_open(market_hours: Literal["fx", "always"], now_ms: int) -> bool:
    """Return False from Friday 21:00 to Sunday 21:00 UTC for ``fx``; ``always`` never closes."""
    if market_hours == "always":
        return True
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    weekday, hour = now.weekday(), now.hour  # Monday is 0
    if weekday == 5:
        return False
    if weekday == 4:
        return hour < 21
    if weekday == 6:
        return hour >= 21
    return True


# ---------------------------------------------------------------------------------------
# The checks, in gate order
# ---------------------------------------------------------------------------------------


def check_trading_state(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """HALTED (globally or for the symbol) denies all; REDUCING denies what grows the position."""
    symbol = order.signal.symbol
    if view.trading_state == "HALTED":
        return Denial("trading_state", "trading is HALTED")
    if symbol in view.halted_symbols:
        return Denial("trading_state", f"{symbol} is HALTED")
    if view.trading_state == "REDUCING":
        current = view.exposure_lots(symbol)
        after = current + order.signed_lots
        if abs(after) >= abs(current) or (after != 0 and (after > 0) != (current > 0)):
            return Denial("trading_state", "REDUCING: the order would not reduce the position")
    return None


def check_symbol_allowed(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny symbols outside the allowed list."""
    if order.signal.symbol not in limits.allowed_symbols:
        return Denial("symbol_allowed", f"{order.signal.symbol} is not an allowed symbol")
    return None


def check_market_open(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny while the market is closed."""
    if not is_market_open(limits.market_hours, now_ms):
        return Denial("market_open", "the market is closed")
    return None


def check_signal_ttl(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny signals older than the TTL."""
    age_ms = now_ms - order.signal.created_at_ms
    if age_ms > limits.signal_ttl_ms:
        return Denial("signal_ttl", f"signal is {age_ms} ms old (ttl {limits.signal_ttl_ms} ms)")
    return None


def check_max_order_size(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny orders larger than the largest order size."""
    if order.quantity_lots > limits.max_order_lots:
        return Denial("max_order_size", f"{order.quantity_lots} lots exceeds {limits.max_order_lots}")
    return None


def check_max_position(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny orders that leave the symbol's position (working orders included) beyond its limit."""
    after = view.exposure_lots(order.signal.symbol) + order.signed_lots
    if abs(after) > to_decimal(limits.max_position_lots):
        return Denial("max_position", f"position would be {after} lots (limit {limits.max_position_lots})")
    return None


def check_gross_exposure(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny orders that take the gross exposure over its limit (needs a price for every position)."""
    symbol = order.signal.symbol
    total = Decimal(0)
    for held in view.positions.keys() | view.pending.keys():
        lots = view.exposure_lots(held)
        if held == symbol or lots == 0:
            continue
        tick = view.last_ticks.get(held)
        if tick is None:
            return Denial("gross_exposure", f"no price for held {held}")
        total = MONEY_CONTEXT.add(total, exposure(held, lots, tick.mid, limits.contract_size))
    tick = view.last_ticks.get(symbol)
    if tick is None:
        return Denial("gross_exposure", f"no price for {symbol}")
    after = view.exposure_lots(symbol) + order.signed_lots
    total = MONEY_CONTEXT.add(total, exposure(symbol, after, tick.mid, limits.contract_size))
    if total > limits.max_gross_exposure:
        return Denial("gross_exposure", f"gross exposure would be {total:.2f} (limit {limits.max_gross_exposure})")
    return None


def check_price_collar(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny without a fresh tick, when the spread is too wide, or a limit price is far from mid."""
    tick = view.last_ticks.get(order.signal.symbol)
    if tick is None:
        return Denial("price_collar", f"no tick for {order.signal.symbol}")
    if now_ms - tick.time_ms > limits.max_tick_age_ms:
        return Denial("price_collar", f"latest tick is {now_ms - tick.time_ms} ms old")
    spread_bps = (tick.ask - tick.bid) / tick.mid * _BPS
    if spread_bps > limits.price_collar_bps:
        return Denial("price_collar", f"spread {spread_bps:.1f} bps exceeds the collar {limits.price_collar_bps}")
    if order.limit_price is not None:
        distance_bps = abs(order.limit_price - tick.mid) / tick.mid * _BPS
        if distance_bps > limits.price_collar_bps:
            return Denial("price_collar", f"limit price is {distance_bps:.1f} bps from mid")
    return None


def check_order_rate(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny when the last second already holds the allowed number of orders."""
    # Times are in order, so only the few at the front can have left the window: O(expired), not O(all).
    expired = 0
    for sent_ms in view.order_times_ms:
        if sent_ms > now_ms - 1000:
            break
        expired += 1
    recent = len(view.order_times_ms) - expired
    if recent >= limits.max_orders_per_second:
        return Denial("order_rate", f"{recent} orders in the last second (limit {limits.max_orders_per_second})")
    return None


def check_daily_loss(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny and halt trading once the day's loss reaches the limit."""
    if view.daily_pnl <= -limits.daily_loss_limit:
        return Denial("daily_loss", f"daily P&L {view.daily_pnl:.2f} breaches -{limits.daily_loss_limit}", "trading")
    return None


def check_consecutive_rejects(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny and halt trading after too many broker rejects in a row."""
    if view.consecutive_rejects >= limits.max_consecutive_rejects:
        return Denial("consecutive_rejects", f"{view.consecutive_rejects} broker rejects in a row", "trading")
    return None


def check_flash_crash(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Deny and halt the symbol when its mid moved more than the threshold within the window."""
    window = view.price_windows.get(order.signal.symbol)
    move = window.move_pct() if window is not None else 0.0
    if move > limits.flash_crash_pct:
        return Denial(
            "flash_crash",
            f"{order.signal.symbol} moved {move:.2f}% within {limits.flash_crash_window_ms} ms",
            "symbol",
        )
    return None


CHECKS: tuple[Check, ...] = (
    check_trading_state,
    check_symbol_allowed,
    check_market_open,
    check_signal_ttl,
    check_max_order_size,
    check_max_position,
    check_gross_exposure,
    check_price_collar,
    check_order_rate,
    check_daily_loss,
    check_consecutive_rejects,
    check_flash_crash,
)


def first_denial(order: ProposedOrder, view: RiskView, limits: RiskLimits, now_ms: int) -> Denial | None:
    """Run every check in order; return the first denial, or None when the order may go."""
    for check in CHECKS:
        denial = check(order, view, limits, now_ms)
        if denial is not None:
            return denial
    return None
