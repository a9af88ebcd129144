"""The flow's Kafka source on the real broker: its lag report, and how it waits when idle."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from confluent_kafka.admin import NewTopic

from adapters.bus import make_admin, make_producer, resolve_bootstrap
from streams import connectors
from streams.connectors import TickTopicSource
from tickwave.config import Settings
from tickwave.topics import TICKS, topic_name

MESSAGES = 100


def test_source_when_lag_reported_then_exact_and_flow_thread_not_held_by_the_broker(
    topics: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    topic = topic_name(topics, TICKS)
    producer = make_producer(resolve_bootstrap(topics))
    for number in range(MESSAGES):
        producer.produce(topic, b"m%d" % number, partition=0)
    assert producer.flush(30) == 0
    monkeypatch.setattr(connectors, "REPORT_EVERY_S", 0.0)  # report at every batch
    part = TickTopicSource(resolve_bootstrap(topics), topic, batch_size=40).build_part("in", "0", None)
    try:
        with caplog.at_level(logging.INFO, logger="streams.connectors"):
            values: list[bytes] = []
            deadline = time.monotonic() + 30
            while len(values) < MESSAGES and time.monotonic() < deadline:
                values.extend(part.next_batch())
            reports = [record.getMessage() for record in caplog.records if "lag=" in record.getMessage()]
            # Idle now: the consumer's fetch waits at the broker (up to fetch.wait.max.ms, 100 ms). A report
            # that asked the broker for the watermark queued behind it (~96 ms measured) at every batch; the
            # cached one takes microseconds. The median is judged: a busy machine delays a batch, not most.
            idle_s = []
            for _ in range(9):
                started = time.monotonic()
                assert part.next_batch() == []
                idle_s.append(time.monotonic() - started)
    finally:
        part.close()

    assert values == [b"m%d" % number for number in range(MESSAGES)]
    assert reports and reports[-1].endswith(f"lag=0 offset={MESSAGES}"), reports[-1:]
    assert sorted(idle_s)[len(idle_s) // 2] < 0.05, f"idle batches with a lag report took {_ms(idle_s)} ms"


def _ms(durations: list[float]) -> str:
    return ", ".join(f"{duration * 1000:.0f}" for duration in durations)


def test_source_when_idle_then_waits_in_librdkafka_for_the_next_message_instead_of_spinning(
    topics: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connectors, "IDLE_WAIT_S", 0.05)  # long enough to count the waits
    topic = topic_name(topics, TICKS)
    part = TickTopicSource(resolve_bootstrap(topics), topic).build_part("in", "0", None)
    producer = make_producer(resolve_bootstrap(topics))

    def produce_later() -> None:
        time.sleep(0.5)
        producer.produce(topic, b"late", partition=0)
        producer.flush(30)

    later = threading.Thread(target=produce_later)
    try:
        later.start()
        calls, values = 0, list[bytes]()
        deadline = time.monotonic() + 30
        while not values and time.monotonic() < deadline:
            calls += 1
            values = part.next_batch()
    finally:
        later.join()
        part.close()

    assert values == [b"late"]
    # Each idle call waits up to 50 ms for a message: ~10 calls in the 0.5 s, not thousands of empty ones.
    assert calls <= 40, f"{calls} calls of an idle source in ~0.5 s: it spins instead of waiting"


def test_source_when_another_partition_has_messages_queued_then_an_empty_one_does_not_wait(
    topics: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connectors, "IDLE_WAIT_S", 2.0)
    bootstrap = resolve_bootstrap(topics)
    topic = f"{topics.kafka.topic_prefix}two-partitions"
    admin = make_admin(bootstrap)  # kept until the topic exists: a collected client cancels its request
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
    producer = make_producer(bootstrap)
    for number in range(6):
        producer.produce(topic, b"m%d" % number, partition=1)
    assert producer.flush(30) == 0
    source = TickTopicSource(bootstrap, topic, batch_size=2)
    empty, busy = source.build_part("in", "0", None), source.build_part("in", "1", None)
    try:
        first: list[bytes] = []
        deadline = time.monotonic() + 30
        while not first and time.monotonic() < deadline:
            first = busy.next_batch()
        started = time.monotonic()
        assert empty.next_batch() == []  # partition 1 still has messages queued: no wait for partition 0
        waited_s = time.monotonic() - started
        rest: list[bytes] = []
        while len(first + rest) < 6 and time.monotonic() < deadline:
            rest.extend(busy.next_batch())
    finally:
        empty.close()
        busy.close()

    assert first + rest == [b"m%d" % number for number in range(6)]
    assert waited_s < 1.0, f"an empty partition waited {waited_s:.2f} s while another had messages queued"
