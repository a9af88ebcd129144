"""I/O adapters of the dataflow: the ticks topic in; topics out.

``TickTopicSource`` is a partitioned Bytewax source over one Kafka topic: each Kafka
partition is a Bytewax partition (so several processes split them), its position is
the next offset (saved in Bytewax's recovery snapshots, so a restart resumes exactly
there, without consumer-group commits), and it yields raw message values, leaving
decoding to the ``validate`` step. It logs throughput and lag behind the topic.

``TopicSink`` publishes messages keyed by symbol through a shared ``Publisher``
without waiting, and waits for the broker's acknowledgements when Bytewax snapshots an
epoch, so a resumed flow never skips a message that was only queued when it died. The
warehouse rows go to ``streams.records``; ``WriterPool`` (one batched writer per table)
is what the loader (``streams.loader``) inserts them with.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from clickhouse_connect.driver.client import Client
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from adapters.bus import Bootstrap, Profile, consumer_config, make_admin, make_producer, raise_if_denied
from adapters.signing import signed_headers
from adapters.warehouse.writer import BatchWriter, WriterConfig
from tickwave.contracts import Message, encode
from tickwave.errors import ServiceError
from tickwave.warehouse.tables import Table, table_for

logger = logging.getLogger(__name__)

REPORT_EVERY_S = 10.0
# How long an idle source waits in librdkafka for the next message before handing the
# worker back to Bytewax (its timers, snapshots and other processes' items wait that long
# at most). Waiting on librdkafka's queue wakes the flow as a fetch lands; the earlier
# 250 us back-off woke the flow 4,000 times a second on an idle topic and added half a
# back-off to every tick on average.
IDLE_WAIT_S = 0.001
# Partitions of the sinks: several spread a multi-process flow's writes over its processes
# (items are routed by key); the set must stay the same across restarts (recovery).
SINK_PARTITIONS = 8


class _TopicReader:
    """One Kafka consumer for every partition of a topic this process reads.

    A consumer per partition costs a set of librdkafka threads and a fetch loop each and
    made the broker answer six times the requests; measured at 5k ticks/s, it put tens
    of milliseconds on the tail of tick-to-signal latency. Messages are sorted into
    per-partition buffers, so each Bytewax partition still returns only its own messages
    and keeps its own offset.
    """

    def __init__(self, bootstrap: Bootstrap, config: dict[str, Any], topic: str, batch_size: int) -> None:
        self.bootstrap, self.topic, self.batch_size = bootstrap, topic, batch_size
        self.consumer = Consumer(config)
        self.buffers: dict[int, deque[Any]] = {}

    def add(self, partition: int, offset: int) -> None:
        """Start reading ``partition`` at ``offset``."""
        self.buffers[partition] = deque()
        self.consumer.incremental_assign([TopicPartition(self.topic, partition, offset)])

    def remove(self, partition: int) -> None:
        """Stop reading ``partition``; close the consumer with the last one."""
        self.buffers.pop(partition, None)
        if self.buffers:
            self.consumer.incremental_unassign([TopicPartition(self.topic, partition)])
        else:
            self.consumer.close()

    def take(self, partition: int) -> list[Any]:
        """Return up to ``batch_size`` queued messages of ``partition``, fetching if none.

        When no partition has a message queued, waits up to ``IDLE_WAIT_S`` for the next one
        (librdkafka wakes the wait as the fetch lands); otherwise takes what librdkafka has
        prefetched without blocking, so one idle partition never delays the others.
        """
        buffer = self.buffers[partition]
        if not buffer:
            if not any(self.buffers.values()):
                first = self.consumer.poll(IDLE_WAIT_S)
                if first is not None:
                    self._queue_by_partition([first])
            self._queue_by_partition(self.consumer.consume(self.batch_size, 0))
        return [buffer.popleft() for _ in range(min(self.batch_size, len(buffer)))]

    def _queue_by_partition(self, messages: list[Any]) -> None:
        """Append each message to its partition's buffer (a partition no longer read drops it)."""
        for message in messages:
            queue = self.buffers.get(message.partition())
            if queue is not None:
                queue.append(message)

    def position(self, partition: int) -> int | None:
        """The high watermark of ``partition`` from the last fetch (for the lag report), or None before one.

        Cached, not asked of the broker: the request queued behind the consumer's waiting
        fetch on the same connection and took ~96 ms at p50 on an idle partition (30 us
        cached), while the flow's thread waited.
        """
        _low, high = self.consumer.get_watermark_offsets(TopicPartition(self.topic, partition), cached=True)
        return int(high) if high >= 0 else None


# partition -> its progress at the last report (offset, lag, ticks/s, Unix time): read by the health report.
PARTITION_PROGRESS: dict[int, dict[str, float | None]] = {}


class _TopicPartitionReader(StatefulSourcePartition[bytes, int]):
    """Reads one Kafka partition from a given offset, through the process's shared reader."""

    def __init__(self, reader: _TopicReader, partition: int, offset: int) -> None:
        self.reader, self.partition, self.offset = reader, partition, offset
        self.topic = reader.topic
        self.at_end = False
        self.read_since_report = 0
        self.reported_at = time.monotonic()
        reader.add(partition, offset)

    def next_batch(self) -> list[bytes]:
        if self.at_end:
            raise StopIteration
        values: list[bytes] = []
        for message in self.reader.take(self.partition):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self.at_end = True
                    break
                raise_if_denied(error, self.reader.bootstrap, self.topic)
                raise ServiceError(f"reading {self.topic}[{self.partition}] failed: {error.str()}")
            values.append(message.value())
            self.offset = message.offset() + 1
        self.read_since_report += len(values)
        if time.monotonic() - self.reported_at >= REPORT_EVERY_S:
            self._report()
        return values

    def _report(self) -> None:
        elapsed = time.monotonic() - self.reported_at
        high = self.reader.position(self.partition)
        logger.info(
            "topic=%s partition=%d ticks_per_s=%.0f lag=%s offset=%d",
            self.topic,
            self.partition,
            self.read_since_report / elapsed,
            "unknown" if high is None else max(0, high - self.offset),
            self.offset,
        )
        read = (PARTITION_PROGRESS.get(self.partition) or {}).get("read") or 0
        PARTITION_PROGRESS[self.partition] = {
            "read": read + self.read_since_report,  # since this process started (the metrics' counter)
            "offset": self.offset,
            "lag": None if high is None else max(0, high - self.offset),
            "ticks_per_s": round(self.read_since_report / elapsed, 1),
            "at": time.time(),
        }
        self.read_since_report = 0
        self.reported_at = time.monotonic()

    def snapshot(self) -> int:
        return self.offset

    def close(self) -> None:
        self.reader.remove(self.partition)


class TickTopicSource(FixedPartitionedSource[bytes, int]):
    """Every partition of a Kafka topic, as raw message values."""

    def __init__(self, bootstrap: Bootstrap, topic: str, tail: bool = True, batch_size: int = 2000) -> None:
        """Read ``topic``; with ``tail=False`` stop at the end (replays, tests, benchmarks)."""
        self.bootstrap, self.topic, self.tail, self.batch_size = bootstrap, topic, tail, batch_size
        self._reader: _TopicReader | None = None

    def list_parts(self) -> list[str]:
        """One Bytewax partition per Kafka partition."""
        metadata = make_admin(self.bootstrap).list_topics(self.topic, timeout=10)
        topic = metadata.topics.get(self.topic)
        raise_if_denied(topic.error if topic is not None else None, self.bootstrap, self.topic)
        if topic is None or topic.error is not None:
            raise ServiceError(f"topic {self.topic} does not exist: run `tickwave topics create`")
        return [str(partition) for partition in sorted(topic.partitions)]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _TopicPartitionReader:
        """Open a reader at the recovered offset, or at the beginning (one consumer per process)."""
        if self._reader is None or not self._reader.buffers:
            config = consumer_config(
                self.bootstrap,
                "tickwave-streams-unused",
                "latency",
                **{"enable.partition.eof": not self.tail, "fetch.max.bytes": 16 * 1024 * 1024},
            )
            self._reader = _TopicReader(self.bootstrap, config, self.topic, self.batch_size)
        offset = OFFSET_BEGINNING if resume_state is None else resume_state
        start = "the beginning" if resume_state is None else f"offset {resume_state}"
        logger.info("streams: reading %s[%s] from %s in process %d", self.topic, for_part, start, os.getpid())
        return _TopicPartitionReader(self._reader, int(for_part), offset)


class Publisher:
    """One producer for a topic, shared by the partitions of every ``TopicSink`` that uses it.

    ``publish`` hands messages to librdkafka and returns at once (it sends them from its
    own thread); ``flush`` waits for the broker's acknowledgements and raises if any
    delivery failed. Waiting per batch had stalled the flow for ~1 ms at p50 and up to
    tens of ms at p99 on every batch of signals. The producer is made on first use, in
    the process that runs the flow.
    """

    def __init__(
        self,
        bootstrap: Bootstrap,
        topic: str,
        profile: Profile = "latency",
        signing_key: bytes | None = None,
        **overrides: Any,
    ) -> None:
        """Publish to ``topic`` on ``bootstrap`` with producer ``profile`` (and librdkafka ``overrides``).

        ``signing_key``: sign each message (``adapters.signing``: an HMAC in a header), as ``signals`` must be.
        """
        self.bootstrap, self.topic, self.profile, self.overrides = bootstrap, topic, profile, overrides
        self.signing_key = signing_key
        self._producer: Producer | None = None
        self.failures: list[str] = []

    def publish(self, messages: Iterable[Message]) -> None:
        """Send messages keyed by their symbol, without waiting, queued in one call.

        One ``produce_batch`` call queues them all: 1.0-1.9 us per message in the flow's
        thread instead of 2.2-2.6 us with a ``produce`` call each (2,000 ticks), and a
        second's signals are queued microseconds apart, ready for one request.

        Raises:
            ServiceError: when the producer's queue refused some (full), or an earlier delivery failed.
        """
        if self._producer is None:
            self._producer = make_producer(self.bootstrap, self.profile, **self.overrides)
        if self.signing_key is not None:
            self._publish_signed(self._producer, self.signing_key, messages)
            return
        batch = [
            {"value": encode(message), "key": str(getattr(message, "symbol", "")).encode()} for message in messages
        ]
        if batch:
            queued = self._producer.produce_batch(self.topic, batch, on_delivery=self._delivered)
            if queued < len(batch):
                errors = [str(item["_error"]) for item in batch if "_error" in item]
                raise ServiceError(
                    f"publishing to {self.topic}: {len(batch) - queued} messages not queued: {errors[:3]}"
                )
        self._producer.poll(0)  # delivery reports of earlier messages
        self._raise_if_failed()

    def _publish_signed(self, producer: Producer, key: bytes, messages: Iterable[Message]) -> None:
        # One produce call each: ``produce_batch`` drops headers (confluent-kafka 2.12, librdkafka's batch API).
        for message in messages:
            value = encode(message)
            try:
                producer.produce(
                    self.topic,
                    value=value,
                    key=str(getattr(message, "symbol", "")).encode(),
                    headers=signed_headers(key, value),
                    on_delivery=self._delivered,
                )
            except BufferError as exc:
                raise ServiceError(f"publishing to {self.topic}: the producer's queue is full ({exc})") from exc
        producer.poll(0)
        self._raise_if_failed()

    def flush(self) -> None:
        """Return once every message sent so far is acknowledged.

        Raises:
            ServiceError: when a delivery failed or stayed unacknowledged for 30 s.
        """
        remaining = self._producer.flush(30) if self._producer is not None else 0
        self._raise_if_failed()
        if remaining:
            raise ServiceError(f"publishing to {self.topic} failed: {remaining} messages unacknowledged after 30 s")

    def _delivered(self, error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            raise_if_denied(error, self.bootstrap, self.topic)  # raised from poll() and flush()
            self.failures.append(error.str())

    def _raise_if_failed(self) -> None:
        if self.failures:
            raise ServiceError(f"publishing to {self.topic} failed: {self.failures[:3]}")


class _TopicPartition(StatefulSinkPartition[Any, None]):
    def __init__(self, publisher: Publisher, to_messages: Callable[[Any], Iterable[Message]]) -> None:
        self.publisher, self.to_messages = publisher, to_messages

    def write_batch(self, values: list[Any]) -> None:
        self.publisher.publish(message for value in values for message in self.to_messages(value))

    def snapshot(self) -> None:
        # Bytewax snapshots at each epoch's end, before committing it: every message of a
        # committed epoch is acknowledged by the broker, so a resume loses none.
        self.publisher.flush()

    def close(self) -> None:
        self.publisher.flush()


class TopicSink(FixedPartitionedSink[Any, None]):
    """Publishes through a ``Publisher``; every message is acknowledged before its epoch commits.

    ``to_messages`` turns an item's value into the messages published (a list of ticks,
    or one bar...). Several sinks may share one publisher (one producer per process).
    """

    def __init__(
        self, publisher: Publisher, to_messages: Callable[[Any], Iterable[Message]] = lambda value: [value]
    ) -> None:
        """Publish items through ``publisher``."""
        self.publisher, self.to_messages = publisher, to_messages

    def list_parts(self) -> list[str]:
        """A fixed set of partitions (recovery requires the set to stay the same)."""
        return [str(index) for index in range(SINK_PARTITIONS)]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _TopicPartition:
        """Every partition shares the publisher."""
        return _TopicPartition(self.publisher, self.to_messages)


class WriterPool:
    """One batched writer per warehouse table (the streams loader's; tests write features with it too)."""

    def __init__(self, connect_client: Callable[[], Client], config: WriterConfig | None = None) -> None:
        """Create writers lazily with clients from ``connect_client``."""
        self.connect_client = connect_client
        self.config = config or WriterConfig()
        self.writers: dict[str, BatchWriter] = {}
        self.lock = threading.Lock()

    def write(self, messages: Iterable[Message]) -> None:
        """Buffer messages in their tables' writers (blocks under backpressure)."""
        by_table: dict[str, list[Message]] = {}
        tables: dict[str, Table] = {}
        for message in messages:
            table = table_for(message)
            tables[table.name] = table
            by_table.setdefault(table.name, []).append(message)
        for name, batch in by_table.items():
            self._writer(tables[name]).write_messages(batch)

    def _writer(self, table: Table) -> BatchWriter:
        with self.lock:
            writer = self.writers.get(table.name)
            if writer is None:
                writer = self.writers[table.name] = BatchWriter(self.connect_client(), table, self.config)
            return writer

    def flush(self) -> None:
        """Return once every buffered row of every table is committed (the tables' inserts overlap)."""
        writers = list(self.writers.values())
        for writer in writers:
            writer.seal_pending()
        for writer in writers:
            writer.flush()

    def close(self) -> None:
        """Flush and stop every writer."""
        for writer in list(self.writers.values()):
            writer.close()
