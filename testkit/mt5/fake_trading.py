"""The trading calls of the fake ``MetaTrader5`` terminal (``order_check``, ``order_send``).

Mimics the documented behaviour (MQL5 reference, "Python integration") of a *netting*
or a *hedging* account with market execution (``margin_mode``, reported by
``account_info().margin_mode``):

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
- the book's reads (``orders_get``, ``positions_get``, ``history_orders_get``,
  ``history_deals_get``) are :class:`~testkit.mt5.fake_trade_book.FakeTradeBook`'s;
- ``order_send`` with ``TRADE_ACTION_SLTP`` sets a position's stop loss and take profit
  (``position`` = its ticket, ``sl``/``tp`` prices, 0 = none): 10036 for a ticket that is
  not open, 10016 (invalid stops) for a stop on the wrong side of the current bid (long) or
  ask (short), 10025 when nothing changes; the levels show in ``positions_get``. On a tick
  that reaches a level (long: bid <= sl or bid >= tp; short: ask >= sl or ask <= tp) the
  server closes the whole position at that tick's price with an order and a deal of reason
  SL / TP (``ORDER_REASON_SL``, ``DEAL_REASON_SL``...), the position's magic and the comment
  ``[sl <level>]`` / ``[tp <level>]``, as the terminal shows server-side closes.

Test controls: :meth:`FakeTradingMetaTrader5.script` (the retcodes of the next
``order_send`` calls), ``fill_ratio`` (fraction a DONE_PARTIAL fills),
:meth:`FakeTradingMetaTrader5.fill_pending` (a placed order fills later),
``is_trade_allowed`` (False gives 10027), ``closed_symbols`` (10018).
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

from testkit.mt5.fake_trade_book import FakeTradeBook
from testkit.mt5.fake_trade_records import (
    COMMENT_MAX,
    HEDGING,
    RETCODE_COMMENTS,
    SYMBOL_FILLING_FOK,
    SYMBOL_FILLING_IOC,
    OrderCheckResult,
    OrderSendResult,
    TradeRequest,
)


class FakeTradingMetaTrader5(FakeTradeBook):
    """The fake terminal with a netting or hedging trading account (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fill_ratio = 0.5
        self.is_trade_allowed = True
        self.closed_symbols: set[str] = set()
        self._scripted: deque[int] = deque()
        self._request_ids = itertools.count(1)

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
            return OrderSendResult(
                retcode,
                0,
                0,
                0.0,
                0.0,
                bid,
                ask,
                RETCODE_COMMENTS.get(retcode, "Request rejected"),
                request_id,
                0,
                parsed,
            )
        order = self._new_order(parsed)
        if retcode == self.TRADE_RETCODE_PLACED:
            self._active[order.ticket] = order
            return OrderSendResult(
                retcode, 0, order.ticket, parsed.volume, 0.0, bid, ask, "Order placed", request_id, 0, parsed
            )
        price = ask if parsed.type == self.ORDER_TYPE_BUY else bid
        volume = parsed.volume if retcode == self.TRADE_RETCODE_DONE else round(parsed.volume * self.fill_ratio, 2)
        deal = self._execute(order, volume, price)
        return OrderSendResult(
            retcode,
            deal.ticket,
            order.ticket,
            volume,
            price,
            bid,
            ask,
            RETCODE_COMMENTS[retcode],
            request_id,
            0,
            parsed,
        )

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
        return OrderSendResult(
            retcode, 0, 0, 0.0, 0.0, 0.0, 0.0, RETCODE_COMMENTS.get(retcode, "Request rejected"), request_id, 0, request
        )

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
            order = self._new_order(
                TradeRequest(
                    action=self.TRADE_ACTION_DEAL,
                    magic=position.magic,
                    symbol=symbol,
                    volume=volume,
                    price=price,
                    type=self.ORDER_TYPE_SELL if is_long else self.ORDER_TYPE_BUY,
                    type_filling=self.ORDER_FILLING_FOK,
                    comment=f"[{kind} {level}]",
                    position=position.ticket,
                )
            )._replace(reason=reason)
            self._execute(order, volume, price, deal_reason=reason)

    def _remove(self, request: TradeRequest, request_id: int) -> OrderSendResult:
        order = self._active.pop(request.order, None)
        if order is None:
            return OrderSendResult(
                self.TRADE_RETCODE_INVALID_ORDER,
                0,
                request.order,
                0.0,
                0.0,
                0.0,
                0.0,
                "Invalid order",
                request_id,
                0,
                request,
            )
        self._history_orders[order.ticket] = order._replace(
            state=self.ORDER_STATE_CANCELED, time_done=self.now_msc // 1000, time_done_msc=self.now_msc
        )
        return OrderSendResult(
            self.TRADE_RETCODE_DONE, 0, order.ticket, 0.0, 0.0, 0.0, 0.0, "Request executed", request_id, 0, request
        )
