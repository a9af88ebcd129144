"""The execution process section: process identity, and one sub-section per concern.

``risk`` holds the pre-trade limits and sizing (an operator may change most of them at
run time with an audited ``set_limit``), ``paper_broker`` and ``mt5_broker`` how each broker
fills or routes orders, ``reconciliation`` how often the journal is compared with the
broker, ``control`` the signed operator commands. The market calendar is its own
top-level section (:mod:`tickwave.config.market`), read by more than this process.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator

from tickwave.config.base import Section


class RiskSettings(Section):
    """Pre-trade risk limits, circuit breakers, protective stops and sizing.

    Changing a limit needs a restart or an audited ``set_limit`` control command.
    """

    allowed_symbols: tuple[str, ...] = Field(
        default=("EURUSD", "GBPUSD", "USDJPY", "USDCHF", "AUDUSD", "XAUUSD"),
        description="symbols the process may trade (JSON list in the environment)",
    )
    daily_loss_action: Literal["REDUCING", "HALTED"] = Field(
        default="REDUCING", description="trading state once the day's loss reaches daily_loss_limit"
    )
    max_position_lots: float = Field(default=1.0, gt=0, description="largest absolute position per symbol (lots)")
    max_order_lots: float = Field(default=1.0, gt=0, description="largest single order (lots)")
    lot_step: float = Field(default=0.01, gt=0, description="order sizes are multiples of this (lots)")
    min_strength: float = Field(default=0.0, ge=0, le=1, description="signals weaker than this target flat")
    max_gross_exposure: float = Field(
        default=1_000_000.0, gt=0, description="largest sum of |position| x price x contract size (account ccy)"
    )
    signal_ttl_ms: int = Field(default=5_000, gt=0, description="signals older than this are denied (ms)")
    signal_timeframe: str = Field(
        default="1m",
        pattern=r"^[0-9]+[smhd]$",
        description="bar timeframe whose signals drive each symbol's position (others are denied)",
    )
    signal_timeframes: dict[str, str] = Field(
        default_factory=dict,
        description="per-symbol driving timeframe overriding signal_timeframe (JSON object in the environment)",
    )
    max_tick_age_ms: int = Field(default=60_000, gt=0, description="a latest tick older than this is no price (ms)")
    price_collar_bps: float = Field(
        default=50.0, gt=0, description="deny when the latest spread (or a limit price) is this far from mid (bps)"
    )
    max_orders_per_second: int = Field(default=20, gt=0, description="order rate throttle (orders per second)")
    daily_loss_limit: float = Field(
        default=5_000.0, gt=0, description="day's loss (realised + change of unrealised since the rollover) limit"
    )
    max_consecutive_rejects: int = Field(default=5, gt=0, description="broker rejects in a row that halt trading")
    flash_crash_pct: float = Field(
        default=2.0, gt=0, description="a mid move over this many percent within the window halts the symbol"
    )
    flash_crash_window_ms: int = Field(default=5_000, gt=0, description="the flash-crash window (ms)")
    stop_loss_pips: float = Field(
        default=0.0, ge=0, description="protective stop this many pips (instrument pip size) from the entry; 0: off"
    )
    take_profit_pips: float = Field(
        default=0.0, ge=0, description="take profit this many pips (instrument pip size) from the entry; 0: off"
    )
    stop_pips_by_symbol: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="per symbol (stop loss, take profit) pips replacing the two above "
        '(JSON object in the environment, e.g. {"XAUUSD": [300, 600]}; 0: off)',
    )

    @field_validator("stop_pips_by_symbol")
    @classmethod
    def _stop_pips_are_distances(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for symbol, pips in value.items():
            if not all(math.isfinite(p) and p >= 0 for p in pips):
                raise ValueError(f"{symbol}: stop pips must be finite and >= 0, got {list(pips)}")
        return value

    def stop_pips(self, symbol: str) -> tuple[float, float]:
        """Return the (stop loss, take profit) pips of ``symbol``: its own, else the defaults (0 = off)."""
        return self.stop_pips_by_symbol.get(symbol, (self.stop_loss_pips, self.take_profit_pips))


class PaperBrokerSettings(Section):
    """How the paper broker fills: a simulated account on the live quotes."""

    slippage_bps: float = Field(default=0.5, ge=0, description="paper fills this much worse than the quote")
    latency_ms: int = Field(default=0, ge=0, description="paper orders fill this long after submission")
    initial_cash: float = Field(default=100_000.0, gt=0, description="paper account starting cash")


class MT5BrokerSettings(Section):
    """How orders are routed to a MetaTrader 5 terminal (its connection: the top-level ``mt5`` section)."""

    magic: int = Field(default=770_077, ge=0, description="MT5 magic number marking Tickwave's orders")
    deviation_points: int = Field(default=20, ge=0, description="MT5 allowed slippage (points)")
    max_retries: int = Field(default=3, ge=0, description="MT5 retries of a requote or busy answer")
    server_stops: bool = Field(
        default=True, description="MT5: also set the stops at the trade server (sl/tp), a backstop while down"
    )
    server_stop_extra_pips: float = Field(
        default=5.0, ge=0, description="MT5: the server's sl/tp are this many pips beyond the engine's (acting first)"
    )


class ReconciliationSettings(Section):
    """Comparing the journal with the broker's orders and positions."""

    interval_s: float = Field(
        default=10.0, gt=0, description="reconcile journal and broker this often (and after any broker reject), s"
    )
    window_s: float = Field(
        default=86_400.0,
        gt=0,
        description="a periodic reconciliation compares orders created this recently and "
        "every working one (the start compares all), s",
    )


class ControlSettings(Section):
    """Signed operator commands (kill switch, flatten, ``set_limit``) sent to the running process."""

    reply_timeout_s: float = Field(default=10.0, gt=0, description="how long the CLI waits for the process to answer")
    max_age_s: float = Field(
        default=60.0, gt=0, description="a signed control command older (or newer) than this is refused as a replay, s"
    )


class ExecutionSettings(Section):
    """The execution process: broker choice, identity, journal and its sub-sections."""

    broker: Literal["paper", "mt5"] = Field(default="paper", description="where orders go: paper or mt5")
    consumer_group: str = Field(default="tickwave-execution", description="Kafka consumer group of the process")
    instance_id: str = Field(default="execution-1", description="names this process in logs, events and groups")
    account_currency: str = Field(default="USD", description="currency of P&L, exposure and the loss limit")
    journal_fsync: bool = Field(
        default=True, description="fsync the journal before each broker call (off only for throwaway tests)"
    )
    journal_segment_mb: int = Field(
        default=64,
        ge=0,
        description="seal the journal's file into a compressed segment past this size, MB (0: one file); "
        "start-up reads every segment",
    )
    risk: RiskSettings = RiskSettings()
    paper_broker: PaperBrokerSettings = PaperBrokerSettings()
    mt5_broker: MT5BrokerSettings = MT5BrokerSettings()
    reconciliation: ReconciliationSettings = ReconciliationSettings()
    control: ControlSettings = ControlSettings()
