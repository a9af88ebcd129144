"""Reading a test's topics back from the real broker."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import KafkaException, Message, TopicPartition

from adapters.bus import Bootstrap, make_consumer
from tickwave.contracts import DeadLetter, Tick, decode


def message_count(bootstrap: Bootstrap, topic: str, timeout_s: float = 15.0) -> int:
    """Return how many messages the topic holds (sum of high watermarks).

    A topic created a moment ago may not have partition leaders yet: ask again until it does.
    """
    consumer = make_consumer(bootstrap, f"count-{uuid.uuid4().hex}")
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
                return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        consumer.close()


def read_messages(bootstrap: Bootstrap, topic: str, timeout_s: float = 30.0) -> list[Message]:
    """Return every message of the topic, from the start, partition by partition."""
    expected = message_count(bootstrap, topic)
    consumer = make_consumer(bootstrap, f"read-{uuid.uuid4().hex}", "latency")
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            batch = consumer.consume(10_000, timeout=0.5)
            messages.extend(message for message in batch if not message.error())
    finally:
        consumer.close()
    assert len(messages) == expected, f"read {len(messages)} of {expected} messages from {topic}"
    return messages


def read_ticks(bootstrap: Bootstrap, topic: str) -> list[tuple[bytes, Tick]]:
    """Return ``(key, tick)`` of every message of a ticks topic."""
    return [(message.key(), decode(message.value(), Tick)) for message in read_messages(bootstrap, topic)]


def read_dead_letters(bootstrap: Bootstrap, topic: str) -> list[tuple[bytes | None, DeadLetter]]:
    """Return ``(key, dead letter)`` of every message of a dead-letter topic."""
    return [(message.key(), decode(message.value(), DeadLetter)) for message in read_messages(bootstrap, topic)]
