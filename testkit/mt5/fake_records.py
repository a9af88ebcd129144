"""The records the fake ``MetaTrader5`` terminal returns, and how it reads its arguments.

Named tuples with the package's field names and order (``_asdict()`` works), the tick
array of :data:`adapters.mt5.api.TICK_DTYPE`, the descriptions ``last_error()`` gives,
and the package's reading of a time argument.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from adapters.mt5.api import TICK_DTYPE, Constants

TickArray = npt.NDArray[np.void]

# Descriptions last_error() gives with each code (as printed by the package).
DESCRIPTIONS: dict[int, str] = {
    Constants.RES_S_OK: "Success",
    Constants.RES_E_FAIL: "Terminal: Call failed",
    Constants.RES_E_INVALID_PARAMS: "Terminal: Invalid params",
    Constants.RES_E_NO_MEMORY: "Terminal: No memory",
    Constants.RES_E_NOT_FOUND: "Terminal: Not found",
    Constants.RES_E_INVALID_VERSION: "Terminal: Invalid version",
    Constants.RES_E_AUTH_FAILED: "Terminal: Authorization failed",
    Constants.RES_E_UNSUPPORTED: "Terminal: Unsupported method",
    Constants.RES_E_AUTO_TRADING_DISABLED: "Terminal: Auto trading disabled",
    Constants.RES_E_INTERNAL_FAIL: "Internal IPC general error",
    Constants.RES_E_INTERNAL_FAIL_SEND: "IPC send failed",
    Constants.RES_E_INTERNAL_FAIL_RECEIVE: "IPC receive failed",
    Constants.RES_E_INTERNAL_FAIL_INIT: "IPC initialize failed",
    Constants.RES_E_INTERNAL_FAIL_CONNECT: "No IPC connection",
    Constants.RES_E_INTERNAL_FAIL_TIMEOUT: "IPC timeout",
}


class Tick(NamedTuple):
    """What ``symbol_info_tick`` returns."""

    time: int
    bid: float
    ask: float
    last: float
    volume: int
    time_msc: int
    flags: int
    volume_real: float


class TerminalInfo(NamedTuple):
    """What ``terminal_info`` returns."""

    community_account: bool = False
    community_connection: bool = False
    connected: bool = True
    dlls_allowed: bool = False
    trade_allowed: bool = True
    tradeapi_disabled: bool = False
    email_enabled: bool = False
    ftp_enabled: bool = False
    notifications_enabled: bool = False
    mqid: bool = False
    build: int = 4755
    maxbars: int = 100_000
    codepage: int = 0
    ping_last: int = 35_000
    community_balance: float = 0.0
    retransmission: float = 0.0
    company: str = "MetaQuotes Ltd."
    name: str = "MetaTrader 5"
    language: str = "English"
    path: str = "C:\\Program Files\\MetaTrader 5"
    data_path: str = "C:\\Program Files\\MetaTrader 5"
    commondata_path: str = "C:\\Users\\trader\\AppData\\Roaming\\MetaQuotes\\Terminal\\Common"


class AccountInfo(NamedTuple):
    """What ``account_info`` returns."""

    login: int
    trade_mode: int = Constants.ACCOUNT_TRADE_MODE_DEMO
    leverage: int = 100
    limit_orders: int = 200
    margin_so_mode: int = 0
    trade_allowed: bool = True
    trade_expert: bool = True
    margin_mode: int = Constants.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
    currency_digits: int = 2
    fifo_close: bool = False
    balance: float = 10_000.0
    credit: float = 0.0
    profit: float = 0.0
    equity: float = 10_000.0
    margin: float = 0.0
    margin_free: float = 10_000.0
    margin_level: float = 0.0
    margin_so_call: float = 50.0
    margin_so_so: float = 30.0
    margin_initial: float = 0.0
    margin_maintenance: float = 0.0
    assets: float = 0.0
    liabilities: float = 0.0
    commission_blocked: float = 0.0
    name: str = "Tickwave Fake"
    server: str = "Fake-Demo"
    currency: str = "USD"
    company: str = "Tickwave"


class SymbolInfo(NamedTuple):
    """What ``symbol_info`` returns (all 96 fields, in the package's order)."""

    custom: bool = False
    chart_mode: int = 0
    select: bool = False
    visible: bool = False
    session_deals: int = 0
    session_buy_orders: int = 0
    session_sell_orders: int = 0
    volume: int = 0
    volumehigh: int = 0
    volumelow: int = 0
    time: int = 0
    digits: int = 5
    spread: int = 0
    spread_float: bool = True
    ticks_bookdepth: int = 10
    trade_calc_mode: int = 0
    trade_mode: int = Constants.SYMBOL_TRADE_MODE_FULL
    start_time: int = 0
    expiration_time: int = 0
    trade_stops_level: int = 0
    trade_freeze_level: int = 0
    trade_exemode: int = Constants.SYMBOL_TRADE_EXECUTION_MARKET
    swap_mode: int = 1
    swap_rollover3days: int = 3
    margin_hedged_use_leg: bool = False
    expiration_mode: int = 15
    filling_mode: int = 1
    order_mode: int = 127
    order_gtc_mode: int = 0
    option_mode: int = 0
    option_right: int = 0
    bid: float = 0.0
    bidhigh: float = 0.0
    bidlow: float = 0.0
    ask: float = 0.0
    askhigh: float = 0.0
    asklow: float = 0.0
    last: float = 0.0
    lasthigh: float = 0.0
    lastlow: float = 0.0
    volume_real: float = 0.0
    volumehigh_real: float = 0.0
    volumelow_real: float = 0.0
    option_strike: float = 0.0
    point: float = 0.00001
    trade_tick_value: float = 1.0
    trade_tick_value_profit: float = 1.0
    trade_tick_value_loss: float = 1.0
    trade_tick_size: float = 0.00001
    trade_contract_size: float = 100_000.0
    trade_accrued_interest: float = 0.0
    trade_face_value: float = 0.0
    trade_liquidity_rate: float = 0.0
    volume_min: float = 0.01
    volume_max: float = 500.0
    volume_step: float = 0.01
    volume_limit: float = 0.0
    swap_long: float = 0.0
    swap_short: float = 0.0
    margin_initial: float = 0.0
    margin_maintenance: float = 0.0
    session_volume: float = 0.0
    session_turnover: float = 0.0
    session_interest: float = 0.0
    session_buy_orders_volume: float = 0.0
    session_sell_orders_volume: float = 0.0
    session_open: float = 0.0
    session_close: float = 0.0
    session_aw: float = 0.0
    session_price_settlement: float = 0.0
    session_price_limit_min: float = 0.0
    session_price_limit_max: float = 0.0
    margin_hedged: float = 100_000.0
    price_change: float = 0.0
    price_volatility: float = 0.0
    price_theoretical: float = 0.0
    price_greeks_delta: float = 0.0
    price_greeks_theta: float = 0.0
    price_greeks_gamma: float = 0.0
    price_greeks_vega: float = 0.0
    price_greeks_rho: float = 0.0
    price_greeks_omega: float = 0.0
    price_sensitivity: float = 0.0
    basis: str = ""
    category: str = ""
    currency_base: str = ""
    currency_profit: str = ""
    currency_margin: str = ""
    bank: str = ""
    description: str = ""
    exchange: str = ""
    formula: str = ""
    isin: str = ""
    name: str = ""
    page: str = ""
    path: str = ""


def make_ticks(rows: Iterable[tuple[Any, ...]]) -> TickArray:
    """Build a tick array from ``(time_msc, bid, ask[, last, volume, flags, volume_real])`` rows.

    ``time`` is derived from ``time_msc``; ``flags`` defaults to bid|ask changed.
    """
    default_flags = Constants.TICK_FLAG_BID | Constants.TICK_FLAG_ASK
    records = []
    for row in rows:
        time_msc, bid, ask, *rest = row
        last, volume, flags, volume_real = (list(rest) + [0.0, 0, default_flags, 0.0][len(rest) :])[:4]
        records.append((time_msc // 1000, bid, ask, last, volume, time_msc, flags, volume_real))
    return np.array(records, dtype=TICK_DTYPE)


def server_ms(value: Any) -> int | None:
    """Return a time argument as milliseconds on the server clock (None if the package would refuse it).

    The package takes datetimes or integer seconds; naive datetimes read as the server clock.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return calendar.timegm(value.timetuple()) * 1000 + value.microsecond // 1000
        return int(value.timestamp() * 1000)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return int(value * 1000)
    return None
