"""The dataflow's honest health: hourly bars reach the warehouse, and a dead loader stops the flow.

With ``["1m", "1h"]`` every 1 h bar must reach its table rather than kill the loader while
the flow runs on and ``tickwave status`` says up: every configurable timeframe has a table,
the flow writes ``run/streams.health.json`` (last epoch, partitions, the loader's last
insert) and the loader's death takes the flow down with a non-zero exit.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from adapters.bus import make_producer, resolve_bootstrap
from adapters.health import read_health
from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from tests.plugins.services import bus_section
from tests.unit.streams.test_flow import T0
from tickwave.config import Settings, load_settings, to_environment
from tickwave.contracts import Tick, encode
from tickwave.topics import TICKS, topic_name

ROOT = Path(__file__).resolve().parents[3]


def _wait_for(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _loader_inserted(settings: Settings) -> bool:
    report = read_health(settings.state_path, "streams")
    return report is not None and bool((report.detail.get("loader") or {}).get("last_insert_at"))


def test_streams_when_hourly_bars_configured_then_stored_and_a_dead_loader_stops_the_flow(
    topics: Settings, fresh_database: str, warehouse_endpoint: object
) -> None:
    settings = load_settings(
        state_dir=topics.state_dir,
        kafka=bus_section(topics),
        clickhouse={"database": fresh_database},
        streams={"timeframes": ["1m", "1h"], "late_wait_ms": 0, "close_on_wall_clock": False, "snapshot_interval_s": 1},
    )
    migrate(settings)
    shutil.rmtree(settings.state_path / "data" / "streams" / "recovery", ignore_errors=True)
    for name in ("streams", "streams-loader"):
        (settings.state_path / "run" / f"{name}.health.json").unlink(missing_ok=True)
    producer = make_producer(resolve_bootstrap(settings))
    topic = topic_name(settings, TICKS)
    for index in range(62 * 3):  # 62 minutes, three ticks a minute: at least one hour closes
        tick = Tick(symbol="EURUSD", time_ms=T0 + index * 20_000, seq=0, bid=1.1, ask=1.1002, volume=1.0)
        producer.produce(topic, encode(tick), key=b"EURUSD")
    assert producer.flush(30) == 0
    client = connect(settings)
    flow = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "streams", "run"],
        cwd=ROOT,
        env={**os.environ, **to_environment(settings)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(lambda: client.command("SELECT count() FROM bars_1h FINAL") >= 1, 90, "a 1 h bar in bars_1h")
        _wait_for(lambda: _loader_inserted(settings), 30, "the flow's health showing the loader's last insert")
        healthy = read_health(settings.state_path, "streams")
        loader = next(child for child in psutil.Process(flow.pid).children() if "load" in child.cmdline())

        loader.send_signal(signal.SIGKILL)
        code = flow.wait(60)
    finally:
        if flow.poll() is None:
            flow.kill()
            flow.wait(30)
        client.close()

    assert healthy is not None and healthy.is_healthy, healthy
    assert healthy.detail["loader"]["rows_loaded"] > 0 and healthy.detail["loader"]["last_insert_at"] > 0
    assert code != 0
    after = read_health(settings.state_path, "streams")
    assert after is not None and "the streams loader died" in after.problems
