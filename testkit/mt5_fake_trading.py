"""The trading calls of the ``MetaTrader5`` package, on top of :class:`~testkit.mt5_fake.FakeMetaTrader5`.

Mimics the documented behaviour (MQL5 reference, "Python integration": ``order_check``,
``order_send``, ``orders_get``, ``positions_get``, ``history_orders_get``,
``history_deals_get``) of a *netting* or a *hedging* account with market execution
(``margin_mode``, reported by ``account_info().margin_mode``):

- netting (``ACCOUNT_MARGIN_MODE_RETAIL_NETTING``): one position per symbol; a deal in
  the other direction reduces it (entry OUT), or reverses it (INOUT); ``position`` in a
  request is ignored;
- hedging (``ACCOUNT_MARGIN_MODE_RETAIL_HEDGING``, the retail default): a deal without
  ``position`` always opens a new position (entry IN), so a "closing" sell opens a short
  beside the long; a deal with ``position`` (the ticket) in the other direction closes
  that position or part of it (entry OUT); a ticket that is not open gives 10036, the
  same direction or more than its volume 10038;

- ``order_check(request)`` returns an ``OrderCheckResult`` whose ``retcode`` is 0 when the
  request would pass (``comment`` "Done"), or the ``TRADE_RETCODE_*`` that would refuse it;
- ``order_send(request)`` returns an ``OrderSendResult`` (``retcode``, ``deal``, ``order``,
  ``volume``, ``price``, ``bid``, ``ask``, ``comment``, ``request_id``, ``retcode_external``,
  ``request``) or ``None`` with ``last_error`` set when the terminal cannot be reached; a
  market deal fills at the ask (buy) or bid (sell) of the symbol's last tick;
- the filling type must be one the symbol allows (``symbol_info().filling_mode`` bits:
  1 = FOK, 2 = IOC; RETURN is refused for market execution), else 10030;
- orders and deals carry the request's ``magic`` and ``comment`` (at most 31 characters,
  as the terminal truncates), which is how a client finds its own orders again;
- ``history_orders_get`` / ``history_deals_get`` take ``(date_from, date_to)`` with an
  optional ``group``, or a ``ticket=`` (deals: the order's ticket) or ``position=``;
  ``orders_get`` / ``positions_get`` take ``symbol=``, ``group=`` or ``ticket=``; all
  return tuples (empty when nothing matches);
- ``order_send`` with ``TRADE_ACTION_SLTP`` sets a position's stop loss and take profit
  (``position`` = its ticket, ``sl``/``tp`` prices, 0 = none): 10036 for a ticket that is
  not open, 10016 (invalid stops) for a stop on the wrong side of the current bid (long) or
  ask (short), 10025 when nothing changes; the levels show in ``positions_get``. On a tick
  that reaches a level (long: bid <= sl or bid >= tp; short: ask >= sl or ask <= tp) the
  server closes the whole position at that tick's price with an order and a deal of reason
  SL / TP (``ORDER_REASON_SL``, ``DEAL_REASON_SL``...), the position's magic and the comment
  ``[sl <level>]`` / ``[tp <level>]``, as the terminal shows server-side closes.

Test controls: :meth:`script` (the retcodes of the next ``order_send`` calls),
``fill_ratio`` (fraction a DONE_PARTIAL fills), :meth:`fill_pending` (a placed order
fills later), ``is_trade_allowed`` (False gives 10027), ``closed_symbols`` (10018).
"""

from __future__ import annotations

import fnmatch
import itertools
from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple

from testkit.mt5_fake import FakeMetaTrader5

SYMBOL_FILLING_FOK = 1
SYMBOL_FILLING_IOC = 2
COMMENT_MAX = 31


class TradeRequest(NamedTuple):
    """The ``request`` field of the results (the package's MqlTradeRequest)."""

    action: int = 0
    magic: int = 0
    order: int = 0
    symbol: str = ""
    volume: float = 0.0
    price: float = 0.0
    stoplimit: float = 0.0
    sl: float = 0.0
    tp: float = 0.0
    deviation: int = 0
    type: int = 0
    type_filling: int = 0
    type_time: int = 0
    expiration: int = 0
    comment: str = ""
    position: int = 0
    position_by: int = 0


class OrderCheckResult(NamedTuple):
    """What ``order_check`` returns."""

    retcode: int
    balance: float
    equity: float
    profit: float
    margin: float
    margin_free: float
    margin_level: float
    comment: str
    request: TradeRequest


class OrderSendResult(NamedTuple):
    """What ``order_send`` returns."""

    retcode: int
    deal: int
    order: int
    volume: float
    price: float
    bid: float
    ask: float
    comment: str
    request_id: int
    retcode_external: int
    request: TradeRequest


class TradeOrder(NamedTuple):
    """An active or historical order (``orders_get``, ``history_orders_get``)."""

    ticket: int
    time_setup: int
    time_setup_msc: int
    time_done: int
    time_done_msc: int
    time_expiration: int
    type: int
    type_time: int
    type_filling: int
    state: int
    magic: int
    position_id: int
    position_by_id: int
    reason: int
    volume_initial: float
    volume_current: float
    price_open: float
    sl: float
    tp: float
    price_current: float
    price_stoplimit: float
    symbol: str
    comment: str
    external_id: str


class TradeDeal(NamedTuple):
    """A deal (``history_deals_get``)."""

    ticket: int
    order: int
    time: int
    time_msc: int
    type: int
    entry: int
    magic: int
    position_id: int
    reason: int
    volume: float
    price: float
    commission: float
    swap: float
    profit: float
    fee: float
    symbol: str
    comment: str
    external_id: str


class TradePosition(NamedTuple):
    """An open position (``positions_get``)."""

    ticket: int
    time: int
    time_msc: int
    time_update: int
    time_update_msc: int
    type: int
    magic: int
    identifier: int
    reason: int
    volume: float
    price_open: float
    sl: float
    tp: float
    price_current: float
    swap: float
    profit: float
    symbol: str
    comment: str
    external_id: str


RETCODE_COMMENTS = {
    10004: "Requote", 10006: "Request rejected", 10008: "Order placed", 10009: "Request executed",
    10010: "Request executed partially", 10013: "Invalid request", 10014: "Invalid volume",
    10018: "Market is closed", 10019: "No money", 10024: "Too frequent requests",
    10027: "AutoTrading disabled by client", 10030: "Unsupported filling mode",
}  # fmt: skip


@dataclass
class _Position:
    ticket: int
    symbol: str
    signed_volume: float
    price_open: float
    magic: int
    comment: str
    time_msc: int
    sl: float = 0.0
    tp: float = 0.0


NETTING = 0  # Constants.ACCOUNT_MARGIN_MODE_RETAIL_NETTING
HEDGING = 2  # Constants.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING


class FakeTradingMetaTrader5(FakeMetaTrader5):
    """The fake terminal with a netting or hedging trading account (see the module docstring)."""

    def __init__(self, *args: Any, margin_mode: int = NETTING, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.margin_mode = margin_mode
        self.fill_ratio = 0.5
        self.is_trade_allowed = True
        self.closed_symbols: set[str] = set()
        self.now_msc = 1_700_000_000_000  # the trade server's clock; tests move it
        self._scripted: deque[int] = deque()
        self._tickets = itertools.count(1_000_001)
        self._request_ids = itertools.count(1)
        self._active: dict[int, TradeOrder] = {}
        self._history_orders: dict[int, TradeOrder] = {}
        self._deals: list[TradeDeal] = []
        self._positions: dict[int, _Position] = {}  # by ticket

    # -- test controls ----------------------------------------------------------------------

    def script(self, *retcodes: int) -> None:
        """Make the next ``order_send`` calls answer these retcodes (then DONE again)."""
        self._scripted.extend(retcodes)

    def fill_pending(self, ticket: int, volume: float | None = None) -> None:
        """Fill a placed (working) order at the current quote: all of what is left, or ``volume`` of it.

        A partial fill leaves the order active in state ORDER_STATE_PARTIAL with its
        ``volume_current`` reduced, as the terminal shows it.
        """
        order = self._active.pop(ticket)
        price = self._quote_for(order.symbol, order.type)
        fill = order.volume_current if volume is None else min(volume, order.volume_current)
        self._execute(order, fill, price)
        if fill < order.volume_current:
            done = self._history_orders.pop(ticket)
            self._active[ticket] = done._replace(state=self.ORDER_STATE_PARTIAL, time_done=0, time_done_msc=0)

    def push_ticks(self, symbol: str, ticks: Any) -> None:
        """Stream ticks (see the base class); a tick that reaches a position's stop closes it at the server."""
        super().push_ticks(symbol, ticks)
        for tick in ticks:
            self._trigger_stops(symbol, float(tick["bid"]), float(tick["ask"]))

    # -- the package's trading API ----------------------------------------------------------

    def account_info(self) -> Any:
        """Return the account, with this fake's ``margin_mode``."""
        account = super().account_info()
        return None if account is None else account._replace(margin_mode=self.margin_mode)

    def order_check(self, request: dict[str, Any]) -> OrderCheckResult | None:
        """Check a request without sending it (retcode 0 = it would pass)."""
        parsed = self._accept("order_check", request)
        if parsed is None:
            return None
        retcode = self._refusal(parsed) or 0
        self._succeed()
        account = self._account
        balance = account.balance if account is not None else 0.0
        comment = "Done" if retcode == 0 else RETCODE_COMMENTS.get(retcode, "Request rejected")
        return OrderCheckResult(retcode, balance, balance, 0.0, 0.0, balance, 0.0, comment, parsed)

    def order_send(self, request: dict[str, Any]) -> OrderSendResult | None:
        """Send a request to the trade server."""
        parsed = self._accept("order_send", request)
        if parsed is None:
            return None
        self._succeed()
        request_id = next(self._request_ids)
        if parsed.action == self.TRADE_ACTION_REMOVE:
            return self._remove(parsed, request_id)
        if parsed.action == self.TRADE_ACTION_SLTP:
            return self._modify_stops(parsed, request_id)
        retcode = self._refusal(parsed) or (self._scripted.popleft() if self._scripted else self.TRADE_RETCODE_DONE)
        ticks = self._symbols[parsed.symbol].ticks if parsed.symbol in self._symbols else None
        bid, ask = (
            (float(ticks[-1]["bid"]), float(ticks[-1]["ask"])) if ticks is not None and len(ticks) else (0.0, 0.0)
        )
        if retcode not in (self.TRADE_RETCODE_DONE, self.TRADE_RETCODE_DONE_PARTIAL, self.TRADE_RETCODE_PLACED):
            return OrderSendResult(retcode, 0, 0, 0.0, 0.0, bid, ask, RETCODE_COMMENTS.get(retcode, "Request rejected"),
                                   request_id, 0, parsed)  # fmt: skip
        order = self._new_order(parsed)
        if retcode == self.TRADE_RETCODE_PLACED:
            self._active[order.ticket] = order
            return OrderSendResult(retcode, 0, order.ticket, parsed.volume, 0.0, bid, ask, "Order placed",
                                   request_id, 0, parsed)  # fmt: skip
        price = ask if parsed.type == self.ORDER_TYPE_BUY else bid
        volume = parsed.volume if retcode == self.TRADE_RETCODE_DONE else round(parsed.volume * self.fill_ratio, 2)
        deal = self._execute(order, volume, price)
        return OrderSendResult(retcode, deal.ticket, order.ticket, volume, price, bid, ask,
                               RETCODE_COMMENTS[retcode], request_id, 0, parsed)  # fmt: skip

    def orders_get(self, symbol: str | None = None, group: str | None = None, ticket: int | None = None) -> Any:
        """Return the active (working) orders."""
        if not self._enter("orders_get", symbol=symbol, group=group, ticket=ticket):
            return None
        self._succeed()
        return tuple(o for o in self._active.values() if _matches(o.symbol, o.ticket, symbol, group, ticket))

    def positions_get(self, symbol: str | None = None, group: str | None = None, ticket: int | None = None) -> Any:
        """Return the open positions (netting: one per symbol; hedging: any number)."""
        if not self._enter("positions_get", symbol=symbol, group=group, ticket=ticket):
            return None
        self._succeed()
        result = []
        for position in self._positions.values():
            if not _matches(position.symbol, position.ticket, symbol, group, ticket):
                continue
            kind = self.POSITION_TYPE_BUY if position.signed_volume > 0 else self.POSITION_TYPE_SELL
            current = self._quote_for(position.symbol, self.ORDER_TYPE_SELL if kind == self.POSITION_TYPE_BUY else 0)
            result.append(TradePosition(
                position.ticket, position.time_msc // 1000, position.time_msc, position.time_msc // 1000,
                position.time_msc, kind, position.magic, position.ticket, self.POSITION_REASON_EXPERT,
                abs(position.signed_volume), position.price_open, position.sl, position.tp, current, 0.0, 0.0,
                position.symbol,
                position.comment, "",
            ))  # fmt: skip
        return tuple(result)

    def history_orders_get(self, date_from: Any = None, date_to: Any = None, **selector: Any) -> Any:
        """Return finished orders in a time range (or by ``ticket=`` / ``position=``)."""
        rows = [(o, o.time_setup_msc, o.ticket, o.position_id, o.symbol) for o in self._history_orders.values()]
        return self._history("history_orders_get", rows, date_from, date_to, selector)

    def history_deals_get(self, date_from: Any = None, date_to: Any = None, **selector: Any) -> Any:
        """Return deals in a time range (or by order ``ticket=`` / ``position=``)."""
        rows = [(d, d.time_msc, d.order, d.position_id, d.symbol) for d in self._deals]
        return self._history("history_deals_get", rows, date_from, date_to, selector)

    def _history(
        self,
        call: str,
        rows: list[tuple[Any, int, int, int, str]],
        date_from: Any,
        date_to: Any,
        selector: dict[str, Any],
    ) -> Any:
        # rows: (record, time_msc, ticket the selector's ticket= matches, position id, symbol)
        if not self._enter(call, date_from, date_to, **selector):
            return None
        window = self._window(date_from, date_to, selector)
        if window is None:
            return None
        self._succeed()
        return tuple(row[0] for row in rows if _selected(*row[1:], window, selector))

    # -- internals ----------------------------------------------------------------------------

    def _accept(self, call: str, request: Any) -> TradeRequest | None:
        # The call's plumbing (link, injected faults, call log), then the request's shape.
        if not self._enter(call, request):
            return None
        if not isinstance(request, dict) or not set(request) <= set(TradeRequest._fields):
            self._fail(self.RES_E_INVALID_PARAMS)
            return None
        return TradeRequest(**{**request, "comment": str(request.get("comment", ""))[:COMMENT_MAX]})

    def _refusal(self, request: TradeRequest) -> int | None:
        # The checks the server makes before any order exists, in its order.
        if request.action != self.TRADE_ACTION_DEAL or request.type not in (self.ORDER_TYPE_BUY, self.ORDER_TYPE_SELL):
            return self.TRADE_RETCODE_INVALID
        if not self.is_trade_allowed:
            return self.TRADE_RETCODE_CLIENT_DISABLES_AT
        symbol = self._symbols.get(request.symbol)
        if symbol is None or not len(symbol.ticks):
            return self.TRADE_RETCODE_INVALID
        info = symbol.info
        steps = request.volume / info.volume_step
        if not info.volume_min <= request.volume <= info.volume_max or abs(steps - round(steps)) > 1e-7:
            return self.TRADE_RETCODE_INVALID_VOLUME
        if request.symbol in self.closed_symbols:
            return self.TRADE_RETCODE_MARKET_CLOSED
        allowed = {self.ORDER_FILLING_FOK: SYMBOL_FILLING_FOK, self.ORDER_FILLING_IOC: SYMBOL_FILLING_IOC}
        if not info.filling_mode & allowed.get(request.type_filling, 0):
            return self.TRADE_RETCODE_INVALID_FILL
        if request.position and self.margin_mode == HEDGING:
            position = self._positions.get(request.position)
            if position is None or position.symbol != request.symbol:
                return self.TRADE_RETCODE_POSITION_CLOSED
            closes = (position.signed_volume > 0) == (request.type == self.ORDER_TYPE_SELL)
            if not closes or request.volume > abs(position.signed_volume) + 1e-9:
                return self.TRADE_RETCODE_INVALID_CLOSE_VOLUME
        return None

    def _quote_for(self, symbol: str, order_type: int) -> float:
        last = self._symbols[symbol].ticks[-1]
        return float(last["ask"] if order_type == self.ORDER_TYPE_BUY else last["bid"])

    def _new_order(self, request: TradeRequest) -> TradeOrder:
        ticket = next(self._tickets)
        now = self.now_msc
        return TradeOrder(
            ticket, now // 1000, now, 0, 0, 0, request.type, request.type_time, request.type_filling,
            self.ORDER_STATE_PLACED, request.magic, request.position, 0, self.ORDER_REASON_EXPERT, request.volume,
            request.volume, request.price, 0.0, 0.0, request.price, 0.0, request.symbol, request.comment, "",
        )  # fmt: skip

    def _execute(self, order: TradeOrder, volume: float, price: float, deal_reason: int | None = None) -> TradeDeal:
        signed = volume if order.type == self.ORDER_TYPE_BUY else -volume
        if self.margin_mode == HEDGING:
            position = self._positions.get(order.position_id) if order.position_id else None
        else:
            position = next((p for p in self._positions.values() if p.symbol == order.symbol), None)
        if position is None:
            ticket = order.ticket  # a position's ticket is the ticket of the order that opened it
            position = self._positions[ticket] = _Position(
                ticket, order.symbol, 0.0, price, order.magic, order.comment, self.now_msc
            )
        before = position.signed_volume
        after = round(before + signed, 8)
        entry = self.DEAL_ENTRY_IN if before == 0 or (before > 0) == (signed > 0) else (
            self.DEAL_ENTRY_OUT if abs(signed) <= abs(before) else self.DEAL_ENTRY_INOUT
        )  # fmt: skip
        if entry == self.DEAL_ENTRY_IN:
            position.price_open = (abs(before) * position.price_open + volume * price) / abs(after)
        elif entry == self.DEAL_ENTRY_INOUT:
            position.price_open = price
        position.signed_volume = after
        deal = TradeDeal(
            next(self._tickets), order.ticket, self.now_msc // 1000, self.now_msc,
            self.DEAL_TYPE_BUY if order.type == self.ORDER_TYPE_BUY else self.DEAL_TYPE_SELL, entry, order.magic,
            position.ticket, self.DEAL_REASON_EXPERT if deal_reason is None else deal_reason, volume, price, 0.0, 0.0,
            0.0, 0.0, order.symbol,
            order.comment, "",
        )  # fmt: skip
        self._deals.append(deal)
        if after == 0:
            del self._positions[position.ticket]
        remaining = round(order.volume_current - volume, 8)
        state = self.ORDER_STATE_FILLED if remaining <= 0 else self.ORDER_STATE_CANCELED
        self._history_orders[order.ticket] = order._replace(
            state=state, volume_current=remaining, time_done=self.now_msc // 1000,
            time_done_msc=self.now_msc, position_id=position.ticket, price_current=price,
        )  # fmt: skip
        return deal

    def _modify_stops(self, request: TradeRequest, request_id: int) -> OrderSendResult:
        position = self._positions.get(request.position)
        if position is None or position.symbol != request.symbol:
            retcode = self.TRADE_RETCODE_POSITION_CLOSED
        else:
            last = self._symbols[position.symbol].ticks[-1]
            bid, ask = float(last["bid"]), float(last["ask"])
            is_long = position.signed_volume > 0
            wrong_side = (request.sl and (request.sl >= bid if is_long else request.sl <= ask)) or (
                request.tp and (request.tp <= bid if is_long else request.tp >= ask)
            )
            if wrong_side:
                retcode = self.TRADE_RETCODE_INVALID_STOPS
            elif (position.sl, position.tp) == (request.sl, request.tp):
                retcode = self.TRADE_RETCODE_NO_CHANGES
            else:
                position.sl, position.tp = request.sl, request.tp
                retcode = self.TRADE_RETCODE_DONE
        return OrderSendResult(retcode, 0, 0, 0.0, 0.0, 0.0, 0.0, RETCODE_COMMENTS.get(retcode, "Request rejected"),
                               request_id, 0, request)  # fmt: skip

    def _trigger_stops(self, symbol: str, bid: float, ask: float) -> None:
        # The server's own closes: a long exits at the bid, a short at the ask, the whole position.
        for position in [p for p in self._positions.values() if p.symbol == symbol and (p.sl or p.tp)]:
            is_long = position.signed_volume > 0
            price = bid if is_long else ask
            if position.sl and (price <= position.sl if is_long else price >= position.sl):
                reason, kind, level = self.ORDER_REASON_SL, "sl", position.sl
            elif position.tp and (price >= position.tp if is_long else price <= position.tp):
                reason, kind, level = self.ORDER_REASON_TP, "tp", position.tp
            else:
                continue
            volume = abs(position.signed_volume)
            order = self._new_order(TradeRequest(
                action=self.TRADE_ACTION_DEAL, magic=position.magic, symbol=symbol, volume=volume, price=price,
                type=self.ORDER_TYPE_SELL if is_long else self.ORDER_TYPE_BUY, type_filling=self.ORDER_FILLING_FOK,
                comment=f"[{kind} {level}]", position=position.ticket,
            ))._replace(reason=reason)  # fmt: skip
            self._execute(order, volume, price, deal_reason=reason)

    def _remove(self, request: TradeRequest, request_id: int) -> OrderSendResult:
        order = self._active.pop(request.order, None)
        if order is None:
            return OrderSendResult(self.TRADE_RETCODE_INVALID_ORDER, 0, request.order, 0.0, 0.0, 0.0, 0.0,
                                   "Invalid order", request_id, 0, request)  # fmt: skip
        self._history_orders[order.ticket] = order._replace(
            state=self.ORDER_STATE_CANCELED, time_done=self.now_msc // 1000, time_done_msc=self.now_msc
        )
        return OrderSendResult(self.TRADE_RETCODE_DONE, 0, order.ticket, 0.0, 0.0, 0.0, 0.0, "Request executed",
                               request_id, 0, request)  # fmt: skip

    def _window(self, date_from: Any, date_to: Any, selector: dict[str, Any]) -> tuple[int, int] | None:
        if selector:
            if set(selector) - {"ticket", "position", "group"}:
                self._fail(self.RES_E_INVALID_PARAMS)
                return None
            if "group" not in selector:
                return (0, 2**62)
        start, end = self._to_ms(date_from), self._to_ms(date_to)
        if start is None or end is None:
            self._fail(self.RES_E_INVALID_PARAMS)
            return None
        return (start, end)


def _matches(symbol: str, ticket: int, wanted_symbol: str | None, group: str | None, wanted_ticket: int | None) -> bool:
    if wanted_symbol is not None and symbol != wanted_symbol:
        return False
    if wanted_ticket is not None and ticket != wanted_ticket:
        return False
    return group is None or _in_group(symbol, group)


def _in_group(symbol: str, group: str) -> bool:
    # The package's group syntax: comma-separated masks with *, a leading ! excludes.
    included = False
    for mask in (part.strip() for part in group.split(",")):
        if mask.startswith("!") and fnmatch.fnmatchcase(symbol, mask[1:]):
            return False
        if fnmatch.fnmatchcase(symbol, mask):
            included = True
    return included


def _selected(
    time_msc: int, ticket: int, position_id: int, symbol: str, window: tuple[int, int], selector: dict[str, Any]
) -> bool:
    if "ticket" in selector:
        return ticket == int(selector["ticket"])
    if "position" in selector:
        return position_id == int(selector["position"])
    if "group" in selector and not _in_group(symbol, selector["group"]):
        return False
    return window[0] <= time_msc <= window[1]
