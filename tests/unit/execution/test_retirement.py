"""Ended orders and decided signals let go from memory past the reconciliation's window, and nothing doubled.

The live service (real journal and paper ledger files, a manual clock) with a one-minute
reconciliation window: orders and signals older than the window and its margin leave the
engine's state and the paper broker's book; the journal keeps them and a restart reads them
back. What must not change: one order per signal, the reconciliation finding nothing new,
unique broker ids, and the working orders kept whatever their age.
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path
from typing import Any

from execution.core.engine_state import RETIRE_MARGIN_MS
from execution.core.paper import PaperBroker
from execution.retirement import RETIRE_EVERY_MS
from execution.service import ExecutionService
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, BrokerWith, ListPublisher, make_service, signal, tick
from tickwave.clock import ManualClock
from tickwave.contracts import Message, OrderDenied, OrderSubmitted

WINDOW_S = 60.0
KEPT_MS = int(WINDOW_S * 1000) + RETIRE_MARGIN_MS  # how long an ended order stays in memory
STEP_MS = 2_060  # one signal, its order and its fill


class _CountingPublisher(ListPublisher):
    """Counts what the service publishes; ``by_signal``: also the orders of each signal (memory that grows)."""

    def __init__(self, by_signal: bool = True) -> None:
        super().__init__()
        self.by_signal = by_signal
        self.orders = 0
        self.submitted: dict[str, int] = {}  # signal id -> orders submitted for it
        self.denials: list[OrderDenied] = []

    def publish(self, message: Message, key: str, position: int, link: Any = None) -> None:
        if type(message) is OrderSubmitted:
            self.orders += 1
            if self.by_signal:
                self.submitted[message.signal_id] = self.submitted.get(message.signal_id, 0) + 1
        elif type(message) is OrderDenied:
            self.denials.append(message)


def _service(
    state_dir: Path, clock: ManualClock, publisher: ListPublisher, latency_ms: int = 50, **risk: Any
) -> ExecutionService:
    return make_service(
        state_dir,
        clock,
        publisher,
        market_hours="always",
        paper_broker={"latency_ms": latency_ms},
        reconciliation={"window_s": WINDOW_S},
        max_orders_per_second=1_000,
        daily_loss_limit=1e12,
        **risk,
    )


def _trade(service: ExecutionService, clock: ManualClock, first: int, count: int) -> None:
    """One signal every STEP_MS, each flipping the position, each order filled 60 ms later."""
    for index in range(first, first + count):
        clock.advance(STEP_MS - 60)
        service.handle_tick(tick(clock.now_ms(), 1.1 + (index % 7) / 10_000, seq=index))
        service.handle_signal(signal(index, clock.now_ms(), "long" if index % 2 else "short"))
        clock.advance(60)
        service.handle_tick(tick(clock.now_ms(), 1.1, seq=index))
        service.poll_broker()


def _held() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_service_when_orders_end_past_the_window_then_memory_stops_growing(tmp_path: Path) -> None:
    clock, publisher = ManualClock(WEDNESDAY_NOON_MS), _CountingPublisher(by_signal=False)
    service = _service(tmp_path, clock, publisher)
    ceiling = (KEPT_MS + RETIRE_EVERY_MS) // STEP_MS + 1  # orders a minute's retirement may still hold
    _trade(service, clock, 0, 2 * ceiling)  # past the first retirements, the tables at their size
    tracemalloc.start()  # traces what is allocated from now on: the orders held at the start are let go first
    try:
        _trade(service, clock, 2 * ceiling, ceiling)
        before = _held()
        _trade(service, clock, 3 * ceiling, 3 * ceiling)
        grown = _held() - before
    finally:
        tracemalloc.stop()
    state, broker = service.engine.state, service.broker
    assert isinstance(broker, PaperBroker)

    assert publisher.orders == 6 * ceiling and not publisher.denials  # every signal ordered
    assert 0 < len(state.orders) <= ceiling and len(state.bookings) <= ceiling and len(state.decided_signals) <= ceiling
    assert 0 < len(broker.orders()) <= ceiling
    status = service.engine.status()
    assert (status["orders"], status["signals_decided"]) == (6 * ceiling, 6 * ceiling)  # those let go counted
    # ~1.8 KB an order when kept: 3 * ceiling more orders would be ~1.8 MB; a tenth of it is the noise allowed.
    assert grown < 3 * ceiling * 1_800 // 10, f"{grown} bytes more after {3 * ceiling} orders"
    service.close()


def test_signal_when_redelivered_after_its_decision_was_let_go_then_denied_not_ordered_again(tmp_path: Path) -> None:
    clock, publisher = ManualClock(WEDNESDAY_NOON_MS), _CountingPublisher()
    service = _service(tmp_path, clock, publisher, signal_ttl_ms=100 * KEPT_MS)  # its age alone denies nothing
    _trade(service, clock, 0, 4)
    first = signal(0, WEDNESDAY_NOON_MS + STEP_MS - 60, "short")  # the very signal decided first
    assert publisher.submitted[first.signal_id] == 1
    clock.advance(KEPT_MS + RETIRE_EVERY_MS)
    service.handle_tick(tick(clock.now_ms(), 1.1, seq=99))
    service.poll_broker()
    assert first.signal_id not in service.engine.decided_signals and not service.engine.orders  # let go

    service.handle_signal(first)  # redelivered (a consumer group reset): may have had its order, so gets none

    assert publisher.submitted[first.signal_id] == 1
    assert [denial.check for denial in publisher.denials] == ["signal_ttl"]
    assert service.reconcile_now() == []  # the broker's orders let go too: nothing adopted, nothing different
    assert sum(publisher.submitted.values()) == 4
    service.close()


def test_paper_broker_when_orders_were_let_go_then_new_ids_stay_unique(tmp_path: Path) -> None:
    clock, publisher = ManualClock(WEDNESDAY_NOON_MS), _CountingPublisher()
    service = _service(tmp_path, clock, publisher)
    broker = service.broker
    assert isinstance(broker, PaperBroker)
    _trade(service, clock, 0, 4)
    earlier = {order.broker_order_id for order in broker.orders().values()}
    clock.advance(KEPT_MS + RETIRE_EVERY_MS)

    _trade(service, clock, 4, 4)

    later = {order.broker_order_id for order in broker.orders().values()}
    assert len(earlier) == len(later) == 4 and not earlier & later


def test_service_when_an_old_order_still_works_then_it_and_every_later_order_are_kept_and_read_back(
    tmp_path: Path,
) -> None:
    # A periodic reconciliation's window starts at the oldest working order: the orders after it stay known.
    clock, publisher = ManualClock(WEDNESDAY_NOON_MS), _CountingPublisher()
    service = _service(tmp_path, clock, publisher, latency_ms=10 * KEPT_MS)  # fills long after the horizon
    service.handle_tick(tick(clock.now_ms(), 1.1))
    service.handle_signal(signal(0, clock.now_ms()))
    (working,) = service.engine.working_orders()
    clock.advance(1_000)
    service.handle_tick(tick(clock.now_ms(), 1.1, seq=1))
    service.handle_signal(signal(1, clock.now_ms(), "short"))  # an order that ends: canceled below
    (later,) = [order for order in service.engine.working_orders() if order != working]
    service.broker.cancel(later, "test")
    service.poll_broker()
    clock.advance(KEPT_MS + RETIRE_EVERY_MS)
    service.handle_tick(tick(clock.now_ms(), 1.1, seq=2))
    service.poll_broker()
    assert service.engine.working_orders() == [working] and working.client_order_id in service.broker.orders()
    assert set(service.engine.orders) == {working.client_order_id, later.client_order_id}
    service.close()

    restarted = _service(tmp_path, clock, publisher, latency_ms=10 * KEPT_MS)
    assert set(restarted.engine.orders) == {working.client_order_id, later.client_order_id}
    assert restarted.engine.decided_signals == {working.signal_id, later.signal_id}
    restarted.close()


def test_reconcile_when_the_broker_reads_back_before_its_window_then_no_order_let_go_is_adopted_again(
    tmp_path: Path,
) -> None:
    # MT5's history is read from a day before a window's start (the server clock's offset): the
    # orders it may return stay known, else one let go would be adopted again and booked twice.
    clock, publisher = ManualClock(WEDNESDAY_NOON_MS), _CountingPublisher()
    service = _service(tmp_path, clock, publisher)
    broker = service.broker
    assert isinstance(broker, PaperBroker)
    lookback_ms = 3 * KEPT_MS
    reads = broker.orders
    service.broker = BrokerWith(  # type: ignore[assignment]
        broker,
        lookback_ms=lookback_ms,
        retire=lambda before_ms: 0,  # as MT5's terminal, it keeps every order
        orders=lambda since_ms=None: reads(None if since_ms is None else since_ms - lookback_ms),
    )
    _trade(service, clock, 0, 4)
    clock.advance(KEPT_MS + RETIRE_EVERY_MS)  # past the horizon without the broker's lookback
    service.handle_tick(tick(clock.now_ms(), 1.1, seq=99))
    service.poll_broker()

    assert len(service.engine.orders) == 4  # the broker may still return them: kept
    assert service.reconcile_now() == [] and publisher.orders == 4  # nothing adopted, nothing different
    service.close()


def test_service_when_restarted_over_a_long_journal_then_the_history_read_back_is_let_go(tmp_path: Path) -> None:
    clock, publisher = ManualClock(WEDNESDAY_NOON_MS), _CountingPublisher(by_signal=False)
    service = _service(tmp_path, clock, publisher)
    _trade(service, clock, 0, 1_000)  # ~6,000 journal events, ~4,000 ledger events
    service.close()
    tracemalloc.start()
    try:
        restarted = _service(tmp_path, clock, publisher)
        clock.advance(RETIRE_EVERY_MS)
        restarted.handle_tick(tick(clock.now_ms(), 1.1, seq=1_000))
        restarted.poll_broker()  # its first retirement
        held = _held()
    finally:
        tracemalloc.stop()

    assert not list(restarted.journal.events()) and len(restarted.engine.orders) < 400
    # Measured: ~1.0 MB (the last window's orders); with the history kept, 5.9 MB.
    assert held < 2_000_000, f"{held} bytes held after a restart over 1,000 orders"
    restarted.close()
