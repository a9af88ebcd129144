"""Reconciliation on start: bring the journal in line with the broker, report every difference.

Pure: it compares the orders the journal knows with what the broker reports and returns
(a) the events that were missing from the journal (an ack, fills, a reject or cancel
that happened while the process was down or between the broker call and the journal
write), and (b) a plain description of every difference. The broker is the truth for
what happened to an order; the journal is the truth for which orders Tickwave meant to
place. An order recorded but unknown to the broker (the crash came between the journal
fsync and the broker call) is expired, never re-sent: its signal has aged and a human
can see the difference in the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from execution.core.broker import (
    EXPIRED_PREFIX,
    BrokerEvent,
    BrokerOrder,
    accepted,
    canceled,
    cumulative_lots,
    fill_events,
    rejected,
)
from execution.core.state import Order, OrderStatus
from tickwave.contracts import OrderSubmitted
from tickwave.money import to_decimal


@dataclass
class Reconciliation:
    """What reconciling found: events to record and apply, and differences to report."""

    events: list[BrokerEvent] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    adopted: list[OrderSubmitted] = field(default_factory=list)  # broker orders the journal lacked


def reconcile_orders(
    journal_orders: Mapping[str, Order], broker_orders: Mapping[str, BrokerOrder], now_ms: int, venue: str = ""
) -> Reconciliation:
    """Return the events missing from the journal and the differences found (``venue``: the broker's)."""
    result = Reconciliation()
    for client_order_id, order in journal_orders.items():
        at_broker = broker_orders.get(client_order_id)
        if at_broker is None:
            if not order.is_terminal:
                result.events.append(canceled(order, EXPIRED_PREFIX + "not found at the broker after restart", now_ms))
                result.differences.append(f"{client_order_id}: in the journal ({order.status}), unknown to the broker")
            elif order.filled_lots > 0:
                result.differences.append(f"{client_order_id}: journal has fills, the broker has no such order")
            continue
        _catch_up(order, at_broker, now_ms, result)
    for client_order_id, at_broker in broker_orders.items():
        if client_order_id not in journal_orders:
            result.adopted.append(adopted_submission(at_broker, now_ms, venue))
            result.differences.append(
                f"{client_order_id}: at the broker ({at_broker.status}, {at_broker.filled_lots} lots "
                f"{at_broker.side} {at_broker.symbol}), unknown to the journal: adopted by its client order id"
            )
    return result


def adopted_submission(at_broker: BrokerOrder, now_ms: int, venue: str = "") -> OrderSubmitted:
    """The OrderSubmitted the journal lacks for an order the broker has (the next pass catches up its fills)."""
    return OrderSubmitted(
        client_order_id=at_broker.client_order_id,
        signal_id=f"adopted-{at_broker.client_order_id}",
        symbol=at_broker.symbol,
        model_id="unknown (adopted at reconciliation)",
        model_version=0,
        event_at_ms=now_ms,
        side=at_broker.side,
        quantity_lots=at_broker.quantity_lots,
        order_type="market",
        venue=venue,
    )


def _catch_up(order: Order, at_broker: BrokerOrder, now_ms: int, result: Reconciliation) -> None:
    missing_fills = [fill for fill in at_broker.fills if fill.fill_id not in order.fill_ids]
    if order.is_terminal:
        if missing_fills or abs(at_broker.filled_lots - order.filled_lots) > 1e-9:
            result.differences.append(
                f"{order.client_order_id}: journal says {order.status} with {order.filled_lots} lots, "
                f"the broker {at_broker.status} with {at_broker.filled_lots} lots"
            )
        return
    caught_up = False
    if order.status == OrderStatus.SUBMITTED and at_broker.status != OrderStatus.REJECTED:
        result.events.append(accepted(order, at_broker.broker_order_id, now_ms))
        caught_up = True
    for fill, cumulative in zip(missing_fills, cumulative_lots(order.filled_lots, missing_fills), strict=True):
        is_final = at_broker.status == OrderStatus.FILLED and fill is missing_fills[-1]
        result.events.extend(fill_events(order, fill, cumulative, is_final))
        caught_up = True
    if at_broker.status == OrderStatus.REJECTED:
        result.events.append(rejected(order, at_broker.reason or "rejected (found on reconciliation)", now_ms))
        caught_up = True
    elif at_broker.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
        prefix = EXPIRED_PREFIX if at_broker.status == OrderStatus.EXPIRED else ""
        result.events.append(canceled(order, prefix + (at_broker.reason or "canceled at the broker"), now_ms))
        caught_up = True
    if caught_up:
        result.differences.append(
            f"{order.client_order_id}: journal had {order.status}, broker had {at_broker.status}; journal caught up"
        )


def position_differences(engine_positions: Mapping[str, Decimal], broker_positions: Mapping[str, Decimal]) -> list[str]:
    """Return a line per symbol whose net position differs between the journal and the broker."""
    differences = []
    for symbol in sorted(set(engine_positions) | set(broker_positions)):
        mine = engine_positions.get(symbol, Decimal(0))
        theirs = to_decimal(broker_positions.get(symbol, Decimal(0)))
        if mine != theirs:
            differences.append(f"{symbol}: journal position {mine} lots, broker {theirs} lots")
    return differences
