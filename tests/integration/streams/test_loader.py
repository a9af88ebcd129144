"""The streams loader: ``streams.records`` into the real warehouse, offsets committed after the rows."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from confluent_kafka import TopicPartition

from adapters.bus import make_consumer, make_producer
from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from tests.integration.streams.test_kill_resume import ROOT
from tests.unit.streams.test_flow import stream
from tickwave.config import Settings, load_settings, to_environment
from tickwave.contracts import encode
from tickwave.topics import STREAMS_RECORDS, topic_name


def _settings(topics: Settings, database: str) -> Settings:
    settings = load_settings(
        state_dir=topics.state_dir,
        kafka={"bootstrap": topics.kafka.bootstrap, "topic_prefix": topics.kafka.topic_prefix},
        clickhouse={"database": database},
    )
    migrate(settings)
    return settings


def _publish(settings: Settings, values: list[bytes]) -> None:
    producer = make_producer(settings.kafka.bootstrap or "")
    for value in values:
        producer.produce(topic_name(settings, STREAMS_RECORDS), value, key=b"EURUSD")
    assert producer.flush(30) == 0


def _committed(settings: Settings) -> int:
    consumer = make_consumer(settings.kafka.bootstrap or "", f"{settings.kafka.topic_prefix}tickwave-streams-loader")
    (partition,) = consumer.committed([TopicPartition(topic_name(settings, STREAMS_RECORDS), 0)], timeout=10)
    consumer.close()
    return int(partition.offset)


def test_loader_when_records_and_one_undecodable_then_every_good_row_stored_and_offsets_committed(
    topics: Settings, fresh_database: str
) -> None:
    from streams.loader import load_to_end

    settings = _settings(topics, fresh_database)
    ticks = stream(minutes=1)
    _publish(settings, [encode(tick) for tick in ticks[:100]] + [b"not a record"] + [encode(t) for t in ticks[100:]])

    loaded = load_to_end(settings)

    client = connect(settings)
    assert loaded == len(ticks)
    assert client.query("SELECT count() FROM ticks FINAL").result_rows[0][0] == len(ticks)
    assert _committed(settings) == len(ticks) + 1  # the bad record is skipped, not retried forever
    client.close()


def test_loader_process_when_its_flow_goes_away_then_flushes_commits_and_exits(
    topics: Settings, fresh_database: str
) -> None:
    settings = _settings(topics, fresh_database)
    ticks = stream(minutes=1)
    _publish(settings, [encode(tick) for tick in ticks])
    loader = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "streams", "load", "--follow-stdin"],
        cwd=ROOT, env={**os.environ, **to_environment(settings)}, stdin=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        client = connect(settings)
        deadline = time.monotonic() + 60
        while client.query("SELECT count() FROM ticks").result_rows[0][0] < len(ticks):
            assert time.monotonic() < deadline and loader.poll() is None, "the loader stored nothing in 60 s"
            time.sleep(0.2)
        assert loader.stdin is not None
        loader.stdin.close()  # what the flow's death (even kill -9) looks like from the loader

        assert loader.wait(30) == 0, loader.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
        assert "the flow is gone" in loader.stderr.read().decode()  # type: ignore[union-attr]
        assert _committed(settings) == len(ticks)
        client.close()
    finally:
        if loader.poll() is None:
            loader.kill()
            loader.wait(30)
