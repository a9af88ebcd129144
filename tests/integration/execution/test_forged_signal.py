"""A signal the dataflow did not sign reaches the topic: the real process refuses it and records it.

A plain producer with no key (what any local process could run, were the topic's ACLs
wrong) publishes a strong long ``Signal`` on ``signals``, then the dataflow's signed one
follows on the same partition. The forged one must place no order anywhere (journal, paper
broker's ledger, warehouse) and leave a critical ``signal_refused`` risk event in the
journal and in the warehouse's ``risk_events``; the genuine one is still decided and traded.
"""

from __future__ import annotations

import time

from clickhouse_connect.driver.client import Client

from adapters.bus import make_producer
from execution.brokers.paper import LEDGER_NAME
from execution.journal import JOURNAL_NAME, Journal
from tests.integration.execution.conftest import Bus, Processes, make_signal, make_tick, now_ms
from tickwave.contracts import AnyMessage, OrderDenied, OrderFilled, OrderSubmitted, RiskEvent, Signal, encode
from tickwave.topics import SIGNALS, topic_name


def _forged(sent_ms: int) -> Signal:
    return Signal(
        signal_id=Signal.make_id("rt-attacker", 1, "EURUSD", "1m", 7),
        symbol="EURUSD",
        timeframe="1m",
        bar_start_ms=7,
        direction="long",
        strength=1.0,
        confidence=1.0,
        model_id="rt-attacker",
        model_version=1,
        created_at_ms=sent_ms,
    )


def _decided(signal_id: str):  # type: ignore[no-untyped-def]
    return lambda events: any(isinstance(e, OrderSubmitted | OrderDenied) and e.signal_id == signal_id for e in events)


def _warehouse_rows(warehouse: Client, genuine_id: str, timeout_s: float) -> tuple[int, int, int]:
    """(refusals, orders of the forged model, orders of the genuine signal) once the loader has them."""
    deadline = time.monotonic() + timeout_s
    while True:
        refused = warehouse.query("SELECT count() FROM risk_events FINAL WHERE kind = 'signal_refused'")
        forged = warehouse.query("SELECT count() FROM orders FINAL WHERE model_id = 'rt-attacker'")
        genuine = warehouse.query("SELECT count() FROM orders FINAL WHERE signal_id = {id:String}", {"id": genuine_id})
        rows = (refused.result_rows[0][0], forged.result_rows[0][0], genuine.result_rows[0][0])
        if (rows[0] and rows[2]) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def test_execution_when_a_producer_without_the_key_publishes_a_signal_then_refused_recorded_and_no_order(
    processes: Processes, bus: Bus, warehouse: Client, warehouse_env: dict[str, str]
) -> None:
    # Arrange: the process and its audit loader running, with a price
    bus.send(make_tick(now_ms(), 1.1, "EURUSD"))
    processes.start()
    loader = processes.start("audit", extra_env=warehouse_env)
    bus.wait_for(lambda events: any(isinstance(e, RiskEvent) and e.kind == "started" for e in events), 30, "a start")

    # Act: a forged signal straight onto the topic, then the dataflow's (signed) one
    forged = _forged(now_ms())
    attacker = make_producer(bus.bootstrap, "latency")
    attacker.produce(topic_name(bus.settings, SIGNALS), key=b"EURUSD", value=encode(forged))
    assert attacker.flush(10) == 0
    genuine = make_signal(1, now_ms(), "short", 0.5)
    bus.send(genuine)
    bus.wait_for(_decided(genuine.signal_id), 30, "the genuine signal's decision")  # after the forged one's turn
    events: list[AnyMessage] = bus.drain(0.5)
    stored = _warehouse_rows(warehouse, genuine.signal_id, 30)
    assert loader.stop() == 0, processes.log_tail()
    assert processes.started[0].stop() == 0, processes.log_tail()

    # Assert: the bus (what the process published)
    order_ids = {e.signal_id for e in events if isinstance(e, OrderSubmitted | OrderFilled | OrderDenied)}
    assert forged.signal_id not in order_ids and genuine.signal_id in order_ids
    refused = [e for e in events if isinstance(e, RiskEvent) and e.kind == "signal_refused"]
    assert len(refused) == 1 and refused[0].severity == "critical", refused
    assert refused[0].detail.startswith("unsigned signal at ") and forged.signal_id in refused[0].detail
    assert "model rt-attacker" in refused[0].detail
    # the journal: the refusal recorded, no order and not even a decision for the forged signal
    state = processes.state_dir / "execution" / "execution-1"
    with Journal(state / JOURNAL_NAME, fsync=False) as journal:
        journaled = list(journal.events())
    assert [e.detail for e in journaled if isinstance(e, RiskEvent) and e.kind == "signal_refused"] == [
        refused[0].detail
    ]
    assert forged.signal_id not in {getattr(e, "signal_id", "") for e in journaled}
    decided = {e.signal_id for e in journaled if isinstance(e, OrderSubmitted | OrderDenied)}
    assert genuine.signal_id in decided
    # the paper broker: never asked for the forged signal, asked for the genuine one
    with Journal(state / LEDGER_NAME, fsync=False) as ledger:
        at_broker = {getattr(e, "signal_id", "") for e in ledger.events()}
    assert forged.signal_id not in at_broker and genuine.signal_id in at_broker
    # the warehouse: the refusal in risk_events, no order of the forged model, the genuine signal's order
    assert stored == (1, 0, 1), stored
