"""A database of this test's own holding a real execution run's order events, as the audit loader stores them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from execution.audit import order_event_row
from execution.clock import ManualClock
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, ListPublisher, make_service, signal, tick
from tickwave.audit_chain import is_chained
from tickwave.config import Settings
from tickwave.contracts import Message
from tickwave.warehouse.client import connect
from tickwave.warehouse.migrate import migrate
from tickwave.warehouse.tables import ORDER_EVENTS
from tickwave.warehouse.writer import BatchWriter


@dataclass(frozen=True)
class TradedDatabase:
    """A migrated database and the order events written into it (journal order)."""

    client: Client
    events: list[Message]


def trade(state_dir: Path, signals: int = 12) -> ListPublisher:
    """Run the real execution service in process (paper broker) over ``signals`` signals; return what it published."""
    clock = ManualClock(WEDNESDAY_NOON_MS)
    publisher = ListPublisher()
    service = make_service(state_dir, clock, publisher, market_hours="always")
    try:
        service.handle_tick(tick(clock.now_ms(), 1.1))
        for index in range(signals):
            clock.advance(25)
            # each direction twice: the repeat asks for the position already held and is denied (sizing)
            service.handle_signal(signal(index, clock.now_ms(), "long" if index // 2 % 2 else "short"))
    finally:
        service.close()
    return publisher


def load(client: Client, publisher: ListPublisher) -> list[Message]:
    """Store the published order events as the audit loader does (its row builder, the batched writer)."""
    events = [message for message in publisher.messages if is_chained(message)]
    writer = BatchWriter(client, ORDER_EVENTS)
    writer.write([order_event_row(event, publisher.links[event.event_id]) for event in events])  # type: ignore[arg-type,attr-defined]
    writer.close()
    return events


@pytest.fixture
def traded(warehouse_settings: Settings, tmp_path: Path) -> Iterator[TradedDatabase]:
    """A fresh migrated database holding one execution run's order events (dropped afterwards)."""
    database = f"rep_{uuid.uuid4().hex[:8]}"
    migrate(warehouse_settings, database=database)
    client = connect(warehouse_settings, database=database)
    try:
        yield TradedDatabase(client, load(client, trade(tmp_path)))
    finally:
        client.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        client.close()
