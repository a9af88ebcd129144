"""Forged writes on the authenticated default: no credentials, or another role's, place no order.

The execution process runs against the session broker (the embedded default: SASL_PLAINTEXT,
SCRAM, the registry's ACLs on this test's topics) with the paper broker. A signal from the
dataflow's principal is decided and filled, so an order is seen when one is placed. Then a
producer with no credentials (as any local process would try) and one per other role write
a long signal of strength 1 to ``signals``, a tick to ``ticks`` and a halt to
``execution.control``: every write is refused by the broker, nothing reaches the topics, and
the journal, the paper broker's ledger and the warehouse hold the dataflow's order only.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
from clickhouse_connect.driver.client import Client
from confluent_kafka import KafkaError, Producer

from adapters.bus import as_principal, make_producer, producer_config, resolve_admin, resolve_bootstrap
from adapters.signing import signed_headers
from execution.brokers.paper import LEDGER_NAME
from execution.journal import JOURNAL_NAME, Journal
from tests.integration.execution.conftest import Bus, Processes, make_signal, make_tick, now_ms
from tests.integration.ingest.kafka_reading import message_count
from tickwave.config import Settings
from tickwave.contracts import ControlCommand, OrderSubmitted, RiskEvent, Signal, encode
from tickwave.topics import (
    DATAFLOW,
    EXECUTION_CONTROL,
    INGEST,
    OPERATOR,
    PRINCIPALS,
    SIGNALS,
    TICKS,
    topic_name,
)

ATTACKER = "rt-attacker"
# Who may write each target: everyone else is an intruder there.
OWNERS = {SIGNALS: DATAFLOW, TICKS: INGEST, EXECUTION_CONTROL: OPERATOR}


def _forged(index: int) -> dict[str, bytes]:
    signal = msgspec.structs.replace(
        make_signal(900 + index, now_ms(), "long", 1.0),
        model_id=ATTACKER,
        signal_id=Signal.make_id(ATTACKER, 1, "EURUSD", "1m", 900 + index),
    )
    halt = ControlCommand(command_id=f"forged-{index}", command="halt", issued_by=ATTACKER, issued_at_ms=now_ms())
    return {
        SIGNALS: encode(signal),
        TICKS: encode(make_tick(now_ms(), 0.5)),  # half the price: a forged tick would move every decision
        EXECUTION_CONTROL: encode(halt),
    }


def _attempt(producer: Producer, settings: Settings, index: int, targets: list[str]) -> dict[str, KafkaError | None]:
    outcome: dict[str, KafkaError | None] = {}
    for base, value in _forged(index).items():
        if base in targets:
            producer.produce(
                topic_name(settings, base),
                value,
                b"EURUSD",
                on_delivery=lambda error, _message, base=base: outcome.update({base: error}),
            )
    producer.flush(20)
    return outcome


def _orders_in(path: Path) -> set[str]:
    with Journal(path, fsync=False) as journal:
        return {event.signal_id for event in journal.events() if isinstance(event, OrderSubmitted)}


def test_forged_writes_when_no_credentials_or_another_roles_then_refused_and_no_order(
    processes: Processes, bus: Bus, topics: Settings, warehouse: Client, warehouse_env: dict[str, str]
) -> None:
    # Arrange: the process trading, and one genuine signal from the dataflow's principal, filled
    bus.send(make_tick(now_ms(), 1.1))
    process = processes.start()
    bus.wait_for(lambda events: any(isinstance(e, RiskEvent) and e.kind == "started" for e in events), 60, "start")
    genuine = make_signal(1, now_ms(), "long", 0.5)
    dataflow = make_producer(resolve_bootstrap(as_principal(topics, DATAFLOW)), "latency")
    value = encode(genuine)  # signed with the dataflow's key, as the dataflow signs
    dataflow.produce(topic_name(topics, SIGNALS), value, b"EURUSD", headers=signed_headers(bus.signing_key, value))
    assert dataflow.flush(15) == 0
    bus.wait_for(lambda events: genuine.signal_id in {e.signal_id for e in bus.of_type(OrderSubmitted)}, 60, "order")
    counts_before = {base: message_count(resolve_admin(topics), topic_name(topics, base)) for base in OWNERS}

    # Act: no credentials at all, then every other role's
    anonymous = Producer({"bootstrap.servers": topics.kafka.bootstrap, "message.timeout.ms": 5000})
    refused = {"anonymous": _attempt(anonymous, topics, 0, list(OWNERS))}
    for index, principal in enumerate(PRINCIPALS, start=1):
        targets = [base for base, owner in OWNERS.items() if owner != principal]
        connection = resolve_bootstrap(as_principal(topics, principal))
        producer = Producer(producer_config(connection, "live", **{"message.timeout.ms": 8000}))
        refused[principal] = _attempt(producer, topics, index, targets)
    time.sleep(2.0)  # what a landed write would need to be decided
    bus.drain(0.5)
    code = process.stop()
    counts_after = {base: message_count(resolve_admin(topics), topic_name(topics, base)) for base in OWNERS}
    loader = processes.start("audit", extra_env=warehouse_env)
    state = processes.state_dir / "execution" / "execution-1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not warehouse.query("SELECT count() FROM orders FINAL").result_rows[0][0]:
        time.sleep(0.5)
    assert loader.stop() == 0, processes.log_tail()
    stored = warehouse.query(
        "SELECT DISTINCT signal_id FROM order_events FINAL WHERE event_type = 'order_submitted.v1'"
    ).result_rows

    # Assert: every write refused, none on a topic, one order (the dataflow's) in every book
    assert code == 0, processes.log_tail()
    for who, outcome in refused.items():
        expected = list(OWNERS) if who == "anonymous" else [b for b, o in OWNERS.items() if o != who]
        assert sorted(outcome) == sorted(expected), (who, outcome)
        assert all(error is not None for error in outcome.values()), (who, outcome)
    assert counts_after == counts_before
    assert _orders_in(state / JOURNAL_NAME) == {genuine.signal_id}
    assert _orders_in(state / LEDGER_NAME) == {genuine.signal_id}
    assert stored == [(genuine.signal_id,)]
    assert not any(ATTACKER in str(event) or "forged" in str(event) for event in bus.events)
