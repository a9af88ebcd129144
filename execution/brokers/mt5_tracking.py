"""The MT5 orders the broker follows until they end: placed orders, partial fills, unanswered sends.

A placed order (retcode 10008) fills later; a partial fill keeps it working, each new deal
reported once with exact cumulative lots; a send that got no answer (the IPC link broke)
is looked up by its comment at the next poll, and expired when the server still has no
such order after ``UNANSWERED_EXPIRY_MS``. It is never re-sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from adapters.mt5.terminal import TerminalError
from execution.core.broker import (
    EXPIRED_PREFIX,
    BrokerEvent,
    BrokerOrder,
    OrderIdentity,
    accepted,
    canceled,
    cumulative_lots,
    fill_events,
    rejected,
)
from execution.core.state import OrderStatus
from tickwave.clock import Clock

logger = logging.getLogger(__name__)

POLL_EVERY_MS = 500
UNANSWERED_EXPIRY_MS = 10_000  # a send with no answer and no trace at the server after this is expired
STILL_WORKING = (OrderStatus.SUBMITTED, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


@dataclass
class _Working:
    """An order the broker follows until it ends: its ticket (0 until known), since when, fills reported."""

    order: OrderIdentity
    ticket: int
    since_ms: int
    fills_reported: int = 0


class WorkingOrders:
    """Follows orders at the terminal until they end; ``orders`` reads the terminal's (see ``Mt5History``)."""

    def __init__(self, clock: Clock, orders: Callable[[int | None], Mapping[str, BrokerOrder]]) -> None:
        self.clock = clock
        self.orders = orders
        # client_order_id -> what is tracked until the order ends (ticket 0: the send got no answer)
        self._working: dict[str, _Working] = {}
        self._last_poll_ms = 0

    def track(self, order: OrderIdentity, ticket: int, since_ms: int | None = None, fills_reported: int = 0) -> None:
        """Follow ``order`` (ticket 0: a send with no answer), from ``since_ms`` (default: now)."""
        since_ms = self.clock.now_ms() if since_ms is None else since_ms
        self._working[order.client_order_id] = _Working(order, ticket, since_ms, fills_reported)

    def forget(self, client_order_id: str) -> None:
        """Stop following an order (canceled here)."""
        self._working.pop(client_order_id, None)

    def ticket_of(self, client_order_id: str) -> int:
        """The ticket of a working order: tracked, or (after a restart) looked up at the terminal; 0 if none."""
        working = self._working.get(client_order_id)
        if working is not None and working.ticket:
            return working.ticket
        try:
            found = self.orders(None).get(client_order_id)
        except TerminalError as exc:
            logger.error("order=%s: no ticket (the terminal did not answer: %s)", client_order_id, exc)
            return 0
        if found is None or found.status not in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED):
            return 0
        return int(found.broker_order_id)

    def poll(self) -> list[BrokerEvent]:
        """Pick up fills of placed orders and the outcome of unanswered sends (at most twice a second)."""
        now_ms = self.clock.now_ms()
        if not self._working or now_ms - self._last_poll_ms < POLL_EVERY_MS:
            return []
        self._last_poll_ms = now_ms
        try:
            known = self.orders(min(working.since_ms for working in self._working.values()))
        except TerminalError as exc:
            logger.warning("poll: the terminal did not answer (%s); %d orders still pending", exc, len(self._working))
            return []
        events: list[BrokerEvent] = []
        for client_order_id, working in list(self._working.items()):
            order, found = working.order, known.get(client_order_id)
            if found is None:
                if working.ticket == 0 and now_ms - working.since_ms >= UNANSWERED_EXPIRY_MS:
                    del self._working[client_order_id]  # the unanswered send never reached the server
                    events.append(
                        canceled(
                            order, EXPIRED_PREFIX + "the send got no answer and the server has no such order", now_ms
                        )
                    )
                continue
            if working.ticket == 0:  # an unanswered send did reach the server
                working.ticket = int(found.broker_order_id)
                events.append(accepted(order, found.broker_order_id, now_ms))
            events.extend(self._new_fills(working, found))
            if found.status in STILL_WORKING:
                continue  # still working: a partial fill is not the end of the order
            del self._working[client_order_id]
            if found.status == OrderStatus.REJECTED:
                events.append(rejected(order, "rejected by the server", now_ms))
            elif found.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
                events.append(canceled(order, f"{found.status} at the broker", now_ms))
        return events

    @staticmethod
    def _new_fills(working: _Working, found: BrokerOrder) -> list[BrokerEvent]:
        """The fills of ``found`` not reported yet, with exact cumulative lots (0.1 + 0.2 lots is 0.3 lots)."""
        new_fills = found.fills[working.fills_reported :]
        if not new_fills:
            return []
        events: list[BrokerEvent] = []
        totals = cumulative_lots(0.0, found.fills)[working.fills_reported :]
        for n, (fill, cumulative) in enumerate(zip(new_fills, totals, strict=True)):
            is_final = found.status == OrderStatus.FILLED and n == len(new_fills) - 1
            events.extend(fill_events(working.order, fill, cumulative, is_final))
        working.fills_reported = len(found.fills)
        return events
