"""The terminal adapter: errors carry last_error, IPC failures reconnect with backoff."""

from __future__ import annotations

import logging
import threading

import pytest

from adapters.mt5.api import NOT_WINDOWS_MESSAGE, load_metatrader5
from adapters.mt5.terminal import Backoff, Terminal, TerminalDisconnected, TerminalError
from testkit.mt5_fake import FakeMetaTrader5, make_ticks
from tickwave.config import MT5Settings
from tickwave.errors import ConfigurationError, RetryableError


def settings(**overrides: object) -> MT5Settings:
    values: dict[str, object] = {"reconnect_initial_s": 0.001, "reconnect_max_s": 0.004, **overrides}
    return MT5Settings.model_validate(values)


class CountingStop(threading.Event):
    """A stop event that records every pause asked of it (and never really sleeps)."""

    def __init__(self) -> None:
        super().__init__()
        self.pauses: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.pauses.append(timeout or 0.0)
        return self.is_set()


def test_load_metatrader5_when_not_windows_then_error_points_to_replay_and_simulator() -> None:
    with pytest.raises(ConfigurationError) as error:
        load_metatrader5(platform="linux")

    assert str(error.value) == NOT_WINDOWS_MESSAGE
    for hint in ("Windows", "Wine", "--source replay", "--source sim"):
        assert hint in NOT_WINDOWS_MESSAGE


def test_load_metatrader5_when_windows_without_package_then_error_says_install_it() -> None:
    with pytest.raises(ConfigurationError, match="pip install MetaTrader5"):
        load_metatrader5(platform="win32")


def test_connect_when_account_configured_then_logs_in_without_logging_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeMetaTrader5()
    fake.add_account(5001, "s3cr3t-pw", "Fake-Demo")
    terminal = Terminal(
        settings(login=5001, password="s3cr3t-pw", server="Fake-Demo", path="C:\\mt5\\terminal64.exe"), fake
    )

    with caplog.at_level(logging.DEBUG):
        terminal.connect()

    assert terminal.is_connected
    name, args, kwargs = fake.calls[0]
    assert (name, args, kwargs["login"], kwargs["server"]) == (
        "initialize",
        ("C:\\mt5\\terminal64.exe",),
        5001,
        "Fake-Demo",
    )
    assert "s3cr3t-pw" not in caplog.text
    assert "account=5001" in caplog.text


def test_connect_when_password_refused_then_configuration_error_naming_the_settings() -> None:
    fake = FakeMetaTrader5()
    fake.add_account(5001, "right", "Fake-Demo")
    terminal = Terminal(settings(login=5001, password="wrong", server="Fake-Demo"), fake)

    with pytest.raises(ConfigurationError, match=r"refused login 5001.*\(-6, 'Terminal: Authorization failed'\)"):
        terminal.connect()
    assert not fake.is_attached


def test_call_when_ipc_breaks_then_retryable_error_with_last_error(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeMetaTrader5()
    terminal = Terminal(settings(), fake)
    terminal.connect()
    fake.disconnect()

    with pytest.raises(TerminalDisconnected) as error:
        terminal.call("terminal_info")

    assert isinstance(error.value, RetryableError)
    assert (error.value.code, error.value.description) == (-10004, "No IPC connection")
    assert not terminal.is_connected
    assert "last_error=(-10004, 'No IPC connection')" in caplog.text


def test_call_when_terminal_refuses_then_plain_terminal_error() -> None:
    fake = FakeMetaTrader5()
    terminal = Terminal(settings(), fake)
    terminal.connect()

    with pytest.raises(TerminalError) as error:
        terminal.call("symbol_select", "NOPE", True)

    assert not isinstance(error.value, TerminalDisconnected)
    assert error.value.code == -4
    assert terminal.is_connected


def test_reconnect_when_terminal_restarts_then_retries_with_doubling_pauses() -> None:
    fake = FakeMetaTrader5()
    terminal = Terminal(settings(reconnect_initial_s=1.0, reconnect_max_s=4.0), fake)
    terminal.connect()
    fake.restart_terminal(startup_failures=4)
    stop = CountingStop()

    assert terminal.reconnect(stop)

    assert stop.pauses == [1.0, 2.0, 4.0, 4.0]
    assert terminal.is_connected and terminal.reconnects == 1
    assert fake.initialize_count == 6


def test_reconnect_when_stopped_meanwhile_then_gives_up() -> None:
    fake = FakeMetaTrader5()
    terminal = Terminal(settings(), fake)
    fake.restart_terminal(startup_failures=100)
    stop = CountingStop()
    stop.set()

    assert terminal.reconnect(stop) is False


def test_backoff_when_iterated_then_doubles_up_to_the_cap() -> None:
    delays = Backoff(0.5, 3.0).delays()

    assert [next(delays) for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_ticks_range_when_nothing_in_range_then_empty_array() -> None:
    fake = FakeMetaTrader5()
    fake.add_symbol("EURUSD")
    terminal = Terminal(settings(), fake)
    terminal.connect()
    fake.push_ticks("EURUSD", make_ticks([(5_000, 1.0, 1.1)]))

    assert len(terminal.ticks_range("EURUSD", 10_000, 20_000)) == 0
    assert terminal.ticks_range("EURUSD", 0, 5_000)["time_msc"].tolist() == [5_000]


def test_ticks_range_when_package_answers_none_with_success_then_empty_array() -> None:
    fake = FakeMetaTrader5()
    fake.add_symbol("EURUSD")
    terminal = Terminal(settings(), fake)
    terminal.connect()
    fake.fail_next("copy_ticks_range", fake.RES_S_OK)

    assert len(terminal.ticks_range("EURUSD", 0, 1_000)) == 0
