"""`tickwave streams run` killed with SIGKILL mid-stream, then restarted: nothing lost, nothing doubled.

The real service process, the real Kafka and warehouse: ticks are produced while the
flow runs, the process is killed with kill -9 once snapshots have been taken and rows
have reached the warehouse, the rest of the ticks are produced, and a second run
resumes from the recovery store and drains the topic. Query results (``FINAL``) must
equal an uninterrupted run's exact counts.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from clickhouse_connect.driver.client import Client

from adapters.bus import make_producer, resolve_bootstrap
from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from tests.plugins.services import bus_section
from tests.unit.streams.test_flow import stream
from tickwave.config import Settings, load_settings, to_environment
from tickwave.contracts import Tick, encode
from tickwave.topics import TICKS, topic_name

MINUTES = 12
ROOT = Path(__file__).resolve().parents[3]


def start_flow(settings: Settings, *arguments: str) -> subprocess.Popen[bytes]:
    environment = {**os.environ, **to_environment(settings)}
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "streams", "run", *arguments],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def tick_sender(settings: Settings) -> Callable[[Sequence[Tick]], None]:
    """Return a function that sends ticks to the ticks topic, keyed by symbol, each batch flushed."""
    producer = make_producer(resolve_bootstrap(settings))
    topic = topic_name(settings, TICKS)

    def produce(batch: Sequence[Tick]) -> None:
        for tick in batch:
            producer.produce(topic, encode(tick), key=tick.symbol.encode())
        assert producer.flush(30) == 0

    return produce


def row_counter(client: Client) -> Callable[..., int]:
    """Return ``count(table, final="FINAL")``: the rows of ``table`` (deduplicated unless ``final`` is "")."""
    return lambda table, final="FINAL": int(client.query(f"SELECT count() FROM {table} {final}").result_rows[0][0])


def resumable_flow_settings(topics: Settings, database: str) -> Settings:
    """Return settings for a flow snapshotting every second, on a migrated ``database``, with no recovery state."""
    settings = load_settings(
        state_dir=topics.state_dir,
        kafka=bus_section(topics),
        clickhouse={"database": database},
        streams={"late_wait_ms": 500, "close_on_wall_clock": False, "snapshot_interval_s": 1},
    )
    migrate(settings)
    shutil.rmtree(settings.state_path / "data" / "streams" / "recovery", ignore_errors=True)
    return settings


def test_streams_service_when_killed_mid_stream_then_restart_loses_and_doubles_nothing(
    topics: Settings, fresh_database: str, warehouse_endpoint: object
) -> None:
    settings = resumable_flow_settings(topics, fresh_database)
    client = connect(settings)
    count = row_counter(client)
    ticks = stream(minutes=MINUTES)
    produce = tick_sender(settings)

    first = start_flow(settings)
    try:
        half = len(ticks) // 2
        for start in range(0, half, 500):  # paced: the flow snapshots while it reads
            produce(ticks[start : min(start + 500, half)])
            time.sleep(0.25)
        deadline = time.monotonic() + 60
        while count("ticks", "") == 0 and time.monotonic() < deadline:
            assert first.poll() is None, f"the flow exited early: {first.stderr.read().decode()[-2000:]}"  # type: ignore[union-attr]
            time.sleep(0.2)
        time.sleep(1.5)  # at least one more snapshot after rows reached the warehouse
        stored_before_kill = count("ticks", "")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(30)
    assert 0 < stored_before_kill < len(ticks)
    produce(ticks[half:])

    second = start_flow(settings, "--stop-at-end")
    _, errors = second.communicate(timeout=300)
    assert second.returncode == 0, errors.decode()[-3000:]

    assert_resumed_exactly(settings, len(ticks), MINUTES)
    client.close()


def assert_resumed_exactly(settings: Settings, ticks: int, minutes: int) -> None:
    """Assert that two symbols' ``minutes`` of ticks (four a second) made every row once, after a resume.

    Every bar holds all of its ticks (none lost, none counted twice), nothing was quarantined,
    and the second execution resumed from a committed snapshot, not from the start (epoch 1).
    """
    client = connect(settings)
    count = row_counter(client)
    symbols = 2
    assert count("ticks") == ticks
    assert count("bars_1s") == symbols * minutes * 60
    assert count("bars_1m") == symbols * minutes
    assert client.query("SELECT min(tick_count), max(tick_count) FROM bars_1m FINAL").result_rows == [(240, 240)]
    assert count("features") == symbols * (minutes * 60 + minutes)
    assert count("quarantine") == 0
    epochs = resume_epochs(settings.state_path / "data" / "streams" / "recovery")
    assert epochs[0] == 1 and epochs[1] > 1, epochs
    client.close()


def resume_epochs(store: Path) -> dict[int, int]:
    """Execution number -> the epoch it resumed from, as Bytewax's SQLite recovery store records them."""
    epochs: dict[int, int] = {}
    for path in store.glob("*.sqlite3"):
        with sqlite3.connect(path) as db:
            epochs.update({number: epoch for number, epoch in db.execute("SELECT ex_num, resume_epoch FROM exs")})
    return epochs
