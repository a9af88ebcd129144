"""What the MT5 terminal knows of Tickwave's orders and positions (found by ``magic`` and ``comment``).

Reads ``history_orders_get``, ``orders_get`` and ``history_deals_get`` back into
:class:`~execution.core.broker.BrokerOrder` records (a hedging close sends one MT5 order
per position, all with the same comment: merged back into one order), and
``positions_get`` into net lots per symbol. A position closed by the trade server (stop
loss, take profit, stop out) shows as an order of that reason with our magic and no
comment of ours: it is reported as ``mt5-sl-<ticket>`` / ``mt5-tp-<ticket>`` /
``mt5-so-<ticket>``, so reconciliation adopts it with its fill.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from adapters.mt5.api import Constants
from adapters.mt5.terminal import Terminal
from execution.core.broker import BrokerFill, BrokerOrder, fill_id_for
from execution.core.state import OrderStatus
from tickwave.config import ExecutionSettings
from tickwave.money import MONEY_CONTEXT, exact_sum, to_decimal

C = Constants
SERVER_CLOSE_REASONS = {C.ORDER_REASON_SL: "sl", C.ORDER_REASON_TP: "tp", C.ORDER_REASON_SO: "so"}  # stop out
HISTORY_FROM = datetime(2000, 1, 1)  # noqa: DTZ001 - the terminal reads naive datetimes on the server clock
SERVER_CLOCK_MARGIN_S = 86_400  # a window's start moves back a day: the server clock may run hours off UTC

ORDER_STATES: dict[int, OrderStatus] = {
    C.ORDER_STATE_STARTED: OrderStatus.SUBMITTED,
    C.ORDER_STATE_PLACED: OrderStatus.ACCEPTED,
    C.ORDER_STATE_PARTIAL: OrderStatus.PARTIALLY_FILLED,
    C.ORDER_STATE_FILLED: OrderStatus.FILLED,
    C.ORDER_STATE_CANCELED: OrderStatus.CANCELED,
    C.ORDER_STATE_REJECTED: OrderStatus.REJECTED,
    C.ORDER_STATE_EXPIRED: OrderStatus.EXPIRED,
}


class Mt5History:
    """Tickwave's orders (with their deals) and net positions at one terminal, by ``magic``."""

    def __init__(self, settings: ExecutionSettings, terminal: Terminal) -> None:
        self.settings = settings
        self.terminal = terminal

    def orders(self, since_ms: int | None = None) -> Mapping[str, BrokerOrder]:
        """Return Tickwave's orders (magic) from the history and the active orders, with their deals.

        The history is read from ``since_ms`` (less a day for the server clock's offset), or
        from 2000 when None: a poll or a periodic reconciliation reads a window, not the
        account's whole history every few seconds. Active orders are always read whole.
        """
        magic = self.settings.mt5_broker.magic
        until = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=2)
        start = HISTORY_FROM
        if since_ms is not None:
            window_start = datetime.fromtimestamp(since_ms / 1000 - SERVER_CLOCK_MARGIN_S, UTC).replace(tzinfo=None)
            start = max(HISTORY_FROM, window_start)
        history = self.terminal.call("history_orders_get", start, until)
        active = self.terminal.call("orders_get")
        deals = self.terminal.call("history_deals_get", start, until)
        deals_by_order: dict[int, list[Any]] = defaultdict(list)
        for deal in deals:
            if deal.magic == magic:
                deals_by_order[deal.order].append(deal)
        by_comment: dict[str, list[Any]] = defaultdict(list)  # a hedging close: one MT5 order per position
        for order in (*history, *active):
            if order.magic != magic:
                continue
            if order.comment.startswith("tw-"):
                by_comment[order.comment].append(order)
            elif order.reason in SERVER_CLOSE_REASONS:  # closed by the server (sl, tp, stop out)
                by_comment[f"mt5-{SERVER_CLOSE_REASONS[order.reason]}-{order.ticket}"].append(order)
        return {cid: _merged(cid, legs, deals_by_order) for cid, legs in by_comment.items()}

    def positions(self) -> Mapping[str, Decimal]:
        """Return the net position per symbol of Tickwave's positions (magic)."""
        net: dict[str, Decimal] = defaultdict(Decimal)
        for position in self.terminal.call("positions_get"):
            if position.magic == self.settings.mt5_broker.magic:
                volume = to_decimal(position.volume)
                signed = volume if position.type == C.POSITION_TYPE_BUY else -volume
                net[position.symbol] = MONEY_CONTEXT.add(net[position.symbol], signed)
        return {symbol: lots for symbol, lots in net.items() if lots}


def _merged(cid: str, legs: list[Any], deals_by_order: Mapping[int, list[Any]]) -> BrokerOrder:
    """One order from the MT5 orders of one comment (oldest first) and their deals, in time order."""
    legs.sort(key=lambda o: (o.time_setup_msc, o.ticket))
    order_deals = [
        d for o in legs for d in sorted(deals_by_order.get(o.ticket, []), key=lambda d: (d.time_msc, d.ticket))
    ]
    fills = tuple(
        BrokerFill(fill_id_for(cid, n), d.price, d.volume, d.time_msc, str(d.ticket), d.commission)
        for n, d in enumerate(order_deals)
    )
    first, last = legs[0], legs[-1]
    return BrokerOrder(
        client_order_id=cid,
        broker_order_id=str(first.ticket),
        symbol=first.symbol,
        side="buy" if first.type == C.ORDER_TYPE_BUY else "sell",
        quantity_lots=float(exact_sum(o.volume_initial for o in legs)),
        status=ORDER_STATES.get(last.state, OrderStatus.ACCEPTED),
        fills=fills,
    )
