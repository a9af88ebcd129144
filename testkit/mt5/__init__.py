"""Fakes of the ``MetaTrader5`` package: same calls, constants and return shapes, in memory.

Tests (and demos on Linux) pass an instance wherever the package would go::

    fake = FakeMetaTrader5()
    fake.add_symbol("EURUSD", digits=5)
    fake.push_ticks("EURUSD", make_ticks([(1_700_000_000_123, 1.08500, 1.08502)]))
    terminal = Terminal(settings.mt5, api=fake)

What they mimic, from the package's documentation (MQL5 reference, "Python integration"),
one module per part, each fake built on the one before:

- :mod:`~testkit.mt5.fake_link` (:class:`FakeTerminalLink`): the IPC link, the login,
  ``last_error``, ``terminal_info`` and ``account_info``; fault injection;
- :mod:`~testkit.mt5.fake_market` (:class:`FakeMetaTrader5`): symbols and ticks;
- :mod:`~testkit.mt5.fake_trade_book` (:class:`FakeTradeBook`): orders, deals and
  positions of a netting or hedging account, and the calls that read them;
- :mod:`~testkit.mt5.fake_trading` (:class:`FakeTradingMetaTrader5`): ``order_check``
  and ``order_send``, stops the server triggers;
- :mod:`~testkit.mt5.fake_records`, :mod:`~testkit.mt5.fake_trade_records`: the named
  tuples they return, with the package's field names (``_asdict()`` works).

Controls that the package does not have (tests only): ``add_symbol``, ``push_ticks``,
``add_account``, ``disconnect``, ``restart_terminal``, ``fail_next``, and ``calls``
(every call made, in order); the trading fake adds ``script``, ``fill_pending``,
``fill_ratio``, ``is_trade_allowed``, ``closed_symbols`` and ``now_msc``. The constants
(``ORDER_*``, ``TRADE_ACTION_*``, ``TRADE_RETCODE_*``, ``DEAL_*``, ``POSITION_*``) are
inherited from :class:`adapters.mt5.api.Constants`.
"""

from testkit.mt5.fake_link import FakeTerminalLink
from testkit.mt5.fake_market import FakeMetaTrader5
from testkit.mt5.fake_records import AccountInfo, SymbolInfo, TerminalInfo, Tick, make_ticks
from testkit.mt5.fake_trade_book import FakeTradeBook
from testkit.mt5.fake_trade_records import (
    HEDGING,
    NETTING,
    OrderCheckResult,
    OrderSendResult,
    TradeDeal,
    TradeOrder,
    TradePosition,
    TradeRequest,
)
from testkit.mt5.fake_trading import FakeTradingMetaTrader5

__all__ = [
    "HEDGING",
    "NETTING",
    "AccountInfo",
    "FakeMetaTrader5",
    "FakeTerminalLink",
    "FakeTradeBook",
    "FakeTradingMetaTrader5",
    "OrderCheckResult",
    "OrderSendResult",
    "SymbolInfo",
    "TerminalInfo",
    "Tick",
    "TradeDeal",
    "TradeOrder",
    "TradePosition",
    "TradeRequest",
    "make_ticks",
]
