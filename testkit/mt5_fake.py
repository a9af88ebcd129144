"""A stand-in for the ``MetaTrader5`` package: same calls, constants and return shapes.

Tests (and demos on Linux) pass an instance wherever the package would go::

    fake = FakeMetaTrader5()
    fake.add_symbol("EURUSD", digits=5)
    fake.push_ticks("EURUSD", make_ticks([(1_700_000_000_123, 1.08500, 1.08502)]))
    terminal = Terminal(settings.mt5, api=fake)

What it mimics, from the package's documentation (MQL5 reference, "Python integration"):

- every call returns ``None`` (or ``False``) on failure and leaves ``(code, description)``
  in :meth:`last_error`; calls made before :meth:`initialize` fail with
  ``(-10004, 'No IPC connection')``;
- ``copy_ticks_from`` / ``copy_ticks_range`` return numpy structured arrays with the real
  field names and dtypes (:data:`adapters.mt5.api.TICK_DTYPE`), ordered by ``time_msc``,
  with both ends of a range included and several ticks allowed in one millisecond; times
  are given as ``datetime`` or integer seconds since 1970 on the server clock (naive
  datetimes are read as that clock, as the package does with UTC-built ones);
- ``symbol_info``, ``symbol_info_tick``, ``terminal_info`` and ``account_info`` return named
  tuples with the package's field names (``_asdict()`` works);
- the terminal keeps its tick history while the IPC link is down, so a client that
  reconnects can back-fill the gap.

Controls that the package does not have (tests only): :meth:`add_symbol`,
:meth:`push_ticks`, :meth:`add_account`, :meth:`disconnect`, :meth:`restart_terminal`,
:meth:`fail_next`, and :attr:`calls` (every call made, in order).

Extending it (the execution process adds ``order_check``, ``order_send``, ``orders_get``,
``positions_get``, ``history_orders_get``, ``history_deals_get``): subclass it, start each
new call with ``if not self._enter("order_send", ...): return None`` (connection check,
injected faults, call log), finish with ``self._succeed()`` or ``return self._fail(code)``,
and keep trading state in new attributes. The constants (``ORDER_*``, ``TRADE_ACTION_*``,
``TRADE_RETCODE_*``, ``DEAL_*``, ``POSITION_*``) are already here, inherited from
:class:`adapters.mt5.api.Constants`.
"""

from __future__ import annotations

import calendar
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
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


@dataclass
class _Symbol:
    info: SymbolInfo
    ticks: TickArray = field(default_factory=lambda: np.empty(0, dtype=TICK_DTYPE))
    is_selected: bool = False


@dataclass
class _Fault:
    call: str
    code: int
    remaining: int


class FakeMetaTrader5(Constants):
    """An in-memory MetaTrader 5 terminal behind the package's API (see the module docstring).

    Args:
        terminal: what ``terminal_info`` reports.
    """

    def __init__(self, terminal: TerminalInfo | None = None) -> None:
        self.terminal = terminal or TerminalInfo()
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.initialize_count = 0
        self._symbols: dict[str, _Symbol] = {}
        self._accounts: dict[int, tuple[str, str]] = {}
        self._account: AccountInfo | None = None
        self._is_attached = False
        self._disconnect_code = self.RES_E_INTERNAL_FAIL_CONNECT
        self._startup_failures = 0
        self._faults: deque[_Fault] = deque()
        self._last_error: tuple[int, str] = (self.RES_S_OK, DESCRIPTIONS[self.RES_S_OK])

    # ----------------------------------------------------------------------------------
    # Test controls (not part of the package)
    # ----------------------------------------------------------------------------------

    def add_symbol(self, name: str, digits: int = 5, tick_size: float | None = None, **info: Any) -> None:
        """Make ``name`` known to the terminal (not yet in Market Watch)."""
        size = tick_size if tick_size is not None else 10.0**-digits
        info = {"point": 10.0**-digits, "path": f"Fake\\{name}", **info}
        self._symbols[name] = _Symbol(SymbolInfo(name=name, digits=digits, trade_tick_size=size, **info))

    def add_account(self, login: int, password: str, server: str) -> None:
        """Accept ``login``/``password`` on ``server``."""
        self._accounts[login] = (password, server)

    def push_ticks(self, symbol: str, ticks: TickArray) -> None:
        """Append ticks to a symbol's history, as the trade server would stream them.

        Raises:
            ValueError: if they go back in time (a terminal's history is ordered).
        """
        state = self._symbols[symbol]
        times = ticks["time_msc"]
        previous = state.ticks["time_msc"][-1:] if len(state.ticks) else times[:0]
        if len(times) and np.any(np.diff(np.concatenate([previous, times])) < 0):
            raise ValueError(f"ticks of {symbol} must not go back in time")
        state.ticks = np.concatenate([state.ticks, ticks.astype(TICK_DTYPE)])

    def disconnect(self, code: int = Constants.RES_E_INTERNAL_FAIL_CONNECT) -> None:
        """Break the IPC link: every call fails with ``code`` until :meth:`initialize` succeeds."""
        self._is_attached = False
        self._disconnect_code = code

    def restart_terminal(self, startup_failures: int = 2) -> None:
        """Simulate a terminal restart: the link breaks and the next ``initialize`` calls time out."""
        self.disconnect(self.RES_E_INTERNAL_FAIL_CONNECT)
        self._startup_failures = startup_failures

    def fail_next(self, call: str, code: int, times: int = 1) -> None:
        """Make the next ``times`` calls of ``call`` fail with ``code``."""
        self._faults.append(_Fault(call, code, times))

    @property
    def is_attached(self) -> bool:
        """True while a client is attached over IPC."""
        return self._is_attached

    # ----------------------------------------------------------------------------------
    # Plumbing shared by every call (and by subclasses adding calls)
    # ----------------------------------------------------------------------------------

    def _enter(self, call: str, *args: Any, needs_link: bool = True, **kwargs: Any) -> bool:
        """Record the call; return False (with last_error set) if it must fail."""
        self.calls.append((call, args, kwargs))
        for fault in self._faults:
            if fault.call == call and fault.remaining > 0:
                fault.remaining -= 1
                if fault.code in (self.RES_E_INTERNAL_FAIL_CONNECT, self.RES_E_INTERNAL_FAIL_TIMEOUT):
                    self._is_attached = False
                    self._disconnect_code = fault.code
                self._fail(fault.code)
                return False
        if needs_link and not self._is_attached:
            self._fail(self._disconnect_code)
            return False
        return True

    def _fail(self, code: int, description: str | None = None) -> None:
        self._last_error = (code, description or DESCRIPTIONS.get(code, "Terminal: error"))

    def _succeed(self) -> None:
        self._last_error = (self.RES_S_OK, DESCRIPTIONS[self.RES_S_OK])

    def _symbol(self, name: Any) -> _Symbol | None:
        state = self._symbols.get(name) if isinstance(name, str) else None
        if state is None:
            self._fail(self.RES_E_NOT_FOUND)
        return state

    @staticmethod
    def _to_ms(value: Any) -> int | None:
        # The package takes datetimes or integer seconds; naive datetimes read as the server clock.
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return calendar.timegm(value.timetuple()) * 1000 + value.microsecond // 1000
            return int(value.timestamp() * 1000)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return int(value * 1000)
        return None

    def _filtered(self, ticks: TickArray, flags: Any) -> TickArray | None:
        if flags == self.COPY_TICKS_ALL:
            return ticks
        wanted = {
            self.COPY_TICKS_INFO: self.TICK_FLAG_BID | self.TICK_FLAG_ASK,
            self.COPY_TICKS_TRADE: self.TICK_FLAG_LAST | self.TICK_FLAG_VOLUME,
        }.get(flags)
        if wanted is None:
            return None
        selected: TickArray = ticks[(ticks["flags"] & wanted) != 0]
        return selected

    # ----------------------------------------------------------------------------------
    # The package's API
    # ----------------------------------------------------------------------------------

    def initialize(
        self,
        path: str | None = None,
        /,
        *,
        login: Any = None,  # the package wants an int; anything else is "Invalid params"
        password: str | None = None,
        server: str | None = None,
        timeout: int | None = None,
        portable: bool = False,
    ) -> bool:
        """Attach to the terminal; log in when ``login`` is given."""
        if not self._enter("initialize", path, needs_link=False, login=login, server=server, timeout=timeout):
            return False
        self.initialize_count += 1
        if self._startup_failures > 0:
            self._startup_failures -= 1
            self._fail(self.RES_E_INTERNAL_FAIL_TIMEOUT)
            return False
        if login is not None and not isinstance(login, int):
            self._fail(self.RES_E_INVALID_PARAMS)
            return False
        self._is_attached = True
        if login is not None and not self._authorize(login, password, server):
            self._is_attached = False
            return False
        if self._account is None:
            self._account = AccountInfo(login=0)
        self._succeed()
        return True

    def _authorize(self, login: Any, password: str | None, server: str | None) -> bool:
        expected = self._accounts.get(login)
        if expected is None or password != expected[0] or (server is not None and server != expected[1]):
            self._fail(self.RES_E_AUTH_FAILED)
            return False
        self._account = AccountInfo(login=login, server=expected[1])
        return True

    def login(self, login: Any, password: str | None = None, server: str | None = None, timeout: int = 60_000) -> bool:
        """Log in to another account."""
        if not self._enter("login", login, server=server, timeout=timeout):
            return False
        if not isinstance(login, int):
            self._fail(self.RES_E_INVALID_PARAMS)
            return False
        if not self._authorize(login, password, server):
            return False
        self._succeed()
        return True

    def shutdown(self) -> None:
        """Detach from the terminal."""
        self.calls.append(("shutdown", (), {}))
        self._is_attached = False
        self._disconnect_code = self.RES_E_INTERNAL_FAIL_CONNECT
        self._succeed()

    def last_error(self) -> tuple[int, str]:
        """Return ``(code, description)`` of the last call."""
        return self._last_error

    def version(self) -> tuple[int, int, str] | None:
        """Return ``(500, build, build date)``."""
        if not self._enter("version"):
            return None
        self._succeed()
        return (500, self.terminal.build, "13 Jan 2025")

    def terminal_info(self) -> TerminalInfo | None:
        """Return the terminal's state and settings."""
        if not self._enter("terminal_info"):
            return None
        self._succeed()
        return self.terminal

    def account_info(self) -> AccountInfo | None:
        """Return the account the terminal is logged in to."""
        if not self._enter("account_info"):
            return None
        self._succeed()
        return self._account

    def symbols_total(self) -> int:
        """Return how many symbols the terminal knows (0 on failure, as the package does)."""
        if not self._enter("symbols_total"):
            return 0
        self._succeed()
        return len(self._symbols)

    def symbol_select(self, symbol: str, enable: bool = True) -> bool:
        """Add ``symbol`` to Market Watch (or remove it)."""
        if not self._enter("symbol_select", symbol, enable):
            return False
        state = self._symbol(symbol)
        if state is None:
            return False
        state.is_selected = bool(enable)
        self._succeed()
        return True

    def symbol_info(self, symbol: str) -> SymbolInfo | None:
        """Return the symbol's properties, with the latest quote."""
        if not self._enter("symbol_info", symbol):
            return None
        state = self._symbol(symbol)
        if state is None:
            return None
        info = state.info._replace(select=state.is_selected, visible=state.is_selected)
        if len(state.ticks):
            latest = state.ticks[-1]
            info = info._replace(bid=float(latest["bid"]), ask=float(latest["ask"]), time=int(latest["time"]))
        self._succeed()
        return info

    def symbol_info_tick(self, symbol: str) -> Tick | None:
        """Return the symbol's latest tick (the symbol must be in Market Watch)."""
        if not self._enter("symbol_info_tick", symbol):
            return None
        state = self._symbol(symbol)
        if state is None:
            return None
        if not state.is_selected or not len(state.ticks):
            self._fail(self.RES_E_NOT_FOUND)
            return None
        self._succeed()
        return Tick(*state.ticks[-1].tolist())

    def copy_ticks_from(self, symbol: str, date_from: Any, count: int, flags: int) -> TickArray | None:
        """Return up to ``count`` ticks with ``time_msc >= date_from``, oldest first."""
        if not self._enter("copy_ticks_from", symbol, date_from, count, flags):
            return None
        state = self._symbol(symbol)
        if state is None:
            return None
        from_ms = self._to_ms(date_from)
        if from_ms is None or not isinstance(count, int) or count <= 0:
            self._fail(self.RES_E_INVALID_PARAMS)
            return None
        ticks = self._filtered(state.ticks, flags)
        if ticks is None:
            self._fail(self.RES_E_INVALID_PARAMS)
            return None
        start = int(np.searchsorted(ticks["time_msc"], from_ms, side="left"))
        self._succeed()
        return ticks[start : start + count].copy()

    def copy_ticks_range(self, symbol: str, date_from: Any, date_to: Any, flags: int) -> TickArray | None:
        """Return the ticks with ``date_from <= time_msc <= date_to`` (both ends included), oldest first."""
        if not self._enter("copy_ticks_range", symbol, date_from, date_to, flags):
            return None
        state = self._symbol(symbol)
        if state is None:
            return None
        from_ms, to_ms = self._to_ms(date_from), self._to_ms(date_to)
        if from_ms is None or to_ms is None or to_ms < from_ms:
            self._fail(self.RES_E_INVALID_PARAMS)
            return None
        ticks = self._filtered(state.ticks, flags)
        if ticks is None:
            self._fail(self.RES_E_INVALID_PARAMS)
            return None
        times = ticks["time_msc"]
        start = int(np.searchsorted(times, from_ms, side="left"))
        stop = int(np.searchsorted(times, to_ms, side="right"))
        self._succeed()
        return ticks[start:stop].copy()
