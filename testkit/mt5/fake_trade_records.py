"""The records of the fake ``MetaTrader5`` terminal's trading calls, with the package's field names.

Requests, check and send results, orders, deals and positions as the package returns
them (named tuples: ``_asdict()`` works), the comments of the trade return codes, and the
account margin modes.
"""

from __future__ import annotations

from typing import NamedTuple

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
    10004: "Requote",
    10006: "Request rejected",
    10008: "Order placed",
    10009: "Request executed",
    10010: "Request executed partially",
    10013: "Invalid request",
    10014: "Invalid volume",
    10018: "Market is closed",
    10019: "No money",
    10024: "Too frequent requests",
    10027: "AutoTrading disabled by client",
    10030: "Unsupported filling mode",
}

NETTING = 0  # Constants.ACCOUNT_MARGIN_MODE_RETAIL_NETTING
HEDGING = 2  # Constants.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
