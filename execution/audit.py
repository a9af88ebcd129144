"""The audit loader: ``orders.events`` into the warehouse, off the hot path.

A quixstreams Application reads the audit topic and a :class:`AuditSink` (a quixstreams
``BatchingSink``) writes each checkpoint's batch through the warehouse's batched writers
and *flushes them before returning*: quixstreams commits the topic offsets only after
the sink's ``write`` returned, so a row is committed to the warehouse before its offset
is committed to Kafka (at-least-once). Replays and republished events are harmless:
every table is a ReplacingMergeTree on the event's natural id and each batch carries a
deduplication token.

Where each message goes:

- ``OrderSubmitted | OrderAccepted | OrderRejected | OrderFilled | OrderCanceled | OrderDenied``
  -> ``order_events`` (one row per event), and, except denials, a new state row of the
  order in ``orders`` (:func:`order_row`: newest event time wins, never a step back; the
  order's venue comes from its ``OrderSubmitted``);
- ``Fill`` -> ``fills`` (a record without the engine's booking, from an engine that predates it, is
  then booked by :mod:`execution.backfill`); ``RiskEvent`` -> ``risk_events``;
- ``Signal``, ``OrderIntent``, ``ControlCommand`` stay on the topic only (the signal is
  in the warehouse's ``signals`` table from the streams side; the command's effect is a
  risk event).

Run it with ``python -m execution audit`` or ``tickwave execution audit``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from quixstreams.sinks import BatchingSink, SinkBatch

from adapters.bus import Bootstrap, quix_connection
from adapters.metrics import WritersCollector, serve_metrics
from adapters.warehouse.client import connect
from adapters.warehouse.writer import BatchWriter, WriterConfig
from execution.backfill import backfill_bookings
from execution.core.broker import EXPIRED_PREFIX
from execution.core.state import TERMINAL
from execution.metrics import AUDIT_BATCH_SECONDS
from tickwave.audit_chain import ChainLink, link_from_headers
from tickwave.config import Settings
from tickwave.contracts import (
    AnyMessage,
    Fill,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    RiskEvent,
    decode_any,
)
from tickwave.errors import ContractError
from tickwave.instruments import registry
from tickwave.topics import ORDERS_EVENTS, topic_name
from tickwave.warehouse.tables import FILLS, ORDER_EVENTS, ORDERS, RISK_EVENTS, row_for

logger = logging.getLogger(__name__)

# Working orders' states kept in memory (most recently touched first to stay): an order's later
# events usually follow within seconds; an order that ended, or an older one, is read back from
# the warehouse should an event of it come again (a replay after a restart).
ORDER_CACHE_SIZE = 20_000
_LOOKUP_CHUNK = 1_000  # client_order_ids per IN (...) read

OrderEvent = OrderSubmitted | OrderAccepted | OrderRejected | OrderFilled | OrderCanceled
# Within one millisecond, a later stage wins (a paper order is accepted and filled in the same ms).
_STAGE = {"submitted": 0, "accepted": 1, "partially_filled": 2, "filled": 3, "canceled": 3, "rejected": 3, "expired": 3}


_ONE_MS = timedelta(milliseconds=1)


def _at(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def order_row(previous: Mapping[str, Any] | None, event: OrderEvent) -> dict[str, Any] | None:
    """Return the order's state row after ``event`` (None when the event changes nothing).

    An event of an earlier stage, or of the same stage and no later (a replay, a
    republished tail), changes nothing; a later stage wins even in the same millisecond,
    its ``updated_at_ms`` then 1 ms after the previous row's so the table's version grows.
    """
    if previous is None:
        if not isinstance(event, OrderSubmitted):
            return None  # the order's details come with its submission; a replay brings it first
        return {
            "client_order_id": event.client_order_id,
            "signal_id": event.signal_id,
            "symbol": event.symbol,
            "side": event.side,
            "quantity_lots": event.quantity_lots,
            "order_type": event.order_type,
            "limit_price": event.limit_price,
            "model_id": event.model_id,
            "model_version": event.model_version,
            "status": "submitted",
            "broker_order_id": "",
            "filled_lots": 0.0,
            "average_fill_price": None,
            "reason": "",
            "created_at_ms": _at(event.event_at_ms),
            "updated_at_ms": _at(event.event_at_ms),
            "venue": event.venue_name,
        }
    row = dict(previous)
    if isinstance(event, OrderSubmitted):
        return None
    if isinstance(event, OrderAccepted):
        row.update(status="accepted", broker_order_id=event.broker_order_id)
    elif isinstance(event, OrderRejected):
        row.update(status="rejected", reason=event.reason)
    elif isinstance(event, OrderCanceled):
        expired = event.reason.startswith(EXPIRED_PREFIX)
        row.update(status="expired" if expired else "canceled", reason=event.reason)
    else:
        previous_lots = float(row["filled_lots"])
        average = row["average_fill_price"] or 0.0
        cost = previous_lots * average + event.fill_lots * event.fill_price
        row.update(
            status="filled" if event.is_final else "partially_filled",
            filled_lots=event.cumulative_lots,
            average_fill_price=cost / (previous_lots + event.fill_lots),
        )
    at, previous_at = _at(event.event_at_ms), previous["updated_at_ms"]
    stage, previous_stage = _STAGE[row["status"]], _STAGE[previous["status"]]
    if stage < previous_stage or (stage == previous_stage and at <= previous_at):
        return None  # an earlier stage, or this stage again no later (a replay): never step back
    # ``orders`` keeps the row with the greatest ``updated_at_ms``: a later stage gets a
    # strictly greater one, or a broker that accepts and fills in the same millisecond
    # leaves FINAL to pick either row (seen as 'accepted' for a filled order).
    row["updated_at_ms"] = max(at, previous_at + _ONE_MS)
    return row


def order_event_row(message: OrderEvent | OrderDenied, link: ChainLink | None) -> dict[str, Any]:
    """Return the ``order_events`` row of an event with its chain link (from the Kafka headers).

    An event without a link (published before the chain existed) is stored with empty
    chain columns, which ``tickwave report verify`` names as unchained.
    """
    row = row_for(message)
    if link is not None:
        row.update(link.columns())
    else:
        logger.warning("audit: order event %s arrived without its chain link", message.event_id)
    return row


class AuditSink(BatchingSink):
    """Writes audit batches into the warehouse and flushes them before quixstreams commits."""

    def __init__(self, settings: Settings, database: str | None = None) -> None:
        super().__init__()
        self._settings = settings
        self._database = database
        self._writers: dict[str, BatchWriter] = {}
        self._orders: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._ended: set[str] = set()  # orders of the batch that reached a terminal status
        self.rows_written = 0
        self.lookups = 0  # reads of order states from the warehouse (one per batch at most, per 1,000 orders)

    def setup(self) -> None:
        """Connect and start one writer per table (batches are sealed by our flush, not by time)."""
        client = connect(self._settings, database=self._database)
        config = WriterConfig(max_rows=50_000, max_delay_s=3_600.0)
        self._writers = {
            table.name: BatchWriter(client, table, config) for table in (ORDERS, ORDER_EVENTS, FILLS, RISK_EVENTS)
        }

    def write(self, batch: SinkBatch) -> None:
        """Route each message to its table, then flush every writer (raises if the warehouse failed)."""
        with AUDIT_BATCH_SECONDS.time():
            self._write(batch)

    @property
    def writers(self) -> dict[str, BatchWriter]:
        """The writer of each table (for the metrics)."""
        return self._writers

    def _write(self, batch: SinkBatch) -> None:
        rows: dict[str, list[Any]] = {name: [] for name in self._writers}
        decoded: list[tuple[AnyMessage, ChainLink | None]] = []
        for item in batch:
            try:
                decoded.append((decode_any(item.value), link_from_headers(item.headers)))
            except ContractError as exc:
                logger.error("audit: skipped an undecodable message at offset %s: %s", item.offset, exc.reason)
        self._read_order_states(message.client_order_id for message, _ in decoded if isinstance(message, OrderEvent))
        for message, link in decoded:
            self._route(message, rows, link)
        for name, messages in rows.items():
            if name in (ORDERS.name, ORDER_EVENTS.name):
                self._writers[name].write(messages)
            else:
                self._writers[name].write_messages(messages)
        for writer in self._writers.values():
            writer.flush()
        self.rows_written += sum(len(messages) for messages in rows.values())
        # After the batch, none of its orders dropped mid-way: an ended order's replayed events in the same
        # batch still meet its final state; in a later batch, the warehouse's.
        for client_order_id in self._ended:
            self._orders.pop(client_order_id, None)
        self._ended.clear()
        while len(self._orders) > ORDER_CACHE_SIZE:
            self._orders.popitem(last=False)
        if any(not fill.is_booked for fill in rows[FILLS.name]):  # written by an engine that did not book fills
            backfill_bookings(
                self._writers[FILLS.name].client,
                registry(self._settings.symbols),
                self._settings.execution.account_currency,
            )

    def _route(self, message: AnyMessage, rows: dict[str, list[Any]], link: ChainLink | None) -> None:
        if isinstance(message, OrderSubmitted | OrderAccepted | OrderRejected | OrderFilled | OrderCanceled):
            rows[ORDER_EVENTS.name].append(order_event_row(message, link))
            changed = order_row(self._orders.get(message.client_order_id), message)  # read for the batch
            if changed is not None:
                self._remember(message.client_order_id, changed)
                rows[ORDERS.name].append(changed)
        elif isinstance(message, OrderDenied):
            rows[ORDER_EVENTS.name].append(order_event_row(message, link))
        elif isinstance(message, Fill):
            rows[FILLS.name].append(message)
        elif isinstance(message, RiskEvent):
            rows[RISK_EVENTS.name].append(message)

    @property
    def orders_held(self) -> int:
        """Order states held in memory between batches (the working orders, at most ORDER_CACHE_SIZE)."""
        return len(self._orders)

    def _remember(self, client_order_id: str, row: dict[str, Any]) -> None:
        self._orders[client_order_id] = row
        self._orders.move_to_end(client_order_id)
        if row["status"] in TERMINAL:
            self._ended.add(client_order_id)

    def _read_order_states(self, client_order_ids: Iterable[str]) -> None:
        """Read the latest rows of the batch's orders not in memory, in one query per 1,000 (after a restart).

        One read per batch, not per message: a read per new order scanned the growing table
        once for every order and slowed the loader until the group evicted it.
        """
        missing = sorted({cid for cid in client_order_ids if cid not in self._orders})
        client = self._writers[ORDERS.name].client
        for start in range(0, len(missing), _LOOKUP_CHUNK):
            self.lookups += 1
            result = client.query(
                f"SELECT * FROM {ORDERS.name} FINAL WHERE client_order_id IN %(ids)s",  # noqa: S608 - constant name
                parameters={"ids": missing[start : start + _LOOKUP_CHUNK]},
            )
            for values in result.result_rows:
                row = dict(zip(result.column_names, values, strict=True))
                for name in ("created_at_ms", "updated_at_ms"):
                    row[name] = row[name].replace(tzinfo=UTC) if row[name].tzinfo is None else row[name]
                self._remember(str(row["client_order_id"]), row)

    def cleanup(self) -> None:
        """Close the writers (they flush first)."""
        for writer in self._writers.values():
            writer.close()


def run_audit_loader(
    settings: Settings, bootstrap: Bootstrap, stop: threading.Event, database: str | None = None
) -> None:
    """Run the loader until ``stop`` is set (quixstreams: call it on the main thread)."""
    from quixstreams import Application

    execution = settings.execution
    app = Application(
        broker_address=quix_connection(bootstrap),
        consumer_group=f"{execution.consumer_group}-audit",
        auto_offset_reset="earliest",
        commit_interval=1.0,
        consumer_extra_config={
            "fetch.wait.max.ms": 100,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
        },
        # It writes no topic: without idempotence its unused producer asks the cluster for nothing, and its
        # principal needs no write grant (an idempotent producer's id is refused to one without any).
        producer_extra_config={"enable.idempotence": False},
        auto_create_topics=False,
        use_changelog_topics=False,
        loglevel=None,
    )
    sink = AuditSink(settings, database)
    serve_metrics(settings, "audit", [WritersCollector("tickwave_audit", lambda: sink.writers)])
    topic = app.topic(topic_name(settings, ORDERS_EVENTS), value_deserializer="bytes", key_deserializer="bytes")
    app.dataframe(topic).sink(sink)
    watcher = threading.Thread(target=lambda: (stop.wait(), app.stop()), name="audit-stop", daemon=True)
    watcher.start()
    logger.info("audit loader: %s -> warehouse", topic.name)
    try:
        app.run()
    finally:
        sink.cleanup()
