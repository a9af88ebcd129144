"""The topic registry: every Kafka topic Tickwave uses, with its partitions and contracts.

Topics are created explicitly, with their retention (``adapters/topics.py``,
``adapters/retention.py``). Keys are the symbol wherever one exists, so one symbol's
events stay ordered in one partition and parallelism scales with partitions.
"""

from __future__ import annotations

from dataclasses import dataclass

from tickwave.config import Settings

TICKS = "ticks"
TICKS_DLQ = "ticks.dlq"
SIGNALS = "signals"
ORDERS_EVENTS = "orders.events"
EXECUTION_CONTROL = "execution.control"
STREAMS_RECORDS = "streams.records"

# The principals a secured cluster knows Tickwave's processes by; each topic names who may write and read it.
INGEST = "ingest"
DATAFLOW = "dataflow"
LOADER = "loader"  # the streams loader: the dataflow's records into the warehouse
EXECUTION = "execution"
AUDIT = "audit"  # the audit loader: orders.events into the warehouse
OPERATOR = "operator"  # `tickwave execution halt|reduce|resume|status`
READER = "reader"  # read-only tools: `tickwave topics tail`
# The execution process's transactional ids (its account fence) start so, after the topic prefix.
EXECUTION_TRANSACTIONAL_ID = "tickwave-execution-"
ANALYST = "analyst"  # reads the warehouse, never Kafka
PRINCIPALS = (INGEST, DATAFLOW, LOADER, EXECUTION, AUDIT, OPERATOR, READER, ANALYST)


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its base name, partitions, key and value contract, and the principals that write and read it."""

    base_name: str
    partitions: int
    key: str
    value: str
    description: str
    writers: tuple[str, ...] = ()
    readers: tuple[str, ...] = ()

    def name(self, prefix: str = "") -> str:
        """Return the topic name with the configured prefix."""
        return f"{prefix}{self.base_name}"


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Return every topic Tickwave uses, sized from the settings."""
    kafka = settings.kafka
    return [
        TopicSpec(
            TICKS,
            kafka.ticks_partitions,
            "symbol",
            "Tick",
            "validated ticks from every source",
            writers=(INGEST,),
            readers=(DATAFLOW, EXECUTION, READER),
        ),
        TopicSpec(
            TICKS_DLQ,
            1,
            "symbol or empty",
            "DeadLetter",
            "rejected input, with the reason",
            writers=(INGEST, DATAFLOW),
            readers=(READER,),
        ),
        TopicSpec(
            SIGNALS,
            kafka.signals_partitions,
            "symbol",
            "Signal",
            "trading signals from models",
            writers=(DATAFLOW,),
            readers=(EXECUTION, READER),
        ),
        TopicSpec(
            STREAMS_RECORDS,
            kafka.ticks_partitions,
            "symbol",
            "Tick | Bar | FeatureVector | Prediction | Signal | DeadLetter",
            "the dataflow's warehouse rows, inserted by the streams loader",
            writers=(DATAFLOW,),
            readers=(LOADER, READER),
        ),
        TopicSpec(
            ORDERS_EVENTS,
            kafka.signals_partitions,
            "symbol",
            "OrderEvent | Fill | RiskEvent",
            "event-sourced audit trail of every order",
            writers=(EXECUTION,),
            readers=(EXECUTION, AUDIT, OPERATOR, READER),
        ),
        TopicSpec(
            EXECUTION_CONTROL,
            1,
            "none",
            "ControlCommand",
            "halt / reduce / resume commands (one partition: total order)",
            writers=(OPERATOR,),
            readers=(EXECUTION, READER),
        ),
    ]


def topic_name(settings: Settings, base_name: str) -> str:
    """Return the full name of a registered topic (with the configured prefix)."""
    if base_name not in {spec.base_name for spec in topic_specs(settings)}:
        raise KeyError(f"unknown topic {base_name!r}")
    return f"{settings.kafka.topic_prefix}{base_name}"
