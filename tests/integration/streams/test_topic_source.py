"""The flow's Kafka source on the real broker: its lag report is right and never waits for the broker."""

from __future__ import annotations

import logging
import time

import pytest

from streams import connectors
from streams.connectors import TickTopicSource
from tickwave.bus import make_producer
from tickwave.config import Settings
from tickwave.topics import TICKS, topic_name

MESSAGES = 100


def test_source_when_lag_reported_then_exact_and_flow_thread_not_held_by_the_broker(
    topics: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    topic = topic_name(topics, TICKS)
    producer = make_producer(topics.kafka.bootstrap or "")
    for number in range(MESSAGES):
        producer.produce(topic, b"m%d" % number, partition=0)
    assert producer.flush(30) == 0
    monkeypatch.setattr(connectors, "REPORT_EVERY_S", 0.0)  # report at every batch
    part = TickTopicSource(topics.kafka.bootstrap or "", topic, batch_size=40).build_part("in", "0", None)
    try:
        with caplog.at_level(logging.INFO, logger="streams.connectors"):
            values: list[bytes] = []
            deadline = time.monotonic() + 30
            while len(values) < MESSAGES and time.monotonic() < deadline:
                values.extend(part.next_batch())
            reports = [record.getMessage() for record in caplog.records if "lag=" in record.getMessage()]
            # Idle now: the consumer's fetch waits at the broker (up to fetch.wait.max.ms, 100 ms). A report
            # that asked the broker for the watermark queued behind it (~96 ms measured); the cached one takes us.
            idle_s = []
            for _ in range(5):
                started = time.monotonic()
                assert part.next_batch() == []
                idle_s.append(time.monotonic() - started)
    finally:
        part.close()

    assert values == [b"m%d" % number for number in range(MESSAGES)]
    assert reports and reports[-1].endswith(f"lag=0 offset={MESSAGES}"), reports[-1:]
    assert max(idle_s) < 0.05, f"an idle batch with a lag report took {max(idle_s) * 1000:.0f} ms"
