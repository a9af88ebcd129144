"""Where the service checks the account's fence: after the journal's fsync, before any broker call.

The fence itself (a Kafka transactional producer) is tested against the real broker in
``tests/integration/execution/test_single_writer.py``; here a recording fence shows the order
of effects and what a fenced process does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from execution.core.broker import BrokerEvent
from execution.fence import HUNG_EXIT_CODE, Consumed, Fenced
from execution.service import ExecutionService
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, BrokerWith, ListPublisher, make_service, signal, tick
from tickwave.clock import ManualClock
from tickwave.contracts import OrderIntent, OrderSubmitted, RiskEvent


class RecordingFence:
    """Notes each call in the shared ``calls`` list; fenced from the ``fenced_from``-th confirmation."""

    def __init__(self, calls: list[str], fenced_from: int | None = None) -> None:
        self.calls = calls
        self.fenced_from = fenced_from
        self.staged: dict[tuple[str, int], int] = {}
        self.confirmations = 0

    def stage(self, consumed: Consumed) -> None:
        self.staged.update(consumed)
        self.calls.append("stage")

    def confirm(self) -> None:
        self.confirmations += 1
        self.calls.append("confirm")
        if self.fenced_from is not None and self.confirmations >= self.fenced_from:
            raise Fenced("another execution process took the account's fence test")

    def is_due(self) -> bool:
        return True

    def waiting_s(self) -> float | None:
        return None


def _fenced_service(
    tmp_path: Path, fenced_from: int | None = None
) -> tuple[ExecutionService, list[str], ListPublisher]:
    clock = ManualClock(WEDNESDAY_NOON_MS)
    publisher = ListPublisher()
    service = make_service(tmp_path, clock, publisher)
    calls: list[str] = []
    service.fence = RecordingFence(calls, fenced_from)
    journal_sync, submit = service.journal.sync, service.broker.submit

    def noted_sync() -> None:
        calls.append("fsync")
        journal_sync()

    def noted_submit(intent: OrderIntent) -> list[BrokerEvent]:
        calls.append("submit")
        return submit(intent)

    service.journal.sync = noted_sync  # type: ignore[method-assign]
    service.broker = BrokerWith(service.broker, submit=noted_submit)  # type: ignore[assignment]
    service.handle_tick(tick(WEDNESDAY_NOON_MS))
    return service, calls, publisher


def test_service_when_a_signal_asks_for_an_order_then_the_fence_is_confirmed_between_fsync_and_broker(
    tmp_path: Path,
) -> None:
    service, calls, publisher = _fenced_service(tmp_path)

    service.handle_signals([signal(1, WEDNESDAY_NOON_MS)], {("signals", 0): 8})

    assert calls == ["stage", "fsync", "confirm", "submit"]
    assert len(publisher.of_type(OrderSubmitted)) == 1


def test_service_when_fenced_then_no_broker_call_and_a_critical_fenced_event(tmp_path: Path) -> None:
    service, calls, publisher = _fenced_service(tmp_path, fenced_from=1)

    with pytest.raises(Fenced):
        service.handle_signals([signal(1, WEDNESDAY_NOON_MS)], {("signals", 0): 8})

    assert "submit" not in calls
    assert service.broker.orders() == {}
    assert publisher.of_type(OrderSubmitted) == []
    fenced = [event for event in publisher.of_type(RiskEvent) if event.kind == "fenced"]
    assert [event.severity for event in fenced] == ["critical"]
    assert service.engine.view.trading_state == "ACTIVE", "no halt: it would cancel the new owner's orders"


def test_service_when_idle_and_fenced_then_keep_fence_raises(tmp_path: Path) -> None:
    service, calls, _ = _fenced_service(tmp_path, fenced_from=1)

    with pytest.raises(Fenced):
        service.keep_fence()

    assert calls == ["confirm"]


@pytest.mark.parametrize(("block_s", "expected_code"), [(5.0, HUNG_EXIT_CODE), (0.0, 0)])
def test_exit_if_hung_when_the_block_does_not_return_in_time_then_the_process_exits(
    block_s: float, expected_code: int
) -> None:
    # A call stuck in C code cannot be interrupted: the process ends, and its supervisor restarts it.
    code = "\n".join(
        (
            "import time",
            "from execution.fence import exit_if_hung",
            "with exit_if_hung(0.5, 'a call'):",
            f"    time.sleep({block_s})",
        )
    )

    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)

    assert finished.returncode == expected_code, finished.stderr  # 1: left before its 5 s sleep ended
    assert ("a call has not returned within" in finished.stderr) == bool(expected_code)
