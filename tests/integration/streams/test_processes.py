"""`tickwave streams run --processes N`: N Bytewax processes split the ticks topic's partitions.

The real service process over the real Kafka and warehouse. With two processes and a
ticks topic of two partitions (both holding ticks of the shipped sample), the run must
store exactly what the single-process run of the same sample stores; with more
processes than partitions, the command refuses before it starts any Bytewax process;
killed with ``kill -9``, the command leaves none of its processes behind; with one of its
Bytewax processes killed with ``kill -9``, the command takes the cluster down and the next run
resumes every process from the last snapshot, losing and doubling no tick in any bar.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
from confluent_kafka import TopicPartition

from adapters.bus import make_consumer, resolve_bootstrap
from adapters.endpoints import ready_marker
from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from streams.ingest.sample import sample_paths
from streams.routing import GroupLayout, key_for_worker
from tests.integration.streams.test_flow_kafka_warehouse import sample_windows
from tests.integration.streams.test_kill_resume import assert_resumed_exactly, row_counter, start_flow, tick_sender
from tests.plugins.services import bus_section
from tests.unit.streams.test_flow import stream
from tickwave.config import Settings, load_settings
from tickwave.topics import TICKS, topic_name

PARTITIONS = 2
KILL_MINUTES = 6  # of two symbols' ticks, four a second each


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The session broker and this test's topic prefix, with ticks topics of two partitions (``topics`` uses it)."""
    return load_settings(
        state_dir=settings.state_dir,
        kafka=bus_section(settings, ticks_partitions=PARTITIONS),
    )


@contextmanager
def flow_process(settings: Settings, *arguments: str) -> Iterator[tuple[subprocess.Popen[bytes], dict[int, list[str]]]]:
    """`tickwave streams run <arguments>`, and the command line of every process it started (watched while it runs).

    On the way out, whatever is still running (the command, its Bytewax processes, its
    loader, even orphaned ones) is killed.
    """
    flow = start_flow(settings, *arguments)
    seen: dict[int, psutil.Process] = {}
    commands: dict[int, list[str]] = {}
    done = threading.Event()

    def watch() -> None:
        parent = psutil.Process(flow.pid)
        while not done.is_set():
            try:
                for child in parent.children(recursive=True):
                    seen.setdefault(child.pid, child)
                    # Read again each round: a child caught between fork and exec shows its parent's
                    # command line, or none (a run saw a Bytewax process recorded as []).
                    command = child.cmdline()
                    if command:
                        commands[child.pid] = command
            except psutil.Error:  # a child ended between listing and reading it: the next round sees the rest
                pass
            done.wait(0.2)

    watcher = threading.Thread(target=watch, name="flow-watcher", daemon=True)
    watcher.start()
    try:
        yield flow, commands
    finally:
        done.set()
        watcher.join()
        if flow.poll() is None:
            flow.kill()
            flow.wait(30)
        left = [process for process in seen.values() if process.is_running()]
        for process in left:
            process.kill()
        psutil.wait_procs(left, timeout=30)


def ticks_per_partition(settings: Settings) -> list[int]:
    """How many messages each partition of the ticks topic holds."""
    topic = topic_name(settings, TICKS)
    consumer = make_consumer(resolve_bootstrap(settings), "check")
    partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    counts = []
    for partition in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        counts.append(high - low)
    consumer.close()
    return counts


def partitioned_settings(topics: Settings, database: str, **overrides: Any) -> Settings:
    """Settings for ``PARTITIONS`` tick partitions and a fresh migrated ``database``, with no recovery store yet."""
    settings = load_settings(
        state_dir=topics.state_dir,
        kafka=bus_section(topics, ticks_partitions=PARTITIONS),
        clickhouse={"database": database},
        **overrides,
    )
    migrate(settings)  # a database of the test's own: exact counts
    # The session's state dir: never resume another test's snapshots.
    shutil.rmtree(settings.state_path / "data" / "streams" / "recovery", ignore_errors=True)
    return settings


def group_keys(store: Path) -> set[str]:
    """The keys of the bars step's snapshots in Bytewax's SQLite recovery store."""
    keys: set[str] = set()
    for path in store.glob("*.sqlite3"):
        with sqlite3.connect(path) as db:
            keys.update(key for (key,) in db.execute("SELECT state_key FROM snaps WHERE step_id LIKE '%.bars'"))
    return keys


def worker_counts(store: Path) -> list[int]:
    """The worker count of every execution recorded in Bytewax's SQLite recovery store."""
    counts: set[tuple[int, int]] = set()
    for path in store.glob("*.sqlite3"):
        with sqlite3.connect(path) as db:
            counts.update(db.execute("SELECT ex_num, worker_count FROM exs"))
    return [count for _, count in sorted(counts)]


def symbol_partitions(settings: Settings) -> dict[str, int]:
    """The partition of the ticks topic each symbol's ticks were put on (read back from the broker)."""
    topic = topic_name(settings, TICKS)
    consumer = make_consumer(resolve_bootstrap(settings), "check", **{"enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, partition, 0) for partition in range(PARTITIONS)])
    found: dict[str, set[int]] = {}
    ended: set[int] = set()
    while len(ended) < PARTITIONS:  # consume() waits out its timeout unless it has all it asked for
        for message in consumer.consume(10_000, timeout=0.5):
            if message.error() is not None:
                ended.add(message.partition())  # end of that partition (anything else fails the check below)
            else:
                found.setdefault(message.key().decode(), set()).add(message.partition())
    consumer.close()
    assert all(len(partitions) == 1 for partitions in found.values()), found  # keyed by symbol
    return {symbol: partitions.pop() for symbol, partitions in found.items()}


def where_things_ran(log: str) -> tuple[dict[int, int], dict[str, int]]:
    """From the processes' log: the process that read each partition, and the process that folded each symbol."""
    log = " ".join(log.split())  # rich wraps long lines
    readers = {
        int(partition): int(pid)
        for partition, pid in re.findall(r"reading \S+\[(\d+)\] from .*? in process (\d+)", log)
    }
    folded = re.findall(r"streams: (\w+) is folded in process (\d+)", log)
    assert len(folded) == len(dict(folded)), folded  # each symbol's state made once, in one process
    return readers, {symbol: int(pid) for symbol, pid in folded}


def test_streams_run_when_two_processes_and_two_partitions_then_exact_rows_of_one_process(
    topics: Settings, fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streams.ingest.sources import replay_sample

    monkeypatch.setenv("COLUMNS", "400")  # the processes' log lines unwrapped
    # The default layout: one symbol group per process, holding the symbols of the partition it reads.
    settings = partitioned_settings(topics, fresh_database, streams={"close_on_wall_clock": False})
    report = replay_sample(settings)
    assert report.is_clean and report.dead_letters == 0
    ticks, seconds, minutes = sample_windows()
    per_partition = ticks_per_partition(settings)
    # Both partitions hold ticks (keyed by symbol): a process left without one would lose rows below.
    assert len(per_partition) == PARTITIONS and min(per_partition) > 0 and sum(per_partition) == ticks, per_partition
    store = settings.state_path / "data" / "streams" / "recovery"

    with flow_process(settings, "--processes", str(PARTITIONS), "--stop-at-end") as (flow, started):
        _, errors = flow.communicate(timeout=120)
    assert flow.returncode == 0, errors.decode()[-3000:]

    bytewax = [command for command in started.values() if "streams.worker" in command]
    assert sorted(command[command.index("--index") + 1] for command in bytewax) == ["0", "1"], started

    assert worker_counts(store) == [PARTITIONS]  # one execution, by a cluster of two (one worker per process)
    symbols = {path.name.split("_")[0] for path in sample_paths()}
    layout = GroupLayout(PARTITIONS, partitions=PARTITIONS)
    assert (
        group_keys(store) == {layout.key(symbol) for symbol in symbols} == {key_for_worker(0, 2), key_for_worker(1, 2)}
    )
    # No tick crossed between the processes: each symbol was folded where its partition was read.
    readers, folded = where_things_ran(errors.decode())
    partition_of = symbol_partitions(settings)
    assert sorted(readers) == [0, 1] and len(set(readers.values())) == 2, readers
    assert sorted(folded) == sorted(symbols) == sorted(partition_of)
    assert {symbol: readers[partition_of[symbol]] for symbol in symbols} == folded
    client = connect(settings)
    count = row_counter(client)
    assert (count("ticks"), count("bars_1s"), count("bars_1m")) == (ticks, seconds, minutes)
    assert count("features") == seconds + minutes
    assert count("quarantine") == 0
    client.close()


def test_streams_run_when_more_processes_than_partitions_then_refuses_before_starting_any(
    topics: Settings, tmp_path: Path
) -> None:
    # A state dir of this test's own: whatever the command creates there is this run's.
    settings = load_settings(
        state_dir=tmp_path,
        kafka=bus_section(topics),
    )

    with flow_process(settings, "--processes", str(PARTITIONS + 1), "--stop-at-end") as (flow, started):
        _, errors = flow.communicate(timeout=60)

    message = " ".join(errors.decode().split())  # rich wraps lines at the console width
    assert flow.returncode == 1, message
    assert f"{PARTITIONS + 1} streams processes need at least" in message
    assert f"partitions of {topic_name(settings, TICKS)}, which has {PARTITIONS}" in message
    assert "kafka.ticks_partitions" in message
    assert not [command for command in started.values() if "streams.worker" in command]  # none seen (sampled)
    # Race-free: the Bytewax processes start after the recovery store is made, the ready marker after them.
    assert not (settings.state_path / "data" / "streams" / "recovery").exists()
    assert not ready_marker(settings.state_path, "streams").exists()


def test_streams_run_when_killed_with_sigkill_then_no_process_of_it_remains(
    topics: Settings, fresh_database: str
) -> None:
    settings = partitioned_settings(topics, fresh_database)
    marker = ready_marker(settings.state_path, "streams")
    marker.unlink(missing_ok=True)  # another test's run wrote it

    with flow_process(settings, "--processes", str(PARTITIONS)) as (flow, started):  # tails: runs until stopped
        assert flow.stderr is not None
        os.set_blocking(flow.stderr.fileno(), False)  # its orphans would hold the pipe open: never wait on it
        deadline = time.monotonic() + 120
        while not (marker.exists() and clustered(started)):
            assert flow.poll() is None, f"the flow exited early: {(flow.stderr.read() or b'').decode()[-3000:]}"
            assert time.monotonic() < deadline, f"the Bytewax processes never formed their cluster: {started}"
            time.sleep(0.2)
        children = psutil.Process(flow.pid).children(recursive=True)  # the Bytewax processes and the loader
        assert sum("streams.worker" in started.get(child.pid, []) for child in children) == PARTITIONS, started

        flow.kill()
        flow.wait(30)
        _, alive = psutil.wait_procs(children, timeout=10)
        # flow_process kills the survivors on the way out
        assert not alive, f"left running after kill -9 of the command: {[started.get(p.pid) for p in alive]}"


def clustered(started: dict[int, list[str]]) -> bool:
    """Whether every Bytewax process seen has a connection to a peer of its cluster (its flow is running)."""
    bytewax = {pid: command for pid, command in started.items() if "streams.worker" in command}
    if len(bytewax) < PARTITIONS:
        return False
    for pid, command in bytewax.items():
        ports = {int(address.rsplit(":", 1)[1]) for address in command[command.index("--addresses") + 1].split(";")}
        try:
            connections = psutil.Process(pid).net_connections("tcp")
        except psutil.Error:
            return False
        if not any(
            connection.status == psutil.CONN_ESTABLISHED
            and connection.raddr
            and (connection.raddr.port in ports or connection.laddr.port in ports)
            for connection in connections
        ):
            return False
    return True


def test_streams_run_when_one_of_two_processes_is_killed_then_the_cluster_resumes_losing_and_doubling_nothing(
    topics: Settings, fresh_database: str
) -> None:
    # kill -9 of one Bytewax process (not the command): the command takes the cluster down and
    # exits non-zero (the supervisor's cue); the next run resumes both processes from the last
    # snapshot. Counted against the ticks, as the single-process kill test counts.
    settings = partitioned_settings(
        topics, fresh_database, streams={"late_wait_ms": 500, "close_on_wall_clock": False, "snapshot_interval_s": 1}
    )
    client = connect(settings)
    count = row_counter(client)
    ticks = stream(minutes=KILL_MINUTES)
    produce = tick_sender(settings)

    half = len(ticks) // 2
    produce(ticks[:500])
    partition_of = symbol_partitions(settings)
    assert len(partition_of) == 2 and len(set(partition_of.values())) == PARTITIONS

    with flow_process(settings, "--processes", str(PARTITIONS)) as (flow, started):  # tails: runs until stopped
        assert flow.stderr is not None
        os.set_blocking(flow.stderr.fileno(), False)
        for start in range(500, half, 500):  # paced: the cluster snapshots while it reads
            produce(ticks[start : min(start + 500, half)])
            time.sleep(0.25)
        deadline = time.monotonic() + 90
        while count("ticks", "") == 0 or not clustered(started):
            assert flow.poll() is None, f"the flow exited early: {(flow.stderr.read() or b'').decode()[-3000:]}"
            assert time.monotonic() < deadline, "no rows reached the warehouse"
            time.sleep(0.2)
        time.sleep(2.0)  # at least one more snapshot after rows reached the warehouse
        bytewax = {
            command[command.index("--index") + 1]: pid
            for pid, command in started.items()
            if "streams.worker" in command
        }
        os.kill(bytewax["1"], signal.SIGKILL)
        killed_at = time.monotonic()
        flow.wait(60)
        down_s = time.monotonic() - killed_at
    assert flow.returncode != 0  # the whole cluster stopped, and said so
    assert down_s < 30, down_s
    produce(ticks[half:])

    with flow_process(settings, "--processes", str(PARTITIONS), "--stop-at-end") as (second, _):
        _, errors = second.communicate(timeout=300)
    assert second.returncode == 0, errors.decode()[-3000:]

    assert_resumed_exactly(settings, len(ticks), KILL_MINUTES)
    assert worker_counts(settings.state_path / "data" / "streams" / "recovery") == [PARTITIONS, PARTITIONS]
    client.close()
