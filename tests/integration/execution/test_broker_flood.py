"""A broker of its own, flooded with idle connections and restarted under the execution process and ingest.

Any local account may open connections to the broker's port. 20,000 idle ones (the red-team
figure; about the JVM's file limit on these machines) must leave the broker, the execution
process and ingest running, with every tick ingest handed over stored; a broker that stops and
comes back must find the execution process waiting for it at the same address, not crashed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from adapters.bus import make_consumer, resolve_admin
from adapters.bus_credentials import ADMIN
from adapters.endpoints import Endpoint
from adapters.signing import channel_key
from app.services.kafka import KafkaService
from app.services.supervisor import Supervisor
from bench.broker_flood import flood
from tests.integration.execution.conftest import ROOT, Bus, Processes, make_signal, now_ms
from tickwave.config import Settings, load_settings
from tickwave.contracts import OrderDenied, OrderSubmitted
from tickwave.topics import TICKS, topic_name

FLOOD_CONNECTIONS = 20_000


class OwnBroker:
    """One embedded broker in a state dir of its own, free ports picked once and kept."""

    def __init__(self, state_dir: Path) -> None:
        self.settings = load_settings(state_dir=state_dir, kafka={"port": 0, "controller_port": 0})
        self.supervisor = Supervisor(self.settings)
        self.service = KafkaService(self.settings)

    def start(self) -> Endpoint:
        started = self.supervisor.start(self.service)
        assert isinstance(started, Endpoint)
        self.service.after_start()  # topics and ACLs, as `tickwave up` makes them
        return started

    def stop(self) -> None:
        self.supervisor.stop(self.service)

    def client_settings(self, address: str) -> Settings:
        """The super user's settings at ``address``, as the session fixtures give them."""
        return load_settings(
            state_dir=self.settings.state_path,
            kafka={
                "bootstrap": address,
                "username": ADMIN,
                "credentials_dir": str(self.settings.state_path / "secrets" / "kafka"),
            },
        )

    def log(self) -> str:
        return self.supervisor.log_path(self.service.name).read_text(errors="replace")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[OwnBroker]:
    own = OwnBroker(tmp_path / "broker-state")
    try:
        yield own
    finally:
        own.stop()


def _decided(signal_ids: set[str]):  # type: ignore[no-untyped-def]
    def check(events: list[object]) -> bool:
        return signal_ids <= {e.signal_id for e in events if isinstance(e, OrderSubmitted | OrderDenied)}

    return check


def _ticks_stored(settings: Settings) -> int:
    consumer = make_consumer(resolve_admin(settings), "test-count")
    try:
        topic = topic_name(settings, TICKS)
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
    finally:
        consumer.close()


def _open_files(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except FileNotFoundError:  # the broker is gone
        return 0


def _file_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no file limit")


def _start_ingest(env: dict[str, str], log_path: Path, duration_s: int) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "ingest",
                "--source",
                "sim",
                "--rate",
                "200",
                "--duration",
                f"{duration_s}s",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def test_broker_when_twenty_thousand_idle_connections_then_broker_execution_and_ingest_run_on_with_nothing_lost(
    broker: OwnBroker, tmp_path: Path
) -> None:
    endpoint = broker.start()
    settings = broker.client_settings(endpoint.address)
    processes = Processes(settings, tmp_path / "execution-state", {})
    (tmp_path / "execution-state").mkdir()
    bus = Bus(settings, channel_key(processes.state_dir, "signals"))
    execution = processes.start()
    ingest_log = tmp_path / "ingest.log"
    ingest = _start_ingest(processes.env, ingest_log, duration_s=60)
    try:
        before = [make_signal(i, now_ms(), ("long", "short")[i % 2], 0.5) for i in range(3)]
        for signal in before:
            bus.send(signal)
        bus.wait_for(_decided({s.signal_id for s in before}), 60, "decisions before the flood")

        limit = _file_limit(endpoint.pid)
        with flood(endpoint.address, FLOOD_CONNECTIONS) as counts:
            # Past the flood's last connection (~16 s), the broker's checkpoints (5 s) and its idle timeout (30 s).
            peak_files = 0
            for _ in range(45):
                peak_files = max(peak_files, _open_files(endpoint.pid))
                time.sleep(1)
            assert peak_files < limit // 2, f"the broker held {peak_files} files of its {limit} under the flood"
            during = [make_signal(10 + i, now_ms(), ("long", "short")[i % 2], 0.5) for i in range(3)]
            for signal in during:
                bus.send(signal)
            bus.wait_for(_decided({s.signal_id for s in during}), 30, "decisions under the flood")
            assert broker.supervisor.endpoint("kafka") is not None, f"the broker died:\n{broker.log()[-3000:]}"
            assert execution.alive, f"the execution process died:\n{processes.log_tail()}"
        assert counts.attempts >= FLOOD_CONNECTIONS, counts

        assert ingest.wait(120) == 0, f"ingest lost ticks:\n{ingest_log.read_text()[-3000:]}"
        sent = int(re.findall(r"(\d+) ticks, ", ingest_log.read_text())[-1])
        assert sent > 0
        assert _ticks_stored(settings) == sent, "every tick ingest took is on the topic, once"
        assert execution.alive
        assert len(broker.log()) < 2_000_000, "the broker's log stays small under the flood"
    finally:
        if ingest.poll() is None:
            ingest.kill()
        bus.close()
        processes.stop_all()


def test_execution_when_the_broker_stops_and_comes_back_then_it_waits_at_the_same_address_and_decides_on(
    broker: OwnBroker, tmp_path: Path
) -> None:
    endpoint = broker.start()
    settings = broker.client_settings(endpoint.address)
    (tmp_path / "execution-state").mkdir()
    processes = Processes(settings, tmp_path / "execution-state", {})
    execution = processes.start()
    bus = Bus(settings, channel_key(processes.state_dir, "signals"))
    try:
        first = make_signal(0, now_ms(), "long", 0.5)
        bus.send(first)
        bus.wait_for(_decided({first.signal_id}), 60, "a decision before the outage")

        broker.stop()
        time.sleep(25)  # longer than any single transactional call is given
        assert execution.alive, f"the execution process ended during the outage:\n{processes.log_tail()}"
        back = broker.start()
        assert back.address == endpoint.address, "the broker comes back where its clients wait for it"

        after = make_signal(1, now_ms(), "short", 0.5)
        bus.send(after)
        try:
            bus.wait_for(_decided({after.signal_id}), 60, "a decision after the outage")
        except AssertionError as missing:
            raise AssertionError(f"{missing}; the execution process's log ends:\n{processes.log_tail()}") from None
        assert execution.alive
        assert "waiting for the broker" in processes.log_path.read_text()
    finally:
        bus.close()
        processes.stop_all()
