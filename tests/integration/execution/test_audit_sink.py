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
    common = {"signal_id": "s", "symbol": "EURUSD", "model_id": "m", "model_version": 1}
    submitted: list[Message] = [
        OrderSubmitted(client_order_id=cid, event_at_ms=STARTED_MS + n, side="buy", quantity_lots=0.3,
                       order_type="market", venue="paper", **common)  # type: ignore[arg-type]
        for n, cid in enumerate(ids)
    ]  # fmt: skip
    filled: list[Message] = [
        OrderFilled(client_order_id=cid, event_at_ms=STARTED_MS + 10_000 + n, fill_id=f"f-{cid}", fill_price=1.1,
                    fill_lots=0.3, cumulative_lots=0.3, is_final=True, **common)  # type: ignore[arg-type]
        for n, cid in enumerate(ids)
    ]  # fmt: skip

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
