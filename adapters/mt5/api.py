"""The MetaTrader5 package's surface: its constants, tick dtype, the calls we use, and its loader.

The ``MetaTrader5`` package ships only ``win_amd64`` wheels and talks to a running
terminal over IPC, so it is imported lazily, only where a terminal is wanted, and only
through :func:`load_metatrader5`. Everything else sees the :class:`MetaTrader5Api`
protocol, which the real module and :class:`testkit.mt5_fake.FakeMetaTrader5` both
satisfy.

The constant values are those of the package (``MetaTrader5/__init__.py``, 5.0.x) and the
MQL5 documentation ("Python integration"); the fake carries them too, so code under
test uses the same numbers as code in production.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol, cast

import numpy as np

from tickwave.errors import ConfigurationError

# The structured dtype of copy_ticks_from / copy_ticks_range results (MT5 5.0.x).
TICK_DTYPE = np.dtype(
    [
        ("time", "<i8"),  # seconds since 1970, server clock
        ("bid", "<f8"),
        ("ask", "<f8"),
        ("last", "<f8"),
        ("volume", "<u8"),
        ("time_msc", "<i8"),  # milliseconds since 1970, server clock
        ("flags", "<u4"),  # TICK_FLAG_* bits: which fields changed
        ("volume_real", "<f8"),
    ]
)


class Constants:
    """The package's named constants (a subset: ticks, errors, orders, deals, positions)."""

    # copy_ticks_* flags
    COPY_TICKS_ALL = -1
    COPY_TICKS_INFO = 1
    COPY_TICKS_TRADE = 2
    # tick flags
    TICK_FLAG_BID = 0x02
    TICK_FLAG_ASK = 0x04
    TICK_FLAG_LAST = 0x08
    TICK_FLAG_VOLUME = 0x10
    TICK_FLAG_BUY = 0x20
    TICK_FLAG_SELL = 0x40
    # timeframes
    TIMEFRAME_M1 = 1
    TIMEFRAME_M5 = 5
    TIMEFRAME_M15 = 15
    TIMEFRAME_M30 = 30
    TIMEFRAME_H1 = 1 | 0x4000
    TIMEFRAME_H4 = 4 | 0x4000
    TIMEFRAME_D1 = 24 | 0x4000
    # last_error() codes
    RES_S_OK = 1
    RES_E_FAIL = -1
    RES_E_INVALID_PARAMS = -2
    RES_E_NO_MEMORY = -3
    RES_E_NOT_FOUND = -4
    RES_E_INVALID_VERSION = -5
    RES_E_AUTH_FAILED = -6
    RES_E_UNSUPPORTED = -7
    RES_E_AUTO_TRADING_DISABLED = -8
    RES_E_INTERNAL_FAIL = -10000
    RES_E_INTERNAL_FAIL_SEND = -10001
    RES_E_INTERNAL_FAIL_RECEIVE = -10002
    RES_E_INTERNAL_FAIL_INIT = -10003
    RES_E_INTERNAL_FAIL_CONNECT = -10004
    RES_E_INTERNAL_FAIL_TIMEOUT = -10005
    # account
    ACCOUNT_TRADE_MODE_DEMO = 0
    ACCOUNT_TRADE_MODE_CONTEST = 1
    ACCOUNT_TRADE_MODE_REAL = 2
    ACCOUNT_MARGIN_MODE_RETAIL_NETTING = 0
    ACCOUNT_MARGIN_MODE_EXCHANGE = 1
    ACCOUNT_MARGIN_MODE_RETAIL_HEDGING = 2
    # symbols
    SYMBOL_TRADE_MODE_DISABLED = 0
    SYMBOL_TRADE_MODE_LONGONLY = 1
    SYMBOL_TRADE_MODE_SHORTONLY = 2
    SYMBOL_TRADE_MODE_CLOSEONLY = 3
    SYMBOL_TRADE_MODE_FULL = 4
    SYMBOL_TRADE_EXECUTION_REQUEST = 0
    SYMBOL_TRADE_EXECUTION_INSTANT = 1
    SYMBOL_TRADE_EXECUTION_MARKET = 2
    SYMBOL_TRADE_EXECUTION_EXCHANGE = 3
    # orders
    ORDER_TYPE_BUY = 0
    ORDER_TYPE_SELL = 1
    ORDER_TYPE_BUY_LIMIT = 2
    ORDER_TYPE_SELL_LIMIT = 3
    ORDER_TYPE_BUY_STOP = 4
    ORDER_TYPE_SELL_STOP = 5
    ORDER_TYPE_BUY_STOP_LIMIT = 6
    ORDER_TYPE_SELL_STOP_LIMIT = 7
    ORDER_TYPE_CLOSE_BY = 8
    ORDER_STATE_STARTED = 0
    ORDER_STATE_PLACED = 1
    ORDER_STATE_CANCELED = 2
    ORDER_STATE_PARTIAL = 3
    ORDER_STATE_FILLED = 4
    ORDER_STATE_REJECTED = 5
    ORDER_STATE_EXPIRED = 6
    ORDER_STATE_REQUEST_ADD = 7
    ORDER_STATE_REQUEST_MODIFY = 8
    ORDER_STATE_REQUEST_CANCEL = 9
    ORDER_FILLING_FOK = 0
    ORDER_FILLING_IOC = 1
    ORDER_FILLING_RETURN = 2
    ORDER_FILLING_BOC = 3
    ORDER_TIME_GTC = 0
    ORDER_TIME_DAY = 1
    ORDER_TIME_SPECIFIED = 2
    ORDER_TIME_SPECIFIED_DAY = 3
    ORDER_REASON_CLIENT = 0
    ORDER_REASON_MOBILE = 1
    ORDER_REASON_WEB = 2
    ORDER_REASON_EXPERT = 3
    ORDER_REASON_SL = 4
    ORDER_REASON_TP = 5
    ORDER_REASON_SO = 6
    # trade requests
    TRADE_ACTION_DEAL = 1
    TRADE_ACTION_PENDING = 5
    TRADE_ACTION_SLTP = 6
    TRADE_ACTION_MODIFY = 7
    TRADE_ACTION_REMOVE = 8
    TRADE_ACTION_CLOSE_BY = 10
    # deals and positions
    DEAL_TYPE_BUY = 0
    DEAL_TYPE_SELL = 1
    DEAL_TYPE_BALANCE = 2
    DEAL_ENTRY_IN = 0
    DEAL_ENTRY_OUT = 1
    DEAL_ENTRY_INOUT = 2
    DEAL_ENTRY_OUT_BY = 3
    DEAL_REASON_CLIENT = 0
    DEAL_REASON_EXPERT = 3
    DEAL_REASON_SL = 4
    DEAL_REASON_TP = 5
    DEAL_REASON_SO = 6
    POSITION_TYPE_BUY = 0
    POSITION_TYPE_SELL = 1
    POSITION_REASON_CLIENT = 0
    POSITION_REASON_EXPERT = 3
    # order_send / order_check return codes
    TRADE_RETCODE_REQUOTE = 10004
    TRADE_RETCODE_REJECT = 10006
    TRADE_RETCODE_CANCEL = 10007
    TRADE_RETCODE_PLACED = 10008
    TRADE_RETCODE_DONE = 10009
    TRADE_RETCODE_DONE_PARTIAL = 10010
    TRADE_RETCODE_ERROR = 10011
    TRADE_RETCODE_TIMEOUT = 10012
    TRADE_RETCODE_INVALID = 10013
    TRADE_RETCODE_INVALID_VOLUME = 10014
    TRADE_RETCODE_INVALID_PRICE = 10015
    TRADE_RETCODE_INVALID_STOPS = 10016
    TRADE_RETCODE_TRADE_DISABLED = 10017
    TRADE_RETCODE_MARKET_CLOSED = 10018
    TRADE_RETCODE_NO_MONEY = 10019
    TRADE_RETCODE_PRICE_CHANGED = 10020
    TRADE_RETCODE_PRICE_OFF = 10021
    TRADE_RETCODE_INVALID_EXPIRATION = 10022
    TRADE_RETCODE_ORDER_CHANGED = 10023
    TRADE_RETCODE_TOO_MANY_REQUESTS = 10024
    TRADE_RETCODE_NO_CHANGES = 10025
    TRADE_RETCODE_SERVER_DISABLES_AT = 10026
    TRADE_RETCODE_CLIENT_DISABLES_AT = 10027
    TRADE_RETCODE_LOCKED = 10028
    TRADE_RETCODE_FROZEN = 10029
    TRADE_RETCODE_INVALID_FILL = 10030
    TRADE_RETCODE_CONNECTION = 10031
    TRADE_RETCODE_ONLY_REAL = 10032
    TRADE_RETCODE_LIMIT_ORDERS = 10033
    TRADE_RETCODE_LIMIT_VOLUME = 10034
    TRADE_RETCODE_INVALID_ORDER = 10035
    TRADE_RETCODE_POSITION_CLOSED = 10036
    TRADE_RETCODE_INVALID_CLOSE_VOLUME = 10038
    TRADE_RETCODE_CLOSE_ORDER_EXIST = 10039
    TRADE_RETCODE_LIMIT_POSITIONS = 10040
    TRADE_RETCODE_REJECT_CANCEL = 10041
    TRADE_RETCODE_LONG_ONLY = 10042
    TRADE_RETCODE_SHORT_ONLY = 10043
    TRADE_RETCODE_CLOSE_ONLY = 10044
    TRADE_RETCODE_FIFO_CLOSE = 10045


COPY_TICKS_ALL = Constants.COPY_TICKS_ALL
RES_S_OK = Constants.RES_S_OK
RES_E_AUTH_FAILED = Constants.RES_E_AUTH_FAILED
# IPC failures: the terminal went away, restarts, or is still starting. Worth reconnecting.
IPC_ERRORS = frozenset(
    {
        Constants.RES_E_INTERNAL_FAIL,
        Constants.RES_E_INTERNAL_FAIL_SEND,
        Constants.RES_E_INTERNAL_FAIL_RECEIVE,
        Constants.RES_E_INTERNAL_FAIL_INIT,
        Constants.RES_E_INTERNAL_FAIL_CONNECT,
        Constants.RES_E_INTERNAL_FAIL_TIMEOUT,
    }
)


class MetaTrader5Api(Protocol):
    """The calls Tickwave makes on the ``MetaTrader5`` module (real or fake).

    Every call returns ``None`` (or ``False``) on failure and leaves the reason in
    :meth:`last_error`, exactly as the package does.
    """

    COPY_TICKS_ALL: int

    def initialize(self, *args: Any, **kwargs: Any) -> bool:
        """Attach to (or start) the terminal; optionally log in."""

    def login(self, *args: Any, **kwargs: Any) -> bool:
        """Log in to a trading account."""

    def shutdown(self) -> None:
        """Close the IPC connection."""

    def last_error(self) -> tuple[int, str]:
        """Return ``(code, description)`` of the last call."""

    def version(self) -> Any:
        """Return ``(terminal version, build, build date)`` or None."""

    def terminal_info(self) -> Any:
        """Return the TerminalInfo named tuple or None."""

    def account_info(self) -> Any:
        """Return the AccountInfo named tuple or None."""

    def symbol_select(self, *args: Any, **kwargs: Any) -> bool:
        """Add a symbol to (or remove it from) Market Watch."""

    def symbol_info(self, *args: Any, **kwargs: Any) -> Any:
        """Return the SymbolInfo named tuple or None."""

    def symbol_info_tick(self, *args: Any, **kwargs: Any) -> Any:
        """Return the last Tick named tuple of a symbol or None."""

    def copy_ticks_from(self, *args: Any, **kwargs: Any) -> Any:
        """Return up to ``count`` ticks from a time on (structured array) or None."""

    def copy_ticks_range(self, *args: Any, **kwargs: Any) -> Any:
        """Return the ticks within an inclusive time range (structured array) or None."""


NOT_WINDOWS_MESSAGE = (
    "the MT5 source needs the MetaTrader5 package, which runs only on Windows (or a Windows "
    "Python under Wine) beside a running MetaTrader 5 terminal. On this machine, replay a tick "
    "file exported from a terminal (`tickwave ingest --source replay --file <export.csv>`) or run "
    "the simulator (`tickwave ingest --source sim`)."
)


def load_metatrader5(platform: str | None = None) -> MetaTrader5Api:
    """Import the ``MetaTrader5`` package, or explain why it cannot be used here.

    Args:
        platform: the ``sys.platform`` to assume (default: this interpreter's).

    Raises:
        ConfigurationError: off Windows, or when the package is not installed.
    """
    if (platform or sys.platform) != "win32":
        raise ConfigurationError(NOT_WINDOWS_MESSAGE)
    try:
        import MetaTrader5  # Windows-only wheel, imported on demand
    except ImportError as exc:
        raise ConfigurationError(
            "the MetaTrader5 package is not installed: `pip install MetaTrader5` in this Python "
            "(it needs a 64-bit Windows Python and a MetaTrader 5 terminal)"
        ) from exc
    return cast(MetaTrader5Api, MetaTrader5)
