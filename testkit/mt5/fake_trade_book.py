"""The trade server's book of the fake ``MetaTrader5`` terminal: orders, deals, positions and their reads.

An executed deal updates the account's positions as its ``margin_mode`` says (netting:
one position per symbol; hedging: a deal opens a new position unless it names one) and
moves its order to the history. ``orders_get`` / ``positions_get`` take ``symbol=``,
``group=`` or ``ticket=``; ``history_orders_get`` / ``history_deals_get`` take
``(date_from, date_to)`` with an optional ``group``, or a ``ticket=`` (deals: the order's
ticket) or ``position=``; all return tuples (empty when nothing matches).
"""

from __future__ import annotations

import fnmatch
import itertools
from dataclasses import dataclass
from typing import Any

from testkit.mt5.fake_market import FakeMetaTrader5
from testkit.mt5.fake_records import server_ms
from testkit.mt5.fake_trade_records import HEDGING, NETTING, TradeDeal, TradeOrder, TradePosition, TradeRequest


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


class FakeTradeBook(FakeMetaTrader5):
    """The fake terminal with a netting or hedging account's book, read but not yet traded.

    Args:
        margin_mode: ``NETTING`` or ``HEDGING``, as ``account_info().margin_mode`` reports.
    """

    def __init__(self, *args: Any, margin_mode: int = NETTING, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.margin_mode = margin_mode
        self.now_msc = 1_700_000_000_000  # the trade server's clock; tests move it
        self._tickets = itertools.count(1_000_001)
        self._active: dict[int, TradeOrder] = {}
        self._history_orders: dict[int, TradeOrder] = {}
        self._deals: list[TradeDeal] = []
        self._positions: dict[int, _Position] = {}  # by ticket

    # -- the package's calls that read the book ---------------------------------------------

    def account_info(self) -> Any:
        """Return the account, with this fake's ``margin_mode``."""
        account = super().account_info()
        return None if account is None else account._replace(margin_mode=self.margin_mode)

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
            result.append(
                TradePosition(
                    position.ticket,
                    position.time_msc // 1000,
                    position.time_msc,
                    position.time_msc // 1000,
                    position.time_msc,
                    kind,
                    position.magic,
                    position.ticket,
                    self.POSITION_REASON_EXPERT,
                    abs(position.signed_volume),
                    position.price_open,
                    position.sl,
                    position.tp,
                    current,
                    0.0,
                    0.0,
                    position.symbol,
                    position.comment,
                    "",
                )
            )
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

    # -- the book ------------------------------------------------------------------------------

    def _quote_for(self, symbol: str, order_type: int) -> float:
        last = self._symbols[symbol].ticks[-1]
        return float(last["ask"] if order_type == self.ORDER_TYPE_BUY else last["bid"])

    def _new_order(self, request: TradeRequest) -> TradeOrder:
        ticket = next(self._tickets)
        now = self.now_msc
        return TradeOrder(
            ticket,
            now // 1000,
            now,
            0,
            0,
            0,
            request.type,
            request.type_time,
            request.type_filling,
            self.ORDER_STATE_PLACED,
            request.magic,
            request.position,
            0,
            self.ORDER_REASON_EXPERT,
            request.volume,
            request.volume,
            request.price,
            0.0,
            0.0,
            request.price,
            0.0,
            request.symbol,
            request.comment,
            "",
        )

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
        entry = (
            self.DEAL_ENTRY_IN
            if before == 0 or (before > 0) == (signed > 0)
            else (self.DEAL_ENTRY_OUT if abs(signed) <= abs(before) else self.DEAL_ENTRY_INOUT)
        )
        if entry == self.DEAL_ENTRY_IN:
            position.price_open = (abs(before) * position.price_open + volume * price) / abs(after)
        elif entry == self.DEAL_ENTRY_INOUT:
            position.price_open = price
        position.signed_volume = after
        deal = TradeDeal(
            next(self._tickets),
            order.ticket,
            self.now_msc // 1000,
            self.now_msc,
            self.DEAL_TYPE_BUY if order.type == self.ORDER_TYPE_BUY else self.DEAL_TYPE_SELL,
            entry,
            order.magic,
            position.ticket,
            self.DEAL_REASON_EXPERT if deal_reason is None else deal_reason,
            volume,
            price,
            0.0,
            0.0,
            0.0,
            0.0,
            order.symbol,
            order.comment,
            "",
        )
        self._deals.append(deal)
        if after == 0:
            del self._positions[position.ticket]
        remaining = round(order.volume_current - volume, 8)
        state = self.ORDER_STATE_FILLED if remaining <= 0 else self.ORDER_STATE_CANCELED
        self._history_orders[order.ticket] = order._replace(
            state=state,
            volume_current=remaining,
            time_done=self.now_msc // 1000,
            time_done_msc=self.now_msc,
            position_id=position.ticket,
            price_current=price,
        )
        return deal

    def _window(self, date_from: Any, date_to: Any, selector: dict[str, Any]) -> tuple[int, int] | None:
        if selector:
            if set(selector) - {"ticket", "position", "group"}:
                self._fail(self.RES_E_INVALID_PARAMS)
                return None
            if "group" not in selector:
                return (0, 2**62)
        start, end = server_ms(date_from), server_ms(date_to)
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
