"""Crash test: kill -9 the real process at random points during a stream of signals.

A producer thread streams signals (a fifth of them delivered twice) while the main
thread starts ``python -m execution``, lets it run for a random while (sometimes only
through start-up and reconciliation) and kills it with SIGKILL, at least 20 times. A last
run drains the stream and stops cleanly. Then the journal and the paper broker's ledger
must agree order by order and on positions, and no signal may have two orders.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path

from clickhouse_connect.driver.client import Client

from adapters.endpoints import ready_marker
from execution.brokers.paper import LEDGER_NAME
from execution.core.engine import Engine, replay
from execution.core.limits import RiskLimits
from execution.core.positions import Book
from execution.core.sizing import SizingPolicy
from execution.core.state import OrderStatus
from execution.journal import JOURNAL_NAME, Journal
from reports.events import first_event_break
from tests.integration.execution.conftest import Bus, Processes, make_signal, make_tick, now_ms
from tickwave.clock import SystemClock
from tickwave.config import Settings
from tickwave.contracts import OrderAccepted, OrderCanceled, OrderFilled, OrderRejected, OrderSubmitted, RiskEvent
from tickwave.money import to_decimal

BROKER_STATUS = {
    OrderAccepted: OrderStatus.ACCEPTED,
    OrderFilled: OrderStatus.FILLED,
    OrderRejected: OrderStatus.REJECTED,
    OrderCanceled: OrderStatus.CANCELED,
}
KILLS = 22
SIGNALS = 400
SYMBOLS = ("EURUSD", "GBPUSD", "USDJPY")
LIMITS = {
    "TICKWAVE_EXECUTION_RISK_SIGNAL_TTL_MS": "600000",
    "TICKWAVE_EXECUTION_RISK_MAX_TICK_AGE_MS": "600000",
    "TICKWAVE_EXECUTION_RISK_MAX_ORDERS_PER_SECOND": "1000",
}


def _stream(bus: Bus, stop: threading.Event, sent: list[str]) -> None:
    rng = random.Random(7)
    signals = []
    for index in range(SIGNALS):
        if stop.is_set():
            return
        signal = make_signal(
            index, now_ms(), ("long", "short")[index // 3 % 2], rng.choice((0.3, 0.6, 1.0)), SYMBOLS[index % 3]
        )
        signals.append(signal)
        bus.send(signal, flush=False)
        sent.append(signal.signal_id)
        if rng.random() < 0.2:
            bus.send(rng.choice(signals), flush=False)  # a redelivery
        bus.producer.poll(0)
        time.sleep(0.03)
    bus.producer.flush(10)


def _started_count(bus: Bus) -> int:
    bus.drain(0.05)
    return sum(isinstance(event, RiskEvent) and event.kind == "started" for event in bus.events)


def _engine_from(path: Path) -> Engine:
    settings = Settings().execution
    engine = Engine(RiskLimits.from_settings(settings), SizingPolicy.from_settings(settings), SystemClock())
    with Journal(path, fsync=False) as journal:
        replay(engine, list(journal.events()))
    return engine


def _load_audit_trail(processes: Processes, warehouse_env: dict[str, str], warehouse: Client, journal: Engine) -> None:
    """Run the audit loader until the warehouse holds every order of the journal and every fill."""
    loader = processes.start("audit", extra_env=warehouse_env)
    fills = sum(len(order.fill_ids) for order in journal.orders.values())
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            orders = warehouse.query("SELECT count() FROM orders FINAL").result_rows[0][0]
            loaded_fills = warehouse.query("SELECT count() FROM fills FINAL").result_rows[0][0]
            if orders >= len(journal.orders) and loaded_fills >= fills:
                return
            time.sleep(0.5)
        raise AssertionError(
            f"the warehouse has {orders} orders and {loaded_fills} fills, expected "
            f"{len(journal.orders)} and {fills}\n{processes.log_tail()}"
        )
    finally:
        assert loader.stop() == 0, processes.log_tail()


def test_execution_when_killed_at_random_points_then_one_order_per_signal_and_books_agree(
    processes: Processes, bus: Bus, warehouse: Client, warehouse_env: dict[str, str]
) -> None:
    processes.env.update(LIMITS)
    for symbol, mid in (("EURUSD", 1.1), ("GBPUSD", 1.27), ("USDJPY", 150.0)):
        bus.send(make_tick(now_ms(), mid, symbol))
    rng = random.Random(11)
    stop, sent = threading.Event(), []  # type: ignore[var-annotated]
    producer = threading.Thread(target=_stream, args=(bus, stop, sent))
    producer.start()
    killed = 0
    try:
        for _ in range(KILLS):
            process = processes.start()
            time.sleep(rng.uniform(0.15, 1.2))  # sometimes mid start-up, mostly mid-stream
            assert process.kill9() == -9
            killed += 1
        producer.join(60)
        started_before = _started_count(bus)
        final = processes.start()
        # Wait for this process's own readiness: a late "started" event of an earlier,
        # killed run could satisfy a count, and SIGTERM before the handler is installed kills.
        marker = ready_marker(processes.state_dir, "execution")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            marker.exists() and marker.read_text().strip() == str(final.process.pid if final.process else "")
        ):
            time.sleep(0.1)
        bus.wait_for(lambda events: _started_count(bus) > started_before, 30, "the last run to start")
        state = processes.state_dir / "execution" / "execution-1"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if set(sent) <= _engine_from(state / JOURNAL_NAME).decided_signals:
                break
            time.sleep(0.3)
        code = final.stop()
        assert code == 0, f"exit code {code}\n" + processes.log_tail(60)
    finally:
        stop.set()
        producer.join(10)
    assert killed >= 20

    journal = _engine_from(state / JOURNAL_NAME)
    with Journal(state / JOURNAL_NAME, fsync=False) as recorded:
        journal_orders = Counter(e.signal_id for e in recorded.events() if isinstance(e, OrderSubmitted))
    assert max(journal_orders.values()) == 1, "the journal recorded two orders for one signal"
    assert set(sent) <= journal.decided_signals, "some signals were never decided"
    assert not journal.defects, journal.defects
    with Journal(state / LEDGER_NAME, fsync=False) as ledger:
        broker_events = list(ledger.events())
    per_signal = Counter(e.signal_id for e in broker_events if isinstance(e, OrderSubmitted))
    assert per_signal and max(per_signal.values()) == 1, "a signal reached the broker twice"
    assert len(per_signal) > 50, f"only {len(per_signal)} orders: the test exercised too little"

    broker_filled: dict[str, float] = {}
    broker_status: dict[str, OrderStatus] = {}
    books: dict[str, Book] = {}
    sides = {e.client_order_id: e.side for e in broker_events if isinstance(e, OrderSubmitted)}
    for event in broker_events:
        status = BROKER_STATUS.get(type(event))
        if status is not None:
            is_part = isinstance(event, OrderFilled) and not event.is_final
            broker_status[event.client_order_id] = OrderStatus.PARTIALLY_FILLED if is_part else status
        if isinstance(event, OrderFilled):
            broker_filled[event.client_order_id] = event.cumulative_lots
            lots = to_decimal(event.fill_lots)
            books.setdefault(event.symbol, Book()).fill(
                lots if sides[event.client_order_id] == "buy" else -lots, to_decimal(event.fill_price)
            )
    for client_order_id, order in journal.orders.items():
        if client_order_id in sides:
            # The journal says what the venue says; and the paper venue (no latency) writes a call's
            # acceptance and fill in one ledger write, so a kill never leaves an order accepted, unfilled.
            assert order.status == broker_status[client_order_id], (client_order_id, order.status)
            assert order.status == OrderStatus.FILLED, (client_order_id, order.status)
            assert order.filled_lots == broker_filled.get(client_order_id, 0.0)
        else:
            assert order.status == OrderStatus.EXPIRED, "recorded, never sent: must be expired"
    assert set(sides) <= set(journal.orders), "the broker has an order the journal does not know"
    broker_positions = {symbol: book.lots for symbol, book in books.items() if book.lots}
    assert {s: p for s, p in journal.view.positions.items() if p} == broker_positions

    # The warehouse, loaded from the audit topic the killed processes wrote, agrees with the journal.
    _load_audit_trail(processes, warehouse_env, warehouse, journal)
    rows = warehouse.query("SELECT client_order_id, status, filled_lots FROM orders FINAL").result_rows
    assert {cid: (status, lots) for cid, status, lots in rows} == {
        cid: (str(order.status), order.filled_lots) for cid, order in journal.orders.items()
    }
    fill_rows = warehouse.query("SELECT fill_id, client_order_id FROM fills FINAL").result_rows
    assert sorted(fill_rows) == sorted((fid, cid) for cid, o in journal.orders.items() for fid in o.fill_ids)
    per_signal_rows = warehouse.query(
        "SELECT signal_id, uniqExact(client_order_id) FROM order_events FINAL "
        "WHERE event_type = 'order_submitted.v1' GROUP BY signal_id HAVING uniqExact(client_order_id) > 1"
    ).result_rows
    assert per_signal_rows == []
    # Every order event reached the warehouse with its chain link, through Kafka headers, across 20+ kills.
    assert first_event_break(warehouse) is None
