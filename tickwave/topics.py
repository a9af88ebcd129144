"""The topic registry: every Kafka topic Tickwave uses, with its partitions and retention.

Topics are created explicitly (``tickwave topics create``); the embedded broker has
auto-creation off so that a typo never silently makes a new topic. Keys are the symbol
wherever one exists, so one symbol's events stay ordered in one partition and
parallelism scales with partitions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic, TopicMetadata

from tickwave.config import Settings
from tickwave.errors import ServiceError

logger = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000

TICKS = "ticks"
TICKS_DLQ = "ticks.dlq"
SIGNALS = "signals"
ORDERS_EVENTS = "orders.events"
EXECUTION_CONTROL = "execution.control"
STREAMS_RECORDS = "streams.records"


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its base name, partitions, retention, key and value contract."""

    base_name: str
    partitions: int
    retention_ms: int
    key: str
    value: str
    description: str

    def name(self, prefix: str = "") -> str:
        """Return the topic name with the configured prefix."""
        return f"{prefix}{self.base_name}"


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Return every topic Tickwave uses, sized from the settings."""
    kafka = settings.kafka
    return [
        TopicSpec(TICKS, kafka.ticks_partitions, 7 * DAY_MS, "symbol", "Tick", "validated ticks from every source"),
        TopicSpec(TICKS_DLQ, 1, 30 * DAY_MS, "symbol or empty", "DeadLetter", "rejected input, with the reason"),
        TopicSpec(SIGNALS, kafka.signals_partitions, 7 * DAY_MS, "symbol", "Signal", "trading signals from models"),
        TopicSpec(
            STREAMS_RECORDS, kafka.ticks_partitions, 7 * DAY_MS, "symbol",
            "Tick | Bar | FeatureVector | Prediction | Signal | DeadLetter",
            "the dataflow's warehouse rows, inserted by the streams loader",
        ),
        TopicSpec(
            ORDERS_EVENTS, kafka.signals_partitions, 365 * DAY_MS, "symbol", "OrderEvent | Fill | RiskEvent",
            "event-sourced audit trail of every order",
        ),
        TopicSpec(
            EXECUTION_CONTROL, 1, 365 * DAY_MS, "none", "ControlCommand",
            "halt / reduce / resume commands (one partition: total order)",
        ),
    ]  # fmt: skip


def topic_name(settings: Settings, base_name: str) -> str:
    """Return the full name of a registered topic (with the configured prefix)."""
    if base_name not in {spec.base_name for spec in topic_specs(settings)}:
        raise KeyError(f"unknown topic {base_name!r}")
    return f"{settings.kafka.topic_prefix}{base_name}"


def create_topics(admin: AdminClient, specs: list[TopicSpec], prefix: str = "", timeout_s: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; verify the partitions of those that do.

    Returns:
        The names of the topics created by this call.

    Raises:
        ServiceError: when a topic cannot be created or exists with too few partitions.
    """
    existing = admin.list_topics(timeout=timeout_s).topics
    wanted = {spec.name(prefix): spec for spec in specs}
    new = [
        NewTopic(name, num_partitions=spec.partitions, replication_factor=-1,
                 config={"retention.ms": str(spec.retention_ms)})
        for name, spec in wanted.items()
        if name not in existing
    ]  # fmt: skip
    created: list[str] = []
    if new:
        for name, future in admin.create_topics(new, operation_timeout=timeout_s).items():
            try:
                future.result(timeout=timeout_s)
                created.append(name)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise ServiceError(f"creating topic {name} failed: {exc.args[0].str()}") from exc
        # Metadata can lag a creation (ours or a concurrent one): check against a fresh view.
        existing = _wait_for_topics(admin, list(wanted), timeout_s)
    for name, spec in wanted.items():
        if len(existing[name].partitions) < spec.partitions:
            raise ServiceError(
                f"topic {name} has {len(existing[name].partitions)} partitions, fewer than the "
                f"{spec.partitions} configured; raise them with kafka-topics --alter or change the setting"
            )
    if created:
        logger.info("created topics %s", ", ".join(created))
    return created


def _wait_for_topics(admin: AdminClient, names: list[str], timeout_s: float) -> dict[str, TopicMetadata]:
    deadline = time.monotonic() + timeout_s
    while True:
        topics = admin.list_topics(timeout=timeout_s).topics
        missing = [name for name in names if name not in topics or topics[name].error is not None]
        if not missing:
            return dict(topics)
        if time.monotonic() > deadline:
            raise ServiceError(f"topics {', '.join(missing)} did not appear within {timeout_s:.0f} s")
        time.sleep(0.1)
