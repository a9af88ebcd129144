"""One writer per account: the real processes, the real Kafka.

Across hosts (another state dir): a second ``python -m execution`` for the same account
takes the account's transactional id; the first is fenced at its next confirmation, records
a critical ``fenced`` event and exits non-zero, and no signal of a stream running through
the takeover gets two orders. On one host (one state dir): the instance lock refuses the
second process and the first trades on.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from adapters.endpoints import ready_marker
from tests.integration.execution.conftest import Bus, ExecutionProcess, Processes, make_signal, make_tick, now_ms
from tickwave.contracts import AnyMessage, OrderDenied, OrderSubmitted, RiskEvent

MAX_SIGNALS = 2_000  # the stream runs until the test has seen enough (a bound, not a target)
SYMBOLS = ("EURUSD", "GBPUSD")
LIMITS = {
    "TICKWAVE_EXECUTION_RISK_SIGNAL_TTL_MS": "600000",
    "TICKWAVE_EXECUTION_RISK_MAX_TICK_AGE_MS": "600000",
    "TICKWAVE_EXECUTION_RISK_MAX_ORDERS_PER_SECOND": "1000",
}


def _stream(bus: Bus, sent: list[str], stop: threading.Event) -> None:
    """Signals alternating long and short per symbol (every one asks for an order), 40 a second."""
    for index in range(MAX_SIGNALS):
        if stop.is_set():
            return
        signal = make_signal(index, now_ms(), ("long", "short")[index // 2 % 2], 0.5, SYMBOLS[index % 2])
        bus.send(signal, flush=False)
        sent.append(signal.signal_id)
        bus.producer.poll(0)
        time.sleep(0.025)
    bus.producer.flush(10)


def _wait_ready(state_dir: Path, process: ExecutionProcess, processes: Processes, timeout_s: float = 60) -> None:
    marker = ready_marker(state_dir, "execution")
    pid = str(process.process.pid if process.process else "")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text().strip() == pid:
            return
        assert process.alive, f"the process exited early\n{processes.log_tail()}"
        time.sleep(0.1)
    raise AssertionError(f"the process was not ready in {timeout_s} s\n{processes.log_tail()}")


def _exit_code(process: ExecutionProcess, timeout_s: float) -> int | None:
    assert process.process is not None
    try:
        return process.process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        return None


def _wait_quietly(bus: Bus, predicate: Callable[[list[AnyMessage]], bool], timeout_s: float) -> None:
    """Wait for ``predicate``; on timeout go on to the assertions, which say what is wrong."""
    with contextlib.suppress(AssertionError):
        bus.wait_for(predicate, timeout_s, "")


def _orders_per_signal(events: list[AnyMessage]) -> dict[str, set[str]]:
    """Each signal's distinct submissions (a republished event has the same event id, a second order not)."""
    orders: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if isinstance(event, OrderSubmitted):
            orders[event.signal_id].add(event.event_id)
    return orders


def _decided(events: list[AnyMessage]) -> set[str]:
    return {event.signal_id for event in events if isinstance(event, OrderSubmitted | OrderDenied)}


def test_execution_when_another_host_takes_the_account_then_the_first_is_fenced_and_one_order_per_signal(
    processes: Processes, bus: Bus, tmp_path: Path
) -> None:
    processes.env.update(LIMITS)
    for symbol, mid in (("EURUSD", 1.1), ("GBPUSD", 1.27)):
        bus.send(make_tick(now_ms(), mid, symbol))
    first = processes.start()
    _wait_ready(processes.state_dir, first, processes)
    other_host = tmp_path / "other-host"
    other_host.mkdir()
    shutil.copytree(processes.state_dir / "secrets", other_host / "secrets")  # a host given the dataflow's key

    stop, sent = threading.Event(), []  # type: ignore[var-annotated]
    producer = threading.Thread(target=_stream, args=(bus, sent, stop))
    producer.start()
    try:
        bus.wait_for(lambda events: len(_orders_per_signal(events)) >= 20, 30, "the first process to send orders")
        second = processes.start(extra_env={"TICKWAVE_STATE_DIR": str(other_host)})
        first_code = _exit_code(first, 30)  # None if it still runs: checked after the orders
        by_first = set(_orders_per_signal(bus.drain(0.5)))
        _wait_ready(other_host, second, processes)
        _wait_quietly(bus, lambda events: len(_orders_per_signal(events)) >= len(by_first) + 20, 30)
        stop.set()
        producer.join(10)
        _wait_quietly(bus, lambda events: set(sent) <= _decided(events), 60)
        bus.drain(1.0)  # what a late duplicate would need to arrive
        second_code = second.stop()
    finally:
        stop.set()
        producer.join(10)

    orders = _orders_per_signal(bus.events)
    doubled = {signal_id: len(events) for signal_id, events in orders.items() if len(events) > 1}
    assert not doubled, f"signals with two orders: {sorted(doubled.items())[:5]} ({len(doubled)} in all)"
    assert set(sent) <= _decided(bus.events)
    assert len(by_first) >= 20 and len(orders) > len(by_first), "both processes sent orders: a takeover mid-stream"
    assert first_code == 1, f"the fenced process exited with {first_code}\n{processes.log_tail(60)}"
    fenced = [e for e in bus.events if isinstance(e, RiskEvent) and e.kind == "fenced"]
    assert len(fenced) >= 1 and {e.severity for e in fenced} == {"critical"}
    assert second_code == 0, processes.log_tail(60)


def test_execution_when_a_second_process_shares_the_state_dir_then_it_is_refused_and_the_first_trades_on(
    processes: Processes, bus: Bus
) -> None:
    processes.env.update(LIMITS)
    bus.send(make_tick(now_ms(), 1.1, "EURUSD"))
    first = processes.start()
    _wait_ready(processes.state_dir, first, processes)

    second = processes.start()
    second_code = _exit_code(second, 60)

    assert second_code == 1, processes.log_tail()
    assert "another execution process holds" in processes.log_tail(200)
    assert first.alive
    signal = make_signal(1, now_ms(), "long", 0.5, "EURUSD")
    bus.send(signal)
    bus.wait_for(lambda events: signal.signal_id in _decided(events), 30, "the first process to decide")
    assert not [e for e in bus.events if isinstance(e, RiskEvent) and e.kind == "fenced"], "no fence was needed"
    assert first.stop() == 0, processes.log_tail()
