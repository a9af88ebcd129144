"""The streams loader: ``streams.records`` into the real warehouse, offsets committed after the rows."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from confluent_kafka import TopicPartition

from adapters.bus import make_consumer, make_producer, resolve_bootstrap
from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from streams import loader as loader_module
from streams.connectors import WriterPool
from streams.loader import RecordLoader
from tests.integration.streams.test_kill_resume import ROOT
from tests.plugins.services import bus_section
from tests.unit.streams.test_flow import stream
from tickwave.config import Settings, load_settings, to_environment
from tickwave.contracts import encode
from tickwave.topics import STREAMS_RECORDS, topic_name


def _settings(topics: Settings, database: str) -> Settings:
    settings = load_settings(
        state_dir=topics.state_dir,
        kafka=bus_section(topics),
        clickhouse={"database": database},
    )
    migrate(settings)
    return settings


def _publish(settings: Settings, values: list[bytes]) -> None:
    producer = make_producer(resolve_bootstrap(settings))
    for value in values:
        producer.produce(topic_name(settings, STREAMS_RECORDS), value, key=b"EURUSD")
    assert producer.flush(30) == 0


def _committed(settings: Settings) -> int:
    consumer = make_consumer(resolve_bootstrap(settings), f"{settings.kafka.topic_prefix}tickwave-streams-loader")
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
        cwd=ROOT,
        env={**os.environ, **to_environment(settings)},
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
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


@contextmanager
def running(loader: RecordLoader) -> Iterator[tuple[threading.Thread, list[BaseException]]]:
    """Run ``loader`` in a thread for the block; yield the thread and what it raised; stop and join it after."""
    stop, failures = threading.Event(), []

    def run() -> None:
        try:
            loader.run(stop)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, name="loader-under-test")
    thread.start()
    try:
        yield thread, failures
    finally:
        stop.set()
        thread.join(60)


class StallingPool(WriterPool):
    """The loader's writers, with one flush that takes ``stall_s`` longer (a warehouse that answers slowly)."""

    def __init__(self, settings: Settings, stall_s: float) -> None:
        super().__init__(lambda: connect(settings))
        self.stall_s = stall_s
        self.stalled = threading.Event()

    def flush(self) -> None:
        super().flush()
        if self.writers and not self.stalled.is_set():
            self.stalled.set()
            time.sleep(self.stall_s)


def test_loader_when_a_flush_outlasts_its_poll_interval_then_carries_on_and_loses_nothing(
    topics: Settings, fresh_database: str
) -> None:
    # The broker takes the partitions of a consumer that has not polled for max.poll.interval.ms; the
    # loader must rejoin rather than die on the commit it can no longer make.
    settings = _settings(topics, fresh_database)
    ticks = stream(minutes=1)
    half = len(ticks) // 2
    _publish(settings, [encode(tick) for tick in ticks[:half]])
    pool = StallingPool(settings, stall_s=9.0)
    loader = RecordLoader(settings, pool, **{"session.timeout.ms": 6000, "max.poll.interval.ms": 6000})
    client = connect(settings)
    try:
        with running(loader) as (thread, failures):
            assert pool.stalled.wait(60), "the loader never flushed"
            _publish(settings, [encode(tick) for tick in ticks[half:]])
            deadline = time.monotonic() + 90
            while client.query("SELECT count() FROM ticks FINAL").result_rows[0][0] < len(ticks):
                assert thread.is_alive(), f"the loader stopped: {failures}"
                assert time.monotonic() < deadline, "the ticks published after the stall were not loaded in 90 s"
                time.sleep(0.2)
    finally:
        client.close()

    assert not failures, failures
    assert _committed(settings) == len(ticks)


def test_loader_when_it_works_off_a_backlog_then_trims_the_heap_once_caught_up(
    topics: Settings, fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A backlog is read a whole batch at a time; the pages those records took are given back once
    # a read comes back short (measured: 72,000 records left 52 MB allocated untrimmed, 11 MB trimmed).
    trims: list[float] = []
    monkeypatch.setattr(loader_module, "BATCH", 100)
    monkeypatch.setattr(loader_module, "heap_trimmer", lambda: lambda: trims.append(time.monotonic()))
    settings = _settings(topics, fresh_database)
    ticks = stream(minutes=1)
    _publish(settings, [encode(tick) for tick in ticks])
    loader = RecordLoader(settings)
    with running(loader) as (_thread, failures):
        deadline = time.monotonic() + 60
        while not trims or loader.loaded < len(ticks):
            assert time.monotonic() < deadline, f"{len(trims)} trims after {loader.loaded} of {len(ticks)} records"
            time.sleep(0.1)
        after_backlog = len(trims)
        for tick in ticks[:5]:  # live records now: each read comes back short
            _publish(settings, [encode(tick)])
            time.sleep(0.3)
        while loader.loaded < len(ticks) + 5:
            assert time.monotonic() < deadline, f"{loader.loaded} of {len(ticks) + 5} records loaded"
            time.sleep(0.1)

    assert not failures, failures
    assert len(trims) == after_backlog  # no trim without a backlog
