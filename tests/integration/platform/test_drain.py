"""What the demo waits for before it counts: every stage's lag, read from the real broker and the health files."""

from __future__ import annotations

import os
import time
from pathlib import Path

from confluent_kafka import TopicPartition

from adapters.bus import make_consumer, make_producer, resolve_bootstrap
from adapters.health import HealthReport, write_health
from app.services.probes import pipeline_lags
from tickwave.config import Settings, load_settings
from tickwave.topics import ORDERS_EVENTS, SIGNALS, STREAMS_RECORDS, topic_name


def _commit_to_end(settings: Settings, group: str, topic: str) -> None:
    consumer = make_consumer(resolve_bootstrap(settings), group, "latency")
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.commit(offsets=[TopicPartition(topic, 0, high)], asynchronous=False)
    finally:
        consumer.close()


def _known_lags(settings: Settings, timeout_s: float = 20.0) -> dict[str, int | None]:
    # A new broker answers NOT_COORDINATOR while it loads a group's coordinator: unknown until it has.
    deadline = time.monotonic() + timeout_s
    lags = pipeline_lags(settings)
    while None in lags.values() and time.monotonic() < deadline:
        time.sleep(0.5)
        lags = pipeline_lags(settings)
    return lags


def test_pipeline_lags_when_messages_wait_then_each_stage_counts_them_until_its_group_commits(
    topics: Settings, tmp_path: Path
) -> None:
    settings = load_settings(state_dir=tmp_path, kafka=topics.kafka.model_dump())  # a health dir of its own
    producer = make_producer(resolve_bootstrap(settings), "latency")
    for topic, count in ((SIGNALS, 3), (ORDERS_EVENTS, 2), (STREAMS_RECORDS, 4)):
        for index in range(count):
            producer.produce(topic_name(settings, topic), value=b"x", key=str(index).encode(), partition=0)
    producer.flush(10)
    write_health(
        tmp_path, HealthReport("streams", os.getpid(), time.time(), 2.0, detail={"partitions": {"0": {"lag": 0}}})
    )

    waiting = _known_lags(settings)
    for group, topic in (
        (settings.execution.consumer_group, SIGNALS),
        (f"{settings.execution.consumer_group}-audit", ORDERS_EVENTS),
        (f"{settings.kafka.topic_prefix}tickwave-streams-loader", STREAMS_RECORDS),
    ):
        _commit_to_end(settings, group, topic_name(settings, topic))
    drained = _known_lags(settings)
    (tmp_path / "run" / "streams.health.json").unlink()
    no_dataflow_report = pipeline_lags(settings)

    assert waiting == {"dataflow": 0, "streams loader": 4, "execution": 3, "audit loader": 2}
    assert drained == {"dataflow": 0, "streams loader": 0, "execution": 0, "audit loader": 0}
    assert no_dataflow_report["dataflow"] is None  # unknown is never drained
