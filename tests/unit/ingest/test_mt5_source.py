"""The MT5 polling source against the fake terminal: no duplicates, no losses, UTC times."""

from __future__ import annotations

import logging
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.mt5.terminal import Terminal
from streams.ingest.adapters.mt5 import Mt5Source
from streams.ingest.logic import TickValidator
from testkit.mt5 import FakeMetaTrader5
from tests.unit.ingest.helpers import REGISTRY, T0, ScriptedTerminal, Step
from tickwave.clock import ManualClock
from tickwave.config import MT5Settings
from tickwave.contracts import Tick
from tickwave.errors import ConfigurationError


def run_source(
    script: list[Step], *, timezone: str = "UTC", symbols: tuple[str, ...] = ("EURUSD",), window_s: int = 2
) -> tuple[list[Tick], ScriptedTerminal, Mt5Source]:
    stop = threading.Event()
    fake = ScriptedTerminal(script, stop)
    mt5 = MT5Settings(
        server_timezone=timezone,
        poll_interval_ms=1,
        window_s=window_s,
        backfill_s=3600,
        reconnect_initial_s=0.001,
        reconnect_max_s=0.002,
    )
    now = ManualClock(T0 + 600_000)  # the UTC wall clock during the test
    validator = TickValidator(REGISTRY, "mt5", 60_000, now)
    source = Mt5Source(Terminal(mt5, fake), list(symbols), REGISTRY, validator, stop, now)
    ticks: list[Tick] = []
    for batch in source.batches():
        assert not batch.rejected, batch.rejected
        ticks.extend(batch.ticks.ticks())
    source.close()
    return ticks, fake, source


def push(symbol: str, rows: list[tuple[int, float, float]]) -> Step:
    return lambda terminal: terminal.push(symbol, rows)


def idle(terminal: ScriptedTerminal) -> None:
    """A poll in which nothing happens."""


def test_poll_when_ticks_share_a_millisecond_across_polls_then_each_sent_once_with_its_seq() -> None:
    script = [
        push("EURUSD", [(T0, 1.08500, 1.08502), (T0 + 999, 1.08501, 1.08503), (T0 + 999, 1.08502, 1.08504)]),
        idle,
        push("EURUSD", [(T0 + 999, 1.08503, 1.08505), (T0 + 1000, 1.08504, 1.08506)]),
        push("EURUSD", [(T0 + 1000, 1.08505, 1.08507)]),
        idle,
    ]

    ticks, _fake, _source = run_source(script)

    assert [(t.time_ms - T0, t.seq, t.bid) for t in ticks] == [
        (0, 0, 1.085),
        (999, 0, 1.08501),
        (999, 1, 1.08502),
        (999, 2, 1.08503),
        (1000, 0, 1.08504),
        (1000, 1, 1.08505),
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(st.sampled_from([0, 0, 1, 400, 999, 1000, 2500, 9000]), max_size=6), min_size=1, max_size=12),
    st.integers(1, 5),
)
def test_poll_when_history_grows_in_any_pattern_then_exactly_the_pushed_ticks_in_order(
    pushes: list[list[int]], window_s: int
) -> None:
    clock = [T0]
    script: list[Step] = []
    for gaps in pushes:
        rows = []
        for gap in gaps:
            clock[0] += gap
            rows.append((clock[0], 1.08500, 1.08500 + (len(rows) + 1) * 1e-5))
        script.append(push("EURUSD", rows))

    ticks, fake, _source = run_source(script, window_s=window_s)

    assert [(t.time_ms, t.ask) for t in ticks] == [(time_msc, ask) for time_msc, _bid, ask in fake.pushed]
    assert len({t.tick_id for t in ticks}) == len(ticks)


def test_poll_when_terminal_restarts_then_reconnects_and_backfills_the_gap(caplog: pytest.LogCaptureFixture) -> None:
    def restart_with_ticks_during_downtime(terminal: ScriptedTerminal) -> None:
        terminal.restart_terminal(startup_failures=2)
        terminal.push("EURUSD", [(T0 + 5_000 + i, 1.08500, 1.08510) for i in range(40)])  # while down

    script = [
        push("EURUSD", [(T0 + i * 100, 1.08500, 1.08510) for i in range(30)]),
        restart_with_ticks_during_downtime,
        push("EURUSD", [(T0 + 90_000, 1.08600, 1.08610)]),
        idle,
    ]

    with caplog.at_level(logging.INFO):
        ticks, fake, source = run_source(script)

    assert [t.time_ms for t in ticks] == [time_msc for time_msc, _bid, _ask in fake.pushed]
    assert source.terminal.reconnects == 1
    assert fake.initialize_count == 4  # first connect, two timeouts while the terminal starts, success
    assert "last_error=(-10004, 'No IPC connection')" in caplog.text
    assert "last_error=(-10005, 'IPC timeout')" in caplog.text
    assert "back-filling the gap" in caplog.text


def test_poll_when_a_call_fails_without_ipc_loss_then_logged_and_retried_next_poll(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def fail_once(terminal: ScriptedTerminal) -> None:
        terminal.push("EURUSD", [(T0 + 1, 1.08500, 1.08510)])
        terminal.fail_next("copy_ticks_range", terminal.RES_E_FAIL)

    ticks, _fake, source = run_source([push("EURUSD", [(T0, 1.08500, 1.08510)]), fail_once, idle])

    assert [t.time_ms - T0 for t in ticks] == [0, 1]
    assert source.poll_errors == 1 and source.terminal.reconnects == 0
    assert "last_error=(-1, 'Terminal: Call failed')" in caplog.text


def test_poll_when_server_clock_is_three_hours_ahead_then_ticks_stamped_in_utc() -> None:
    server_ms = T0 + 3 * 3_600_000  # 11:00 on the server is 08:00 UTC

    ticks, _fake, _source = run_source([push("EURUSD", [(server_ms, 1.085, 1.0851)]), idle], timezone="+03:00")

    assert [t.time_ms for t in ticks] == [T0]


def test_poll_when_several_symbols_then_each_keeps_its_own_cursor() -> None:
    script = [
        push("EURUSD", [(T0, 1.085, 1.0851)]),
        push("USDJPY", [(T0, 150.0, 150.01), (T0, 150.001, 150.011)]),
        push("EURUSD", [(T0, 1.086, 1.0861)]),
        idle,
    ]

    ticks, _fake, _source = run_source(script, symbols=("EURUSD", "USDJPY"))

    assert sorted(t.tick_id for t in ticks) == [f"EURUSD:{T0}:0", f"EURUSD:{T0}:1", f"USDJPY:{T0}:0", f"USDJPY:{T0}:1"]


def test_source_when_symbol_not_in_registry_then_configuration_error() -> None:
    stop = threading.Event()
    terminal = Terminal(MT5Settings(), FakeMetaTrader5())

    with pytest.raises(ConfigurationError, match="BTCUSD"):
        Mt5Source(
            terminal, ["BTCUSD"], REGISTRY, TickValidator(REGISTRY, "mt5", 0, ManualClock(0)), stop, ManualClock(0)
        )


def test_source_when_broker_digits_differ_then_warns(caplog: pytest.LogCaptureFixture) -> None:
    def quote_eurusd_with_three_digits(terminal: ScriptedTerminal) -> None:
        terminal.push("EURUSD", [(T0, 1.085, 1.086)])

    stop = threading.Event()
    fake = ScriptedTerminal([quote_eurusd_with_three_digits], stop)
    fake.add_symbol("EURUSD", digits=3)
    validator = TickValidator(REGISTRY, "mt5", 60_000, ManualClock(T0))
    source = Mt5Source(
        Terminal(MT5Settings(poll_interval_ms=1), fake), ["EURUSD"], REGISTRY, validator, stop, ManualClock(T0)
    )

    sent = sum(len(batch.ticks) for batch in source.batches())

    assert sent == 1
    assert "symbol=EURUSD has 3 digits at the broker but 5 in the registry" in caplog.text
