"""The fake MetaTrader5 module behaves as the package's documentation says."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from adapters.mt5.api import TICK_DTYPE, Constants, MetaTrader5Api
from testkit.mt5 import AccountInfo, FakeMetaTrader5, SymbolInfo, TerminalInfo, make_ticks

T0 = 1_709_539_200_000  # 2024-03-04 08:00:00 on the server clock


@pytest.fixture
def fake() -> FakeMetaTrader5:
    terminal = FakeMetaTrader5()
    terminal.add_symbol("EURUSD", digits=5)
    terminal.add_account(5001, "secret", "Fake-Demo")
    assert terminal.initialize()
    assert terminal.symbol_select("EURUSD", True)
    return terminal


def test_fake_when_typed_as_the_api_protocol_then_accepted() -> None:
    api: MetaTrader5Api = FakeMetaTrader5()

    assert api.COPY_TICKS_ALL == -1


def test_fake_when_called_before_initialize_then_none_and_no_ipc_error() -> None:
    terminal = FakeMetaTrader5()
    terminal.add_symbol("EURUSD")

    result = terminal.copy_ticks_range("EURUSD", 0, 10, terminal.COPY_TICKS_ALL)

    assert result is None
    assert terminal.last_error() == (-10004, "No IPC connection")


def test_copy_ticks_range_when_ticks_exist_then_structured_array_with_real_fields(fake: FakeMetaTrader5) -> None:
    fake.push_ticks("EURUSD", make_ticks([(T0 + 5, 1.08500, 1.08502)]))

    ticks = fake.copy_ticks_range("EURUSD", T0 // 1000, T0 // 1000 + 1, fake.COPY_TICKS_ALL)

    assert ticks is not None
    assert ticks.dtype == TICK_DTYPE
    assert ticks.dtype.names == ("time", "bid", "ask", "last", "volume", "time_msc", "flags", "volume_real")
    assert [str(ticks.dtype[name]) for name in ticks.dtype.names] == [
        "int64",
        "float64",
        "float64",
        "float64",
        "uint64",
        "int64",
        "uint32",
        "float64",
    ]
    assert ticks["time"][0] == T0 // 1000
    assert ticks["time_msc"][0] == T0 + 5
    assert fake.last_error() == (1, "Success")


def test_copy_ticks_range_when_ticks_on_both_ends_then_both_included(fake: FakeMetaTrader5) -> None:
    fake.push_ticks(
        "EURUSD", make_ticks([(T0 - 1, 1.0, 1.1), (T0, 1.0, 1.2), (T0 + 1000, 1.0, 1.3), (T0 + 1001, 1.0, 1.4)])
    )

    ticks = fake.copy_ticks_range("EURUSD", T0 // 1000, T0 // 1000 + 1, fake.COPY_TICKS_ALL)

    assert ticks is not None
    assert ticks["time_msc"].tolist() == [T0, T0 + 1000]


def test_copy_ticks_when_several_share_a_millisecond_then_all_returned_in_order(fake: FakeMetaTrader5) -> None:
    fake.push_ticks("EURUSD", make_ticks([(T0, 1.0, 1.1), (T0, 1.0, 1.2), (T0, 1.0, 1.3)]))

    ranged = fake.copy_ticks_range("EURUSD", datetime.fromtimestamp(T0 / 1000, tz=UTC), T0 // 1000, -1)
    counted = fake.copy_ticks_from("EURUSD", T0 // 1000, 2, fake.COPY_TICKS_ALL)

    assert ranged is not None and counted is not None
    assert ranged["ask"].tolist() == [1.1, 1.2, 1.3]
    assert counted["ask"].tolist() == [1.1, 1.2]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (Constants.COPY_TICKS_INFO, [2, 4]),
        (Constants.COPY_TICKS_TRADE, [8 | 16]),
        (Constants.COPY_TICKS_ALL, [2, 4, 24]),
    ],
)
def test_copy_ticks_from_when_filtered_by_kind_then_only_those_ticks(
    fake: FakeMetaTrader5, flags: int, expected: list[int]
) -> None:
    fake.push_ticks(
        "EURUSD", make_ticks([(T0, 1.0, 1.1, 0, 0, 2), (T0 + 1, 1.0, 1.2, 0, 0, 4), (T0 + 2, 1.0, 1.2, 1.05, 3, 24)])
    )

    ticks = fake.copy_ticks_from("EURUSD", T0 // 1000, 100, flags)

    assert ticks is not None
    assert ticks["flags"].tolist() == expected


@pytest.mark.parametrize(
    "call",
    [
        lambda f: f.copy_ticks_from("EURUSD", T0 // 1000, 0, -1),
        lambda f: f.copy_ticks_from("EURUSD", "yesterday", 10, -1),
        lambda f: f.copy_ticks_range("EURUSD", T0 // 1000 + 5, T0 // 1000, -1),
        lambda f: f.copy_ticks_range("EURUSD", T0 // 1000, T0 // 1000, 99),
    ],
)
def test_copy_ticks_when_parameters_invalid_then_none_and_invalid_params(fake: FakeMetaTrader5, call: object) -> None:
    assert callable(call)

    assert call(fake) is None
    assert fake.last_error() == (-2, "Terminal: Invalid params")


def test_symbol_calls_when_symbol_unknown_then_not_found(fake: FakeMetaTrader5) -> None:
    assert fake.symbol_info("NOPE") is None
    assert fake.last_error()[0] == Constants.RES_E_NOT_FOUND
    assert fake.symbol_select("NOPE", True) is False


def test_symbol_info_when_read_then_named_tuple_with_all_96_fields(fake: FakeMetaTrader5) -> None:
    fake.push_ticks("EURUSD", make_ticks([(T0, 1.08500, 1.08502)]))

    info = fake.symbol_info("EURUSD")

    assert isinstance(info, SymbolInfo)
    assert len(info._asdict()) == 96
    assert (info.name, info.digits, info.trade_tick_size, info.select, info.bid) == ("EURUSD", 5, 1e-05, True, 1.085)


def test_symbol_info_tick_when_not_in_market_watch_then_none(fake: FakeMetaTrader5) -> None:
    fake.push_ticks("EURUSD", make_ticks([(T0, 1.08500, 1.08502)]))
    fake.symbol_select("EURUSD", False)

    assert fake.symbol_info_tick("EURUSD") is None

    fake.symbol_select("EURUSD", True)
    tick = fake.symbol_info_tick("EURUSD")
    assert tick is not None and tick.time_msc == T0 and tick._fields[-1] == "volume_real"


def test_initialize_when_credentials_wrong_then_authorization_failed() -> None:
    terminal = FakeMetaTrader5()
    terminal.add_account(5001, "secret", "Fake-Demo")

    assert terminal.initialize(login=5001, password="wrong", server="Fake-Demo") is False
    assert terminal.last_error() == (-6, "Terminal: Authorization failed")
    assert not terminal.is_attached
    assert terminal.initialize(login="5001", password="secret") is False
    assert terminal.last_error()[0] == Constants.RES_E_INVALID_PARAMS


def test_initialize_when_credentials_right_then_account_info_names_them() -> None:
    terminal = FakeMetaTrader5()
    terminal.add_account(5001, "secret", "Fake-Demo")

    assert terminal.initialize("C:\\MT5\\terminal64.exe", login=5001, password="secret", server="Fake-Demo")

    account = terminal.account_info()
    assert isinstance(account, AccountInfo) and (account.login, account.server) == (5001, "Fake-Demo")
    assert isinstance(terminal.terminal_info(), TerminalInfo)
    assert terminal.version() == (500, terminal.terminal.build, "13 Jan 2025")


def test_restart_terminal_when_reinitialized_then_times_out_before_answering(fake: FakeMetaTrader5) -> None:
    fake.restart_terminal(startup_failures=2)

    assert fake.symbols_total() == 0
    assert fake.last_error() == (-10004, "No IPC connection")
    assert fake.initialize() is False and fake.last_error() == (-10005, "IPC timeout")
    assert fake.initialize() is False
    assert fake.initialize() is True
    assert fake.symbols_total() == 1


def test_fail_next_when_injected_then_that_call_fails_once(fake: FakeMetaTrader5) -> None:
    fake.fail_next("symbol_info", Constants.RES_E_FAIL)

    assert fake.symbol_info("EURUSD") is None
    assert fake.last_error() == (-1, "Terminal: Call failed")
    assert fake.symbol_info("EURUSD") is not None


def test_push_ticks_when_going_back_in_time_then_refused(fake: FakeMetaTrader5) -> None:
    fake.push_ticks("EURUSD", make_ticks([(T0, 1.0, 1.1)]))

    with pytest.raises(ValueError, match="back in time"):
        fake.push_ticks("EURUSD", make_ticks([(T0 - 1, 1.0, 1.1)]))
    assert len(fake.copy_ticks_from("EURUSD", 0, 10, -1) or np.empty(0)) == 1
