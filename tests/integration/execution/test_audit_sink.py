"""The audit loader's sink reads back the state of the orders it has not seen in one query per batch."""

from __future__ import annotations

from quixstreams.sinks import SinkBatch

from adapters.warehouse.client import connect
from execution.audit import AuditSink
from tickwave.config import Settings
from tickwave.contracts import Message, OrderFilled, OrderSubmitted, encode

ORDERS = 300
STARTED_MS = 1_763_000_000_000


def _batch(messages: list[Message]) -> SinkBatch:
    batch = SinkBatch("orders.events", 0)
    for offset, message in enumerate(messages):
        batch.append(encode(message), b"", 0, [], offset)
    return batch


def _submitted_and_filled(ids: list[str], fills: int) -> tuple[list[Message], list[Message]]:
    """Each order of ``ids`` submitted, and the first ``fills`` of them filled whole 10 s later."""
    common = {"signal_id": "s", "symbol": "EURUSD", "model_id": "m", "model_version": 1}
    submitted: list[Message] = [
        OrderSubmitted(
            client_order_id=cid,
            event_at_ms=STARTED_MS + n,
            side="buy",
            quantity_lots=0.3,
            order_type="market",
            venue="paper",
            **common,
        )  # type: ignore[arg-type]
        for n, cid in enumerate(ids)
    ]
    filled: list[Message] = [
        OrderFilled(
            client_order_id=cid,
            event_at_ms=STARTED_MS + 10_000 + n,
            fill_id=f"f-{cid}",
            fill_price=1.1,
            fill_lots=0.3,
            cumulative_lots=0.3,
            is_final=True,
            **common,
        )  # type: ignore[arg-type]
        for n, cid in enumerate(ids[:fills])
    ]
    return submitted, filled


def _write(settings: Settings, database: str, messages: list[Message]) -> int:
    """Write one batch through a new sink (a new loader process); return its warehouse reads."""
    sink = AuditSink(settings, database)
    sink.setup()
    try:
        sink.write(_batch(messages))
    finally:
        sink.cleanup()
    return sink.lookups


def test_sink_when_a_restarted_loader_meets_orders_it_has_not_seen_then_one_read_per_batch_and_states_carry_on(
    warehouse_settings: Settings, warehouse_database: str
) -> None:
    ids = [f"tw-audit-{number:04d}" for number in range(ORDERS)]
    submitted, filled = _submitted_and_filled(ids, ORDERS)

    first_reads = _write(warehouse_settings, warehouse_database, submitted)
    second_reads = _write(warehouse_settings, warehouse_database, filled)  # after a restart: nothing in memory

    client = connect(warehouse_settings, database=warehouse_database)
    try:
        rows = client.query(
            "SELECT client_order_id, status, filled_lots, venue, toUnixTimestamp64Milli(created_at_ms) "
            "FROM orders FINAL WHERE client_order_id LIKE 'tw-audit-%'"
        ).result_rows
    finally:
        client.close()
    assert first_reads == 1 and second_reads == 1  # one read for 300 new orders, not 300
    assert {cid: (status, lots, venue, created) for cid, status, lots, venue, created in rows} == {
        cid: ("filled", 0.3, "paper", STARTED_MS + n) for n, cid in enumerate(ids)
    }


def test_sink_when_orders_end_then_only_working_ones_stay_in_memory_and_a_replay_changes_nothing(
    warehouse_settings: Settings, warehouse_database: str
) -> None:
    submitted, filled = _submitted_and_filled([f"tw-ended-{number:04d}" for number in range(ORDERS)], 200)
    final = "SELECT status, count() FROM orders FINAL WHERE client_order_id LIKE 'tw-ended-%' GROUP BY ALL ORDER BY 1"
    sink = AuditSink(warehouse_settings, warehouse_database)
    sink.setup()
    client = connect(warehouse_settings, database=warehouse_database)
    try:
        # One batch: each order submitted, 200 filled, then the batch's events again (a republished tail).
        sink.write(_batch([*submitted, *filled, *submitted, *filled]))
        held, reads, written = sink.orders_held, sink.lookups, sink.rows_written
        sink.write(_batch([*submitted, *filled]))  # replayed in a later batch: the ended orders are read back
        states = client.query(final).result_rows
    finally:
        sink.cleanup()
        client.close()

    assert held == 100  # the working orders; the 200 filled ones let go
    # Every event into order_events (1,000), one orders row per change (500): none for the events seen again.
    assert written == 1_500 and sink.rows_written - written == 500
    assert sink.lookups == reads + 1 and states == [("filled", 200), ("submitted", 100)]
