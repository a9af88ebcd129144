"""Warehouse databases of the tests' own holding a real execution run, stored by the real audit loader.

The execution service runs in process (paper broker, manual clock); every message it
publishes, with its chain link as Kafka headers, goes through the audit loader's sink
(``execution.audit.AuditSink``) into the warehouse, as ``orders.events`` would carry it.
The ticks it priced from and the signals it decided on are written as the streams would.
Later the same day, three orders go to a second venue (the MT5 broker on the fake
terminal, trade server ``Fake-Demo``): one filled, one requoted past its retries (10004),
one refused for money (10019), so the reports hold two venues with different reject rates.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from quixstreams.sinks import SinkBatch

from adapters.mt5.api import Constants
from adapters.mt5.terminal import Terminal
from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from adapters.warehouse.writer import BatchWriter
from execution.audit import AuditSink
from execution.brokers.mt5 import Mt5Broker
from testkit.mt5 import FakeTradingMetaTrader5, make_ticks
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, ListPublisher, make_service, signal, tick
from tickwave.audit_chain import AuditChain, is_chained
from tickwave.clock import ManualClock
from tickwave.config import ExecutionSettings, MT5BrokerSettings, Settings, load_settings
from tickwave.contracts import ControlCommand, Message, OrderIntent, OrderSubmitted, Signal, Tick, encode
from tickwave.warehouse.tables import SIGNALS, TICKS


@dataclass(frozen=True)
class TradedDatabase:
    """A migrated database, what the execution published into it, and the ticks and signals beside it."""

    client: Client
    database: str
    published: list[Message]
    ticks: list[Tick]

    @property
    def events(self) -> list[Message]:
        """The order events, in journal order."""
        return [message for message in self.published if is_chained(message)]


def trade(state_dir: Path, signals: int = 24) -> tuple[ListPublisher, list[Tick]]:
    """Run the real execution service in process over ``signals`` signals, a halt, a resume and a limit change."""
    clock = ManualClock(WEDNESDAY_NOON_MS)
    publisher = ListPublisher()
    service = make_service(state_dir, clock, publisher, market_hours="always")
    ticks = []
    try:
        for index in range(signals):
            clock.advance(25)
            ticks.append(tick(clock.now_ms(), 1.1 + index * 0.0001, seq=index))
            service.handle_tick(ticks[-1])
            clock.advance(25)
            # each direction twice: the repeat asks for the position already held and is denied (sizing)
            # each pair at its own strength: fractional positions, reductions and flips through zero
            strength = 0.3 + index // 2 % 4 * 0.2
            service.handle_signal(signal(index, clock.now_ms(), "long" if index // 2 % 2 else "short", strength))
            if index == signals // 2:
                for number, (command, params) in enumerate(
                    (("halt", {}), ("resume", {}), ("set_limit", {"max_order_lots": "2"}))
                ):
                    clock.advance(10)
                    service.handle_control(
                        ControlCommand(
                            command_id=f"c{number}",
                            command=command,  # type: ignore[arg-type]
                            issued_by="ops@desk",
                            issued_at_ms=clock.now_ms(),
                            reason="drill",
                            params=params,
                        )
                    )
    finally:
        service.close()
    trade_at_a_second_venue(publisher, ManualClock(clock.now_ms() + 60_000))
    return publisher, ticks


SECOND_VENUE = "mt5:Fake-Demo"
# The second venue's three orders: what the fake terminal answers (its retcodes, in order).
SECOND_VENUE_ANSWERS = ((), (Constants.TRADE_RETCODE_REQUOTE,) * 2, (Constants.TRADE_RETCODE_NO_MONEY,))


def trade_at_a_second_venue(publisher: ListPublisher, clock: ManualClock) -> None:
    """Send three orders through the MT5 broker on the fake terminal; chain them after the paper run's events.

    They are journaled as the execution process would: the OrderSubmitted (with the MT5
    broker's venue) and the broker's answers, each linked to the chain's head, and their
    signals published beside them.
    """
    fake = FakeTradingMetaTrader5()
    fake.add_symbol("EURUSD", digits=5, filling_mode=1)
    fake.push_ticks("EURUSD", make_ticks([(clock.now_ms(), 1.10100, 1.10110)]))
    terminal = Terminal(load_settings().mt5, api=fake)
    terminal.connect()
    terminal.call("symbol_select", "EURUSD", True)
    broker = Mt5Broker(ExecutionSettings(mt5_broker=MT5BrokerSettings(max_retries=1)), clock, terminal)
    last = publisher.links[[m for m in publisher.messages if is_chained(m)][-1].event_id]  # type: ignore[attr-defined]
    chain = AuditChain(last.chain_id, last.seq + 1, last.hash)
    for index, retcodes in enumerate(SECOND_VENUE_ANSWERS, start=100):
        clock.advance(1_000)
        fake.script(*retcodes)
        decided = signal(index, clock.now_ms(), "long")
        intent = OrderIntent(
            client_order_id=f"tw-{index:024x}",
            signal_id=decided.signal_id,
            symbol="EURUSD",
            side="buy",
            quantity_lots=0.1,
            order_type="market",
            model_id="m1",
            model_version=1,
            created_at_ms=clock.now_ms(),
        )
        submitted = OrderSubmitted(
            client_order_id=intent.client_order_id,
            signal_id=intent.signal_id,
            symbol="EURUSD",
            model_id="m1",
            model_version=1,
            event_at_ms=clock.now_ms(),
            side="buy",
            quantity_lots=0.1,
            order_type="market",
            venue=broker.venue(),
        )
        for message in (decided, submitted, *broker.submit(intent)):
            if is_chained(message):
                publisher.links[message.event_id] = chain.add(encode(message))  # type: ignore[attr-defined]
            publisher.messages.append(message)


def load(settings: Settings, database: str, publisher: ListPublisher, ticks: list[Tick]) -> None:
    """Store what execution published through the audit loader's sink; the ticks and signals beside it."""
    batch = SinkBatch("orders.events", 0)
    for offset, message in enumerate(publisher.messages):
        link = publisher.links.get(getattr(message, "event_id", ""))
        batch.append(encode(message), b"", 0, link.headers() if link else [], offset)
    sink = AuditSink(settings, database)
    sink.setup()
    try:
        sink.write(batch)
    finally:
        sink.cleanup()
    client = connect(settings, database=database)
    try:
        for table, messages in ((TICKS, ticks), (SIGNALS, publisher.of_type(Signal))):
            writer = BatchWriter(client, table)
            writer.write_messages(messages)
            writer.close()
    finally:
        client.close()


def traded_database(settings: Settings, state_dir: Path) -> tuple[TradedDatabase, str]:
    """Create and fill a database (the caller drops it)."""
    database = f"rep_{uuid.uuid4().hex[:8]}"
    migrate(settings, database=database)
    publisher, ticks = trade(state_dir)
    load(settings, database, publisher, ticks)
    return TradedDatabase(connect(settings, database=database), database, publisher.messages, ticks), database


def drop(traded: TradedDatabase) -> None:
    """Drop the database and close its client."""
    traded.client.command(f"DROP DATABASE IF EXISTS {traded.database} SYNC")
    traded.client.close()


@pytest.fixture(scope="module")
def traded_once(warehouse_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TradedDatabase]:
    """One execution run stored in a database for the module (never changed: tests change copies)."""
    found, _ = traded_database(warehouse_settings, tmp_path_factory.mktemp("execution"))
    try:
        yield found
    finally:
        drop(found)


@pytest.fixture
def traded(warehouse_settings: Settings, traded_once: TradedDatabase) -> Iterator[TradedDatabase]:
    """A database of this test's own holding a copy of the module's ``order_events`` (dropped afterwards)."""
    database = f"repc_{uuid.uuid4().hex[:8]}"
    admin = connect(warehouse_settings, database="default")
    try:
        admin.command(f"CREATE DATABASE {database}")
        admin.command(f"CREATE TABLE {database}.order_events AS {traded_once.database}.order_events")
        admin.command(f"INSERT INTO {database}.order_events SELECT * FROM {traded_once.database}.order_events")
    finally:
        admin.close()
    copy = TradedDatabase(
        connect(warehouse_settings, database=database), database, traded_once.published, traded_once.ticks
    )
    try:
        yield copy
    finally:
        drop(copy)
