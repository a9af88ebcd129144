"""The MetaTrader 5 broker: ``order_check`` then ``order_send``, retcodes mapped to events.

Every request carries Tickwave's ``magic`` number and the ``client_order_id`` as its
``comment`` (27 characters, within MT5's 31), so reconciliation finds our orders and
deals again with ``orders_get``, ``positions_get``, ``history_orders_get`` and
``history_deals_get``. The filling type is the one the symbol allows
(``symbol_info().filling_mode``: FOK, else IOC).

Retcodes (``order_send``):

- 10009 done: accepted + filled.
- 10010 done partial: accepted + partial fill + the rest canceled (IOC).
- 10008 placed: accepted; the fills are picked up by :meth:`Mt5Broker.poll`.
- 10004 requote, 10020 price changed, 10021 price off: nothing executed, the price
  moved; retried at the new quote, at most ``mt5_max_retries`` times.
- 10006 reject, 10018 market closed, 10019 no money, 10024 too many requests, 10027
  autotrading disabled, 10030 invalid fill, and any other: rejected (the engine
  counts rejects in a row and halts).

Netting or hedging: the account's ``account_info().margin_mode`` is read once. On a
netting account an order in the other direction reduces the symbol's one position. On a
hedging account (the retail default) it would open a second position beside the first,
with double margin and swap: there an order that reduces Tickwave's position closes
positions by ticket (the request's ``position``), oldest first (FIFO, as US brokers
require), one ``order_send`` per position, all with the order's comment; what is left
after closing everything opposite opens a new position. :meth:`Mt5Broker.orders` merges
the MT5 orders of one comment back into one order.

Server-side stops (a backstop for the engine's own, ``mt5_server_stops``) are set after
every fill by :class:`~execution.brokers.mt5_stops.ServerStops`; orders and positions are
read back by :class:`~execution.brokers.mt5_history.Mt5History`, and placed or unanswered
orders are followed by :class:`~execution.brokers.mt5_tracking.WorkingOrders`.

Retries happen only where repeating cannot double an order: the requote family means
nothing was executed. When ``order_send`` gives no answer at all (the IPC link broke),
the outcome is unknown: the order stays *submitted* and is looked up by its comment in
the history at the next poll or restart, never re-sent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from adapters.mt5.api import Constants
from adapters.mt5.terminal import Terminal, TerminalError
from execution.brokers.mt5_history import SERVER_CLOCK_MARGIN_S, Mt5History
from execution.brokers.mt5_stops import ServerStops
from execution.brokers.mt5_tracking import WorkingOrders
from execution.core.broker import (
    BrokerEvent,
    BrokerFill,
    BrokerOrder,
    accepted,
    canceled,
    cumulative_lots,
    fill_events,
    fill_id_for,
    rejected,
)
from execution.core.state import Order
from tickwave.clock import Clock
from tickwave.config import ExecutionSettings, Settings
from tickwave.contracts import OrderFilled, OrderIntent, Tick
from tickwave.money import to_decimal

logger = logging.getLogger(__name__)

C = Constants
SYMBOL_FILLING_FOK = 1  # symbol_info().filling_mode bits
SYMBOL_FILLING_IOC = 2
RETRYABLE = frozenset({C.TRADE_RETCODE_REQUOTE, C.TRADE_RETCODE_PRICE_CHANGED, C.TRADE_RETCODE_PRICE_OFF})


def load_terminal(settings: Settings) -> Terminal:
    """Connect to the real terminal (Windows only; fails with the fix elsewhere)."""
    terminal = Terminal(settings.mt5)
    terminal.connect()
    return terminal


class Mt5Broker:
    """Orders through a MetaTrader 5 terminal."""

    name = "mt5"
    lookback_ms = SERVER_CLOCK_MARGIN_S * 1000  # its history is read from a day before a window's start

    def __init__(self, settings: ExecutionSettings, clock: Clock, terminal: Terminal) -> None:
        self.settings = settings
        self.clock = clock
        self.terminal = terminal
        self.history = Mt5History(settings, terminal)
        self.tracking = WorkingOrders(clock, self.history.orders)
        self.server_stops = ServerStops(settings, terminal)
        self._hedging: bool | None = None  # account_info().margin_mode, read at the first order
        self._known: set[str] | None = None  # client order ids the terminal has (loaded at the first submit)
        self._venue: str | None = None  # "mt5:<account_info().server>", read once

    def venue(self) -> str:
        """Return ``mt5:<trade server>`` (``account_info().server``), read once.

        The trade server tells venues apart (two brokers, or a broker's demo and live
        servers). While the terminal does not answer, the configured ``mt5.server`` stands
        in (or plain ``mt5``) and the terminal is asked again at the next order.
        """
        if self._venue is None:
            try:
                server = str(self.terminal.call("account_info").server)
            except TerminalError as exc:
                configured = self.terminal.settings.server
                logger.warning(
                    "mt5 venue: account_info failed (%s); recording the configured server %r", exc, configured
                )
                return f"{self.name}:{configured}" if configured else self.name
            self._venue = f"{self.name}:{server}" if server else self.name
        return self._venue

    # -- the Broker interface ---------------------------------------------------------------

    def submit(self, intent: OrderIntent) -> list[BrokerEvent]:
        """Check, then send a market order (hedging: one close per position); retry only a requote-like answer.

        Idempotent per client order id: a ``client_order_id`` the terminal already has (this
        session or, read once at the first submit, an earlier one) is never sent again. A
        terminal error at any step answers with a rejection or, once a send may have
        reached the server, with nothing but tracking: it never raises into the signal loop.
        """
        events = self._submit(intent)
        if any(isinstance(event, OrderFilled) for event in events):
            self.server_stops.protect(intent.symbol)
        return events

    def _submit(self, intent: OrderIntent) -> list[BrokerEvent]:
        now_ms = self.clock.now_ms()
        try:
            if intent.client_order_id in self._known_ids():
                logger.warning("order=%s is already at the terminal; not sent again", intent.client_order_id)
                return []
            legs = self._legs(intent)
        except TerminalError as exc:
            return [rejected(intent, f"order_check failed: {exc}", now_ms, exc.code)]
        if len(legs) == 1:
            result = self._send_leg(intent, *legs[0], now_ms)
            return result if isinstance(result, list) else self._events_for(intent, result, self.clock.now_ms())
        events: list[BrokerEvent] = []
        filled = 0.0  # lots filled by the legs so far (cumulative_lots: exact)
        first_ticket = 0
        for n, (ticket, lots) in enumerate(legs):
            result = self._send_leg(intent, ticket, lots, now_ms)
            done = not isinstance(result, list) and result.retcode in (
                C.TRADE_RETCODE_DONE,
                C.TRADE_RETCODE_DONE_PARTIAL,
            )
            if n == 0 and not done:  # nothing executed yet: as a one-request order
                return result if isinstance(result, list) else self._events_for(intent, result, self.clock.now_ms())
            if isinstance(result, list) and not result:  # a later leg unanswered: the history decides (poll)
                self.tracking.track(intent, first_ticket, now_ms, fills_reported=n)
                return events
            if not done:
                why = result[0].reason if isinstance(result, list) else f"retcode {result.retcode}"
                events.append(canceled(intent, f"rest of {intent.quantity_lots} lots not sent: {why}", now_ms))
                return events
            if n == 0:
                first_ticket = int(result.order)
                events.append(accepted(intent, str(result.order), now_ms))
            is_final = n == len(legs) - 1 and result.retcode == C.TRADE_RETCODE_DONE
            fill = BrokerFill(
                fill_id_for(intent.client_order_id, n),
                result.price,
                result.volume,
                self.clock.now_ms(),
                str(result.deal),
            )
            (filled,) = cumulative_lots(filled, [fill])
            events.extend(fill_events(intent, fill, filled, is_final))
            if result.retcode != C.TRADE_RETCODE_DONE:
                events.append(canceled(intent, f"rest of {intent.quantity_lots} lots not filled (partial)", now_ms))
                return events
        return events

    def _send_leg(self, intent: OrderIntent, ticket: int, lots: float, now_ms: int) -> Any:
        """``order_check`` then ``order_send`` of one request: its result, or the events that end the order."""
        try:
            request = self._request(intent, ticket, lots)
            check = self.terminal.call("order_check", request)
        except TerminalError as exc:
            return [rejected(intent, f"order_check failed: {exc}", now_ms, exc.code)]
        if check.retcode not in (0, C.TRADE_RETCODE_DONE):
            return [rejected(intent, f"order_check: {check.comment}", now_ms, check.retcode)]
        for attempt in range(self.settings.mt5_broker.max_retries + 1):
            try:
                result = self.terminal.call("order_send", request)
            except TerminalError as exc:
                logger.error(
                    "order=%s order_send gave no answer (%s); outcome unknown, polling history",
                    intent.client_order_id,
                    exc,
                )
                self.tracking.track(intent, 0)
                return []
            self._known_ids().add(intent.client_order_id)
            if result.retcode in RETRYABLE and attempt < self.settings.mt5_broker.max_retries:
                logger.info(
                    "order=%s retcode=%d (%s); retrying at the new quote",
                    intent.client_order_id,
                    result.retcode,
                    result.comment,
                )
                try:
                    request = self._request(intent, ticket, lots)
                except TerminalError as exc:  # the requoted send placed nothing: refuse, do not crash
                    return [
                        rejected(intent, f"requote, then no quote to retry at: {exc}", self.clock.now_ms(), exc.code)
                    ]
                continue
            return result
        raise AssertionError("unreachable: the last attempt always returns")

    def is_hedging(self) -> bool:
        """Whether the account hedges (``account_info().margin_mode``), read once."""
        if self._hedging is None:
            mode = self.terminal.call("account_info").margin_mode
            self._hedging = mode == C.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
            logger.info("mt5 account margin_mode=%d (%s)", mode, "hedging" if self._hedging else "netting")
        return self._hedging

    def _legs(self, intent: OrderIntent) -> list[tuple[int, float]]:
        """The requests an order needs: (position ticket to close or 0 to open, lots).

        Netting: one request. Hedging: Tickwave's positions on the symbol in the other
        direction, oldest first, closed by ticket up to the order's size; the rest opens.
        """
        if not self.is_hedging():
            return [(0, intent.quantity_lots)]
        opposite = C.POSITION_TYPE_SELL if intent.side == "buy" else C.POSITION_TYPE_BUY
        positions = sorted(
            (
                p
                for p in self.terminal.call("positions_get", symbol=intent.symbol)
                if p.magic == self.settings.mt5_broker.magic and p.type == opposite
            ),
            key=lambda p: (p.time_msc, p.ticket),
        )
        remaining = to_decimal(intent.quantity_lots)
        legs: list[tuple[int, float]] = []
        for position in positions:
            if remaining <= 0:
                break
            lots = min(remaining, to_decimal(position.volume))
            legs.append((position.ticket, float(lots)))
            remaining -= lots
        if remaining > 0:
            legs.append((0, float(remaining)))
        return legs

    def _known_ids(self) -> set[str]:
        if self._known is None:
            self._known = set(self.orders())
        return self._known

    def cancel(self, order: Order, reason: str) -> list[BrokerEvent]:
        """Remove a working (placed) order."""
        ticket = self.tracking.ticket_of(order.client_order_id)
        if ticket == 0:
            return []
        try:
            result = self.terminal.call("order_send", {"action": C.TRADE_ACTION_REMOVE, "order": ticket})
        except TerminalError as exc:
            logger.error("order=%s cancel failed: %s", order.client_order_id, exc)
            return []
        if result.retcode != C.TRADE_RETCODE_DONE:
            logger.warning("order=%s cancel refused: %d %s", order.client_order_id, result.retcode, result.comment)
            return []
        self.tracking.forget(order.client_order_id)
        return [canceled(order, reason, self.clock.now_ms())]

    def poll(self) -> list[BrokerEvent]:
        """Pick up fills of placed orders and the outcome of unanswered sends; protect the symbols that filled."""
        events = self.tracking.poll()
        for symbol in sorted({event.symbol for event in events if isinstance(event, OrderFilled)}):
            self.server_stops.protect(symbol)
        return events

    def on_tick(self, tick: Tick) -> None:
        """Nothing: the terminal has its own quotes."""

    def orders(self, since_ms: int | None = None) -> Mapping[str, BrokerOrder]:
        """Return Tickwave's orders (magic) with their deals, the history from ``since_ms`` (see ``Mt5History``)."""
        return self.history.orders(since_ms)

    def positions(self) -> Mapping[str, Decimal]:
        """Return the net position per symbol of Tickwave's positions (magic)."""
        return self.history.positions()

    def retire(self, before_ms: int) -> int:
        """Nothing: the broker follows only the orders still working (the terminal keeps the history)."""
        return 0

    def close(self) -> None:
        """Detach from the terminal."""
        self.terminal.close()

    # -- internals ------------------------------------------------------------------------------

    def _request(self, intent: OrderIntent, position: int = 0, lots: float | None = None) -> dict[str, Any]:
        info = self.terminal.call("symbol_info", intent.symbol)
        tick = self.terminal.call("symbol_info_tick", intent.symbol)
        is_buy = intent.side == "buy"
        filling = C.ORDER_FILLING_FOK if info.filling_mode & SYMBOL_FILLING_FOK else C.ORDER_FILLING_IOC
        extra = {"position": position} if position else {}
        return {
            **extra,
            "action": C.TRADE_ACTION_DEAL,
            "symbol": intent.symbol,
            "volume": intent.quantity_lots if lots is None else lots,
            "type": C.ORDER_TYPE_BUY if is_buy else C.ORDER_TYPE_SELL,
            "price": tick.ask if is_buy else tick.bid,
            "deviation": self.settings.mt5_broker.deviation_points,
            "magic": self.settings.mt5_broker.magic,
            "comment": intent.client_order_id,
            "type_time": C.ORDER_TIME_GTC,
            "type_filling": filling,
        }

    def _events_for(self, intent: OrderIntent, result: Any, now_ms: int) -> list[BrokerEvent]:
        retcode = result.retcode
        if retcode not in (C.TRADE_RETCODE_DONE, C.TRADE_RETCODE_DONE_PARTIAL, C.TRADE_RETCODE_PLACED):
            return [rejected(intent, f"{result.comment} (retcode {retcode})", now_ms, retcode)]
        events: list[BrokerEvent] = [accepted(intent, str(result.order), now_ms)]
        if retcode == C.TRADE_RETCODE_PLACED:
            self.tracking.track(intent, result.order)
            return events
        fill = BrokerFill(fill_id_for(intent.client_order_id, 0), result.price, result.volume, now_ms, str(result.deal))
        is_final = retcode == C.TRADE_RETCODE_DONE
        events.extend(fill_events(intent, fill, result.volume, is_final))
        if not is_final:
            events.append(canceled(intent, f"rest of {intent.quantity_lots} lots not filled (partial)", now_ms))
        return events
