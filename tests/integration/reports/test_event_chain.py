"""verify recomputes the order-event chain from the warehouse and names the first changed, deleted or added event."""

from __future__ import annotations

from datetime import UTC, datetime

from reports.events import first_event_break
from tests.integration.reports.conftest import TradedDatabase
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS
from tickwave.contracts import OrderDenied, OrderFilled

DAY = datetime.fromtimestamp(WEDNESDAY_NOON_MS / 1000, tz=UTC).date()
SYNC = "SETTINGS mutations_sync = 2"


def test_verify_when_the_warehouse_holds_what_execution_journaled_then_no_break(traded: TradedDatabase) -> None:
    assert len(traded.events) > 20
    assert {type(event) for event in traded.events} >= {OrderFilled, OrderDenied}
    assert first_event_break(traded.client) is None
    assert first_event_break(traded.client, DAY) is None


def test_verify_when_a_payload_is_edited_then_that_event_is_named(traded: TradedDatabase) -> None:
    target = next(event for event in traded.events if isinstance(event, OrderFilled))
    traded.client.command(
        f"ALTER TABLE order_events UPDATE payload = replaceOne(payload, '\"fill_price\":', '\"fill_price\":1') "
        f"WHERE event_id = '{target.event_id}' {SYNC}"
    )

    found = first_event_break(traded.client, DAY)

    assert found is not None and found.event_id == target.event_id and "hash does not match" in found.reason


def test_verify_when_only_a_typed_column_is_edited_then_that_event_is_named(traded: TradedDatabase) -> None:
    target = next(event for event in traded.events if isinstance(event, OrderFilled))
    traded.client.command(
        f"ALTER TABLE order_events UPDATE fill_price = fill_price + 0.001 WHERE event_id = '{target.event_id}' {SYNC}"
    )

    found = first_event_break(traded.client, DAY)

    assert found is not None and found.event_id == target.event_id and "column fill_price" in found.reason


def test_verify_when_an_event_is_deleted_then_its_seq_is_named(traded: TradedDatabase) -> None:
    seq, event_id = traded.client.query(
        "SELECT chain_seq, event_id FROM order_events FINAL WHERE chain_seq = 5"
    ).result_rows[0]
    traded.client.command(f"ALTER TABLE order_events DELETE WHERE event_id = '{event_id}' {SYNC}")

    found = first_event_break(traded.client)

    assert found is not None and found.seq == seq == 5 and "missing" in found.reason


def test_verify_when_an_event_is_inserted_behind_the_platforms_back_then_it_is_named(traded: TradedDatabase) -> None:
    traded.client.command(
        "INSERT INTO order_events (event_id, event_type, client_order_id, signal_id, symbol, model_id, model_version, "
        "event_at_ms, payload) SELECT 'forged', 'order_filled.v1', client_order_id, signal_id, symbol, model_id, "
        "model_version, event_at_ms, payload FROM order_events FINAL WHERE chain_seq = 3"
    )

    found = first_event_break(traded.client, DAY)

    assert found is not None and found.event_id == "forged" and "without a chain link" in found.reason


def test_verify_when_an_inserted_event_copies_a_link_then_the_repeat_is_named(traded: TradedDatabase) -> None:
    traded.client.command(
        "INSERT INTO order_events SELECT * REPLACE ('forged' AS event_id) FROM order_events FINAL WHERE chain_seq = 3"
    )

    found = first_event_break(traded.client)

    assert found is not None and found.seq == 3 and "repeated" in found.reason
