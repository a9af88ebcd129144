"""Kafka clients configured the Tickwave way, for any Kafka-protocol cluster.

Two producer profiles and two consumer profiles, from what was measured on these
machines (``shared/NOTES.md``):

- ``bulk``: throughput first (ingest, replays): ``linger.ms=5``, large batches, lz4.
- ``live``: live ticks (MT5, simulator): ``linger.ms=1``, no compression; at thousands of
  ticks/s one request carries a millisecond of ticks instead of one tick each, and a
  tick waits at most 1 ms for its batch (the 5 ms of ``bulk`` would be half the
  tick-to-signal budget).
- ``latency``: the hot path (signals, orders): ``linger.ms=0``; consumers with
  ``fetch.min.bytes=1`` and ``fetch.wait.max.ms=100``. The broker answers a waiting
  fetch as soon as one byte arrives, so the wait bounds only how often an *idle*
  consumer asks: measured on the embedded broker at 1k messages/s, one hop's p50 was
  0.44 ms with a 100 ms wait and 0.52 ms with 5 ms, and the 5 ms wait made every idle
  consumer send 200 requests/s, CPU the 2-core machines need elsewhere.

Every producer uses ``acks=all``; never ``acks=0``. The ``bulk`` and ``latency``
profiles are idempotent producers. The ``live`` profile and the dataflow's publishers
(``streams.app``) are not, with one request in flight per connection so a retried batch
is never overtaken (``NOT_IDEMPOTENT``): librdkafka's idempotent producer lets at most
five messages per partition be in flight, and while a ready batch waits for an earlier
one's acknowledgement its broker thread calls ``poll()`` with a zero timeout in a loop,
a whole core for as long as the broker takes to answer. With the broker paused 100 ms
each second at 5k messages/s, a producer's threads used 22% of a core instead of 5%;
traced in the streams latency benchmark, three such producers (ticks in, signals and
records out) spun for tens to hundreds of milliseconds at a time on the 2-core machine,
and signals waiting behind them were 40-55 ms late (``bench/streams.py``). A retry may
then write a message twice; those consumers are idempotent by design (``tick_id``,
``signal_id``, ReplacingMergeTree tables). The execution path keeps the idempotent
``latency``/``bulk`` profiles: measured side by side, its signal -> order p99 is
6.0-6.6 ms with them and 100-350 ms in some runs without (cause not known).
"""

from __future__ import annotations

import logging
import socket
import zlib
from typing import Any, Literal

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from adapters.endpoints import live_endpoint
from tickwave.config import Settings
from tickwave.errors import ServiceError

logger = logging.getLogger(__name__)

Profile = Literal["bulk", "live", "latency"]

# librdkafka's own log lines go through Python logging instead of raw stderr.
_COMMON: dict[str, Any] = {
    "client.dns.lookup": "use_all_dns_ips",
    "socket.keepalive.enable": True,
    "logger": logging.getLogger("librdkafka"),
}

# Not an idempotent producer (whose in-flight gate busy-polls a core, see above); one
# request in flight keeps each partition's order across retries.
NOT_IDEMPOTENT: dict[str, Any] = {"enable.idempotence": False, "max.in.flight.requests.per.connection": 1}

_PRODUCER: dict[Profile, dict[str, Any]] = {
    "bulk": {
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 1_000_000,
    },
    "live": {"linger.ms": 0.2, "compression.type": "none", **NOT_IDEMPOTENT},
    "latency": {"linger.ms": 0, "compression.type": "none"},
}

_CONSUMER: dict[Profile, dict[str, Any]] = {
    "bulk": {"fetch.wait.max.ms": 100, "fetch.min.bytes": 1},
    "live": {"fetch.wait.max.ms": 100, "fetch.min.bytes": 1},
    "latency": {"fetch.wait.max.ms": 100, "fetch.min.bytes": 1},
}


def resolve_bootstrap(settings: Settings) -> str:
    """Return the bootstrap servers: the external cluster or the running embedded broker.

    Raises:
        ServiceError: when no external cluster is set and the embedded one is not up.
    """
    if settings.kafka.bootstrap:
        return settings.kafka.bootstrap
    endpoint = live_endpoint(settings.state_path, "kafka")
    if endpoint is None:
        raise ServiceError(
            f"Kafka is not running for state dir {settings.state_path}: "
            f"run `tickwave up`, or set TICKWAVE_KAFKA_BOOTSTRAP to an existing cluster"
        )
    return endpoint.address


def producer_config(bootstrap: str, profile: Profile = "bulk", **overrides: Any) -> dict[str, Any]:
    """Return librdkafka producer settings for ``profile``."""
    return {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        **_COMMON,
        **_PRODUCER[profile],
        **overrides,
    }


def consumer_config(bootstrap: str, group_id: str, profile: Profile = "bulk", **overrides: Any) -> dict[str, Any]:
    """Return librdkafka consumer settings for ``profile`` (manual commits by default)."""
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        **_COMMON,
        **_CONSUMER[profile],
        **overrides,
    }


def make_producer(bootstrap: str, profile: Profile = "bulk", **overrides: Any) -> Producer:
    """Create a producer for ``profile``."""
    return Producer(producer_config(bootstrap, profile, **overrides))


def make_consumer(bootstrap: str, group_id: str, profile: Profile = "bulk", **overrides: Any) -> Consumer:
    """Create a consumer for ``profile``."""
    return Consumer(consumer_config(bootstrap, group_id, profile, **overrides))


def default_partition(key: bytes, partitions: int) -> int:
    """The partition librdkafka's default partitioner (``consistent_random``) gives a message with ``key``.

    CRC-32 of the key modulo the partition count, as every producer of Tickwave (all
    librdkafka, none setting ``partitioner``) places a tick keyed by its symbol. A producer
    with another partitioner (Java's murmur2) places keys elsewhere.
    """
    return zlib.crc32(key) % partitions


def make_admin(bootstrap: str) -> AdminClient:
    """Create an admin client."""
    return AdminClient({"bootstrap.servers": bootstrap, **_COMMON})


def broker_answers(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """Return True when a metadata request to ``bootstrap`` succeeds within the timeout."""
    if not any(_accepts_connections(server) for server in bootstrap.split(",")):
        return False  # not listening yet: skip librdkafka and its connection-refused noise
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 1000, **_COMMON})
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def _accepts_connections(server: str) -> bool:
    host, _, port = server.strip().rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=1.0):
            return True
    except (OSError, ValueError):
        return False
