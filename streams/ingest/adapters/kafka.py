"""The Kafka side of ingest: good ticks to ``ticks``, rejects to ``ticks.dlq``.

One confluent-kafka producer with the ``bulk`` profile (``adapters.bus``), ``acks=all`` and
idempotence. Ticks are keyed by symbol, so one symbol's ticks stay ordered in one
partition. Delivery reports are requested for failures only
(``delivery.report.only.error``): a success needs no Python callback, which roughly
doubles the rate a single Python thread can hand messages to librdkafka.

Nothing handed to the sink expires: ``message.timeout.ms`` is 0 (librdkafka retries a message
until the broker acknowledges it), and a full local queue blocks the source instead of dropping
(``BufferError`` waits for room). A broker that is away (restarting, or refusing connections under
a flood) holds ingest back; its ticks wait in the queue and go once it answers. Only the final
flush is bounded (``run_ingest``): what is still queued then is counted as not delivered.

A dead letter (:class:`tickwave.contracts.DeadLetter`) carries the reason, the raw input
(UTF-8 text) and where it came from; its key is the symbol when known.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from adapters.bus import Bootstrap, Profile, make_producer, raise_if_denied
from streams.ingest.batches import SourceBatch
from streams.ingest.metrics import reason_code
from tickwave.clock import Clock
from tickwave.contracts import DeadLetter, encode

logger = logging.getLogger(__name__)


class KafkaSink:
    """Sends source batches to the ticks and dead-letter topics, and counts what it sent.

    Args:
        bootstrap: Kafka bootstrap servers.
        ticks_topic / dlq_topic: full topic names (with the configured prefix).
        source: the label of dead letters whose input names no origin.
        clock: the wall clock (dead letters' ``received_at_ms``).
        profile: the producer profile: ``bulk`` for replays, ``live`` for live sources.
        **overrides: extra producer settings.
    """

    def __init__(
        self,
        bootstrap: Bootstrap,
        ticks_topic: str,
        dlq_topic: str,
        source: str,
        clock: Clock,
        profile: Profile = "bulk",
        **overrides: Any,
    ) -> None:
        self.bootstrap = bootstrap
        self.ticks_topic = ticks_topic
        self.dlq_topic = dlq_topic
        self.source = source
        self.clock = clock
        self.ticks_sent = 0
        self.dead_letters_sent = 0
        self.delivery_failures = 0
        self.rejected_by_reason: Counter[str] = Counter()  # dead letters by reason code (streams.ingest.metrics)
        self.newest_time_ms: int | None = None
        settings = {
            "delivery.report.only.error": True,
            "on_delivery": self._on_delivery,
            "error_cb": self._on_error,
            "message.timeout.ms": 0,  # never expire a tick: retried until the broker takes it
        }
        self.producer: Producer = make_producer(bootstrap, profile, **{**settings, **overrides})

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            raise_if_denied(error, self.bootstrap, message.topic() or "")  # raised from poll() and flush()
            self.delivery_failures += 1
            if self.delivery_failures <= 10 or self.delivery_failures % 10_000 == 0:
                logger.error(
                    "kafka delivery failed topic=%s key=%s: %s (failures so far: %d)",
                    message.topic(),
                    message.key(),
                    error.str(),
                    self.delivery_failures,
                )

    @staticmethod
    def _on_error(error: KafkaError) -> None:
        logger.warning("kafka client error: %s", error.str())

    def _produce(self, topic: str, value: bytes, key: bytes | None) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key)
                return
            except BufferError:
                self.producer.poll(0.05)  # the local queue is full: let librdkafka drain it

    def send(self, batch: SourceBatch) -> None:
        """Queue the batch's ticks and dead letters for delivery."""
        ticks = batch.ticks
        if len(ticks):
            keys, values = ticks.encoded()
            produce, topic = self.producer.produce, self.ticks_topic
            for key, value in zip(keys, values, strict=True):
                try:
                    produce(topic, value, key)
                except BufferError:
                    self._produce(topic, value, key)
            self.ticks_sent += len(ticks)
            newest = int(ticks.time_ms.max())
            self.newest_time_ms = newest if self.newest_time_ms is None else max(newest, self.newest_time_ms)
        received_at = self.clock.now_ms()
        for rejected in batch.rejected:
            letter = DeadLetter(
                source=rejected.origin or self.source,
                reason=rejected.reason,
                raw=rejected.raw,
                received_at_ms=received_at,
                symbol=rejected.symbol,
            )
            self._produce(self.dlq_topic, encode(letter), rejected.symbol.encode() or None)
            self.rejected_by_reason[reason_code(rejected.reason)] += 1
        self.dead_letters_sent += len(batch.rejected)
        self.producer.poll(0)

    @property
    def in_flight(self) -> int:
        """Messages queued but not yet acknowledged by the broker."""
        return len(self.producer)

    def flush(self, timeout_s: float) -> int:
        """Wait until everything queued is acknowledged; return how many were not (0 = all)."""
        return int(self.producer.flush(timeout_s))
