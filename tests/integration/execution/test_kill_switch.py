"""The kill switch against the real broker: a halt read while a batch of signals is decided.

The service, its hot loop, its control listener and the account's fence run in this process,
as ``execution.app.run`` wires them, against the session broker. One journal write of the
batch's first order is held until the listener has read a signed ``halt`` from
``execution.control`` and handed it to the service, so the halt is read while the batch is
being decided, every time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from adapters.bus import make_producer, resolve_bootstrap
from adapters.signing import signals_key, signed_headers
from execution.app import build_service
from execution.connectors import ControlListener, run_hot_loop, send_control
from execution.fence import AccountFence
from execution.service import ExecutionService
from tests.integration.execution.conftest import make_signal, make_tick, now_ms
from tests.plugins.services import bus_section
from tickwave.audit_chain import ChainLink
from tickwave.clock import SystemClock
from tickwave.config import Settings, load_settings
from tickwave.contracts import ControlCommand, Message, OrderCanceled, OrderDenied, OrderSubmitted, RiskEvent, encode
from tickwave.topics import SIGNALS, topic_name

BATCH = 20  # signals queued before the loop starts: its first poll takes them together


class Recorded:
    """The audit bus: every journaled event with its journal position (the journal's order)."""

    def __init__(self) -> None:
        self.at: dict[int, Message] = {}

    def resume_position(self) -> int:
        return 0

    def publish(self, message: Message, key: str, position: int, link: ChainLink | None = None) -> None:
        self.at[position] = message

    def journal(self) -> list[Message]:
        return [self.at[position] for position in sorted(self.at)]

    def flush(self, timeout_s: float) -> int:
        return 0


@pytest.fixture
def wired(topics: Settings, tmp_path: Path) -> Iterator[tuple[Settings, ExecutionService, AccountFence, Recorded]]:
    settings = load_settings(
        state_dir=tmp_path / "state",
        kafka=bus_section(topics),
        market={"hours": "always"},
        # Paper orders wait a minute for their fill: the batch's order is still working when the halt comes.
        execution={"risk": {"max_orders_per_second": 1000}, "paper_broker": {"latency_ms": 60_000}},
    )
    fence = AccountFence(settings, resolve_bootstrap(settings))
    fence.claim()
    recorded = Recorded()
    service = build_service(settings, recorded, fence=fence)
    service.start()
    try:
        yield settings, service, fence, recorded
    finally:
        service.close()


def _decisions(events: Sequence[Message]) -> dict[str, list[tuple[int, Message]]]:
    found: dict[str, list[tuple[int, Message]]] = {}
    for position, event in enumerate(events):
        if isinstance(event, OrderSubmitted | OrderDenied):
            found.setdefault(event.signal_id, []).append((position, event))
    return found


def test_kill_switch_when_a_halt_is_read_during_a_batch_then_no_later_signal_of_it_gets_an_order(
    wired: tuple[Settings, ExecutionService, AccountFence, Recorded],
) -> None:
    settings, service, fence, recorded = wired
    bootstrap = resolve_bootstrap(settings)
    service.handle_tick(make_tick(now_ms()))
    producer = make_producer(bootstrap, "latency")
    key = signals_key(settings)
    # The first opens a position; each later one asks to reverse it, so each would be an order but for the halt.
    signals = [make_signal(index, now_ms(), "short" if index else "long", 1.0) for index in range(BATCH)]
    for signal in signals:
        value = encode(signal)
        producer.produce(topic_name(settings, SIGNALS), key=b"EURUSD", value=value, headers=signed_headers(key, value))
    assert producer.flush(10) == 0

    stop = threading.Event()
    listener = ControlListener(settings, bootstrap, service, stop)
    listener.start()
    assert listener.ready.wait(30)
    deciding, handed = threading.Event(), threading.Event()
    handle_control, journal_append_all = service.handle_control, service.journal.append_all

    def noted_handle_control(command: ControlCommand) -> None:
        handed.set()  # the listener has read the halt, checked its signature and hands it to the service
        handle_control(command)

    def held_append_all(messages: Sequence[Message], *, sync: bool = False) -> range:
        # The batch's first order waits here until the listener has handed the halt over.
        if any(isinstance(message, OrderSubmitted) for message in messages) and not deciding.is_set():
            deciding.set()
            assert handed.wait(15), "the listener never handed the halt over"
            time.sleep(0.1)
        return journal_append_all(messages, sync=sync)

    service.handle_control = noted_handle_control  # type: ignore[method-assign]
    service.journal.append_all = held_append_all  # type: ignore[method-assign]
    loop = threading.Thread(target=run_hot_loop, args=(settings, bootstrap, service, stop), daemon=True)
    loop.start()
    try:
        assert deciding.wait(30), "the hot loop never decided the batch"
        command = send_control(settings, bootstrap, "halt", reason="kill switch test", clock=SystemClock())
        deadline = time.monotonic() + 30
        while len(_decisions(recorded.journal())) < BATCH and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join(30)
        listener.join(10)
    assert listener.failure is None

    events = recorded.journal()
    halted = [
        position
        for position, event in enumerate(events)
        if isinstance(event, RiskEvent) and event.trading_state == "HALTED" and command.command_id in event.detail
    ]
    decisions = _decisions(events)
    assert len(halted) == 1, "the halt is journaled once"
    assert set(decisions) == {signal.signal_id for signal in signals}, "every signal of the batch is decided"
    assert all(len(found) == 1 for found in decisions.values()), "one decision per signal"
    ordered = [signal.signal_id for signal in signals if isinstance(decisions[signal.signal_id][0][1], OrderSubmitted)]
    # The first signal was being decided when the halt was read; every later one is decided after it.
    assert ordered == [signals[0].signal_id], f"orders placed after the halt was read: {ordered[1:]}"
    for signal in signals[1:]:
        position, denial = decisions[signal.signal_id][0]
        assert isinstance(denial, OrderDenied) and denial.check == "trading_state", denial
        assert position > halted[0], "the halt is on the journal before every later decision"
    assert decisions[signals[0].signal_id][0][0] < halted[0]
    # The order decided before the halt reached the broker before the halt, which canceled it there.
    first = decisions[signals[0].signal_id][0][1]
    assert isinstance(first, OrderSubmitted)
    canceled = [
        position
        for position, event in enumerate(events)
        if isinstance(event, OrderCanceled) and event.client_order_id == first.client_order_id
    ]
    assert canceled and canceled[0] > halted[0], "the halt left the batch's order working"
    # Exactly once: every signal read is committed by the fence's transactions, none twice over.
    committed = fence._read_committed()
    signals_topic = topic_name(settings, SIGNALS)
    assert (
        sum(
            offset
            for (group, topic, _), (offset, _) in committed.items()
            if group == settings.execution.consumer_group and topic == signals_topic
        )
        == BATCH
    )
