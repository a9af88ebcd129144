"""Orders, fills, risk events and control commands on the bus."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Literal

import msgspec

from tickwave.contracts.base import (
    EpochMs,
    Int64,
    Message,
    Positive,
    Side,
    Symbol,
    TradingState,
    require_finite,
    require_positive,
)
from tickwave.contracts.core import stable_id


class OrderIntent(Message, frozen=True, tag="order_intent.v1"):
    """A sized order the execution process wants to place, before risk checks."""

    client_order_id: str
    signal_id: str
    symbol: Symbol
    side: Side
    quantity_lots: Positive
    order_type: Literal["market", "limit"]
    model_id: str
    model_version: Int64
    created_at_ms: EpochMs
    limit_price: Positive | None = None

    def __post_init__(self) -> None:
        """Require a positive finite quantity and a price for limit orders."""
        # One chained comparison for a market order, the decision path's case (NaN fails it): ~1 us saved.
        if self.order_type == "market" and self.limit_price is None and 0.0 < self.quantity_lots < math.inf:
            return
        require_finite(self, "quantity_lots", "limit_price")
        require_positive(self, "quantity_lots", "limit_price")
        if self.order_type == "limit" and self.limit_price is None:
            raise ValueError("a limit order needs limit_price")


class _OrderEvent(Message, frozen=True):
    """Fields every order event carries, so each is traceable to its signal and model."""

    client_order_id: str
    signal_id: str
    symbol: Symbol
    model_id: str
    model_version: Int64
    event_at_ms: EpochMs

    @property
    def event_id(self) -> str:
        """A deterministic id: one event of a kind per order and time."""
        return stable_id(type(self).__name__, self.client_order_id, self.event_at_ms)


class OrderSubmitted(_OrderEvent, frozen=True, tag="order_submitted.v1"):
    """The order was recorded in the journal and sent to the broker.

    ``venue`` names where it went (``paper``, ``mt5:<trade server>``). It is ``UNSET``, and
    then absent from the JSON, on events journaled before it existed: a default of ``""``
    would add ``"venue":""`` when such an event is encoded again (a republished journal
    tail, an audit replay), and the audit hash chain covers the exact bytes.
    """

    side: Side
    quantity_lots: Positive
    order_type: Literal["market", "limit"]
    limit_price: Positive | None = None
    venue: str | msgspec.UnsetType = msgspec.UNSET

    @property
    def venue_name(self) -> str:
        """Return the venue, ``""`` when the event predates it."""
        return self.venue or ""


class OrderAccepted(_OrderEvent, frozen=True, tag="order_accepted.v1"):
    """The broker accepted the order."""

    broker_order_id: str


class OrderRejected(_OrderEvent, frozen=True, tag="order_rejected.v1"):
    """The broker refused the order."""

    reason: str
    broker_code: Int64 | None = None


class OrderFilled(_OrderEvent, frozen=True, tag="order_filled.v1"):
    """The order was filled, wholly (``is_final``) or in part."""

    fill_id: str
    fill_price: Positive
    fill_lots: Positive
    cumulative_lots: Positive
    is_final: bool

    def __post_init__(self) -> None:
        """Require positive finite price and quantities."""
        # One chained comparison on the fill path (NaN fails every comparison); the checks below name the field.
        if (
            0.0 < self.fill_price < math.inf
            and 0.0 < self.fill_lots < math.inf
            and 0.0 < self.cumulative_lots < math.inf
        ):
            return
        require_finite(self, "fill_price", "fill_lots", "cumulative_lots")
        require_positive(self, "fill_price", "fill_lots", "cumulative_lots")


class OrderCanceled(_OrderEvent, frozen=True, tag="order_canceled.v1"):
    """The order was canceled (by a halt, an expiry or the operator)."""

    reason: str


class OrderDenied(_OrderEvent, frozen=True, tag="order_denied.v1"):
    """The pre-trade risk gate refused the order before it reached a broker."""

    reason: str
    check: str


OrderEvent = OrderSubmitted | OrderAccepted | OrderRejected | OrderFilled | OrderCanceled | OrderDenied


class Fill(Message, frozen=True, tag="fill.v1"):
    """One execution of an order at the broker, and what the execution engine booked for it.

    The booking (added compatibly: ``UNSET``, and then absent from the JSON, on records
    written before it existed, so they decode and encode again to the same bytes) is the
    engine's one accounting rule (``execution.core.positions.Book.book``): the symbol's position
    before and after the fill in lots, the open lots' entry value (lots x entry price,
    first-in first-out) after it, the realised P&L in the quote currency and in the account
    currency (at the live mids when booked, to 18 decimals; ``None`` when no rate was known),
    the round trip the fill belongs to (for a flip: the one it closes) and the one it opens
    (its own id from flat or on a flip, else ``""``). Exact decimals, sent as JSON strings.
    """

    fill_id: str
    client_order_id: str
    signal_id: str
    symbol: Symbol
    side: Side
    price: Positive
    quantity_lots: Positive
    commission: float
    filled_at_ms: EpochMs
    model_id: str
    model_version: Int64
    broker_deal_id: str = ""
    position_before_lots: Decimal | msgspec.UnsetType = msgspec.UNSET
    position_after_lots: Decimal | msgspec.UnsetType = msgspec.UNSET
    entry_value_after: Decimal | msgspec.UnsetType = msgspec.UNSET
    realized_pnl_quote: Decimal | msgspec.UnsetType = msgspec.UNSET
    realized_pnl_account: Decimal | msgspec.UnsetType | None = msgspec.UNSET
    round_trip_id: str | msgspec.UnsetType = msgspec.UNSET
    opens_round_trip_id: str | msgspec.UnsetType = msgspec.UNSET

    @property
    def is_booked(self) -> bool:
        """Return whether the record carries the engine's booking (records written before it do not)."""
        return self.round_trip_id is not msgspec.UNSET

    def __post_init__(self) -> None:
        """Require positive finite price and quantity."""
        # One chained comparison on the fill path (NaN fails every comparison); the checks below name the field.
        if (
            0.0 < self.price < math.inf
            and 0.0 < self.quantity_lots < math.inf
            and -math.inf < self.commission < math.inf
        ):
            return
        require_finite(self, "price", "quantity_lots", "commission")
        require_positive(self, "price", "quantity_lots")


class RiskEvent(Message, frozen=True, tag="risk_event.v1"):
    """A risk limit breach, circuit breaker, halt or resume."""

    risk_event_id: str
    kind: str
    severity: Literal["info", "warning", "critical"]
    trading_state: TradingState
    detail: str
    occurred_at_ms: EpochMs
    symbol: str = ""
    check: str = ""


class ControlCommand(Message, frozen=True, tag="control_command.v1"):
    """An operator's command to the execution process (audited on the bus)."""

    command_id: str
    command: Literal["halt", "reduce", "resume", "status", "set_limit", "flatten"]
    issued_by: str
    issued_at_ms: EpochMs
    reason: str = ""
    symbol: str = ""
    params: dict[str, str] = msgspec.field(default_factory=dict)
