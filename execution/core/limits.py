"""The limits the pre-trade risk checks enforce, built once from the ``execution.risk`` settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from tickwave.config import ExecutionSettings, MarketSettings, default_symbols
from tickwave.instruments import Instrument, registry
from tickwave.market import MarketCalendar
from tickwave.money import to_decimal


@dataclass(frozen=True)
class RiskLimits:
    """The limits the checks enforce, from the ``execution`` settings."""

    allowed_symbols: frozenset[str]
    market: MarketCalendar
    signal_ttl_ms: int
    max_order_lots: float
    max_position_lots: float
    max_gross_exposure: Decimal
    instruments: Mapping[str, Instrument]
    account_currency: str
    max_tick_age_ms: int
    price_collar_bps: float
    max_orders_per_second: int
    daily_loss_limit: Decimal
    daily_loss_action: Literal["REDUCING", "HALTED"]
    max_consecutive_rejects: int
    flash_crash_pct: float
    flash_crash_window_ms: int
    stop_loss_pips: float = 0.0
    take_profit_pips: float = 0.0
    stop_pips_by_symbol: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    signal_timeframe: str = "1m"
    signal_timeframes: Mapping[str, str] = field(default_factory=dict)

    def stop_pips(self, symbol: str) -> tuple[float, float]:
        """Return the (stop loss, take profit) pips of ``symbol``: its own, else the defaults (0 = off)."""
        return self.stop_pips_by_symbol.get(symbol, (self.stop_loss_pips, self.take_profit_pips))

    def driving_timeframe(self, symbol: str) -> str:
        """The timeframe whose signals drive ``symbol``'s position (one driver per symbol)."""
        return self.signal_timeframes.get(symbol, self.signal_timeframe)

    @classmethod
    def from_settings(
        cls,
        settings: ExecutionSettings,
        instruments: Mapping[str, Instrument] | None = None,
        market: MarketSettings | None = None,
    ) -> RiskLimits:
        """Build the limits from the ``execution`` settings, the instrument registry and the market calendar.

        The registry defaults to the built-in symbols, the calendar to the ``market`` section's defaults.
        """
        return cls(
            allowed_symbols=frozenset(settings.risk.allowed_symbols),
            market=MarketCalendar.from_settings(market if market is not None else MarketSettings()),
            signal_ttl_ms=settings.risk.signal_ttl_ms,
            max_order_lots=settings.risk.max_order_lots,
            max_position_lots=settings.risk.max_position_lots,
            max_gross_exposure=to_decimal(settings.risk.max_gross_exposure),
            instruments=instruments if instruments is not None else registry(default_symbols()),
            account_currency=settings.account_currency,
            max_tick_age_ms=settings.risk.max_tick_age_ms,
            price_collar_bps=settings.risk.price_collar_bps,
            max_orders_per_second=settings.risk.max_orders_per_second,
            daily_loss_limit=to_decimal(settings.risk.daily_loss_limit),
            daily_loss_action=settings.risk.daily_loss_action,
            max_consecutive_rejects=settings.risk.max_consecutive_rejects,
            flash_crash_pct=settings.risk.flash_crash_pct,
            flash_crash_window_ms=settings.risk.flash_crash_window_ms,
            stop_loss_pips=settings.risk.stop_loss_pips,
            take_profit_pips=settings.risk.take_profit_pips,
            stop_pips_by_symbol=dict(settings.risk.stop_pips_by_symbol),
            signal_timeframe=settings.risk.signal_timeframe,
            signal_timeframes=dict(settings.risk.signal_timeframes),
        )
