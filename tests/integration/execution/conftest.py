"""Helpers for the execution integration tests: the real process, the real Kafka.

``ExecutionProcess`` runs ``python -m execution`` as a subprocess against the session
broker with the test's topic prefix and its own state dir; the fixture stops (and if
need be kills) every process it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from adapters.bus import make_consumer, make_producer, resolve_bootstrap
from adapters.endpoints import Endpoint
from adapters.signing import channel_key, signed_headers
from adapters.warehouse.client import connect
from adapters.warehouse.credentials import resolve_credentials
from adapters.warehouse.migrate import migrate
from tests.plugins.services import bus_environment
from tickwave.config import Settings
from tickwave.contracts import AnyMessage, Message, Signal, Tick, decode_any, encode
from tickwave.topics import ORDERS_EVENTS, SIGNALS, TICKS, topic_name

ROOT = Path(__file__).resolve().parents[3]


class ExecutionProcess:
    """One ``python -m execution`` subprocess."""

    def __init__(self, env: dict[str, str], log_path: Path, arguments: tuple[str, ...] = ()) -> None:
        self.env = env
        self.log_path = log_path
        self.arguments = arguments
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ExecutionProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "execution", *self.arguments],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill9(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        return self.process.wait(10)

    def stop(self, timeout_s: float = 20.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(10)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Processes:
    """Starts execution processes for one test and stops them all afterwards."""

    def __init__(self, settings: Settings, state_dir: Path, extra_env: dict[str, str]) -> None:
        self.state_dir = state_dir
        self.log_path = state_dir / "execution.log"
        self.env = {
            **{key: value for key, value in os.environ.items() if not key.startswith("TICKWAVE_")},
            **bus_environment(settings),
            "TICKWAVE_STATE_DIR": str(state_dir),
            "TICKWAVE_MARKET_HOURS": "always",
            **extra_env,
        }
        self.started: list[ExecutionProcess] = []

    def start(self, *arguments: str, extra_env: dict[str, str] | None = None) -> ExecutionProcess:
        process = ExecutionProcess({**self.env, **(extra_env or {})}, self.log_path, arguments).start()
        self.started.append(process)
        return process

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop_all(self) -> None:
        for process in self.started:
            if process.alive:
                process.stop(5)


@pytest.fixture
def processes(topics: Settings, tmp_path: Path) -> Iterator[Processes]:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    started = Processes(topics, state_dir, {})
    try:
        yield started
    finally:
        started.stop_all()


class Bus:
    """Produce signals (signed as the dataflow signs them, with the processes' key) and ticks; read the audit trail."""

    def __init__(self, settings: Settings, signing_key: bytes) -> None:
        self.settings = settings
        self.signing_key = signing_key
        self.bootstrap = resolve_bootstrap(settings)
        self.producer = make_producer(self.bootstrap, "latency")
        self.audit: Consumer = make_consumer(self.bootstrap, "test-audit", "latency")
        topic = topic_name(settings, ORDERS_EVENTS)
        partitions = self.audit.list_topics(topic, timeout=10).topics[topic].partitions
        self.audit.assign([TopicPartition(topic, partition, 0) for partition in partitions])
        self.events: list[AnyMessage] = []

    def send(self, message: Signal | Tick, flush: bool = True) -> None:
        value, signal = encode(message), isinstance(message, Signal)
        self.producer.produce(
            topic_name(self.settings, SIGNALS if signal else TICKS),
            key=message.symbol.encode(),
            value=value,
            headers=signed_headers(self.signing_key, value) if signal else None,
        )
        if flush:
            self.producer.flush(10)

    def drain(self, timeout_s: float = 0.2) -> list[AnyMessage]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for message in self.audit.consume(500, 0.05):
                if message.error() is None:
                    self.events.append(decode_any(message.value()))
        return self.events

    def wait_for(self, predicate: Any, timeout_s: float, what: str) -> list[AnyMessage]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.drain(0.05)
            if predicate(self.events):
                return self.events
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")

    def of_type(self, kind: type[Message]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]

    def close(self) -> None:
        self.audit.close()


@pytest.fixture
def bus(topics: Settings, processes: Processes) -> Iterator[Bus]:
    opened = Bus(topics, channel_key(processes.state_dir, "signals"))
    try:
        yield opened
    finally:
        opened.close()


def make_signal(
    index: int, now_ms: int, direction: str = "long", strength: float = 0.5, symbol: str = "EURUSD"
) -> Signal:
    return Signal(
        signal_id=Signal.make_id("it", 1, symbol, "1m", index),
        symbol=symbol,
        timeframe="1m",
        bar_start_ms=index,
        direction=direction,
        strength=strength,
        confidence=0.9,
        model_id="it",
        model_version=1,  # type: ignore[arg-type]
        created_at_ms=now_ms,
    )


def make_tick(now_ms: int, mid: float = 1.1, symbol: str = "EURUSD", seq: int = 0) -> Tick:
    return Tick(symbol=symbol, time_ms=now_ms, seq=seq, bid=round(mid - 0.00005, 6), ask=round(mid + 0.00005, 6))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def warehouse_database(warehouse_settings: Settings) -> Iterator[str]:
    """A migrated database of this test's own: its checks count every order and fill in it."""
    database = f"audit_{uuid.uuid4().hex[:10]}"
    migrate(warehouse_settings, database=database)
    yield database
    admin = connect(warehouse_settings, database="default")
    try:
        admin.command(f"DROP DATABASE IF EXISTS {database} SYNC")
    finally:
        admin.close()


@pytest.fixture
def warehouse_env(
    warehouse_settings: Settings, warehouse_endpoint: Endpoint, warehouse_database: str
) -> dict[str, str]:
    """Environment that points a subprocess at the session warehouse and this test's database."""
    credentials = resolve_credentials(warehouse_settings)
    return {
        "TICKWAVE_CLICKHOUSE_URL": f"http://{warehouse_endpoint.address}",
        "TICKWAVE_CLICKHOUSE_DATABASE": warehouse_database,
        "TICKWAVE_CLICKHOUSE_PASSWORD": credentials.password.get_secret_value(),
        "TICKWAVE_CLICKHOUSE_ANALYST_PASSWORD": credentials.analyst_password.get_secret_value(),
    }
