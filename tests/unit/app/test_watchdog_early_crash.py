"""The watcher restarts a service that should run whatever the moment its process died.

A real (tiny) server process; the watcher's rounds are driven by hand with the time given.
The hard moment: the process dies before the watcher's first look, and
something else (here `tickwave status`) removes its stale record first.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.endpoints import LOOPBACK, Endpoint, free_port, process_matches, process_start
from app.services.supervisor import Launch, Supervisor
from app.services.watchdog import Watchdog, gave_up_path, read_gave_up
from tests.unit.app.test_supervisor import HttpServerService
from tickwave.config import Settings, load_settings

Rig = tuple[Supervisor, HttpServerService, Watchdog]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        state_dir=tmp_path / "state",
        supervision={"backoff_initial_s": 2.0, "max_restarts": 2, "window_s": 300.0},
    )  # no warehouse: the events wait in memory


@pytest.fixture
def rig(settings: Settings) -> Iterator[Rig]:
    """A supervisor, the service and a watcher that has not looked yet; the service is stopped afterwards."""
    supervisor, service = Supervisor(settings), HttpServerService(settings)
    yield supervisor, service, Watchdog(settings, [service])
    supervisor.stop(service)


def kill(endpoint: Endpoint | str) -> int:
    assert isinstance(endpoint, Endpoint)
    os.kill(endpoint.pid, signal.SIGKILL)
    os.waitpid(endpoint.pid, 0)  # our child here: reaped, so the pid is gone at once
    return endpoint.pid


def test_watchdog_when_killed_before_its_first_round_and_record_removed_then_restarted_after_backoff(rig: Rig) -> None:
    supervisor, service, watchdog = rig
    killed = kill(supervisor.start(service))
    assert supervisor.status(service).state == "stale"  # `tickwave status` removed the record first

    watchdog.step(100.0)
    assert supervisor.endpoint(service.name) is None  # not yet: the backoff (2 s) runs
    watchdog.step(101.9)
    assert supervisor.endpoint(service.name) is None
    watchdog.step(102.0)

    restarted = supervisor.endpoint(service.name)
    assert restarted is not None and restarted.pid != killed
    events = [(row["event"], row["pid"]) for row in watchdog.events.pending]
    assert events == [("crashed", 0), ("restarted", restarted.pid)]


def test_watchdog_when_killed_before_its_first_round_then_crash_pid_from_the_stale_record(rig: Rig) -> None:
    supervisor, service, watchdog = rig
    killed = kill(supervisor.start(service))

    watchdog.step(0.0)
    watchdog.step(2.0)

    assert next((row["event"], row["pid"]) for row in watchdog.events.pending) == ("crashed", killed)
    assert supervisor.endpoint(service.name) is not None


def test_watchdog_when_crashing_at_every_start_then_gives_up_with_its_reason(rig: Rig, settings: Settings) -> None:
    supervisor, service, watchdog = rig
    kill(supervisor.start(service))
    now = 0.0
    for delay in (2.0, 4.0):  # max_restarts = 2: two restarts, each killed before the next round
        watchdog.step(now)
        now += delay
        watchdog.step(now)
        restarted = supervisor.endpoint(service.name)
        assert restarted is not None
        kill(restarted)

    watchdog.step(now + 1.0)

    assert supervisor.endpoint(service.name) is None
    reason = read_gave_up(settings.state_path, service.name)
    assert reason is not None and "crash loop: 2 restarts within 300 s" in reason
    assert [row["event"] for row in watchdog.events.pending][-2:] == ["crashed", "gave_up"]


def test_watchdog_when_up_starts_a_service_it_gave_up_on_then_watched_again(rig: Rig, settings: Settings) -> None:
    supervisor, service, watchdog = rig
    gave_up = gave_up_path(settings.state_path, service.name)
    watchdog.watched[service.name].gave_up = "crash loop"
    gave_up.parent.mkdir(parents=True)
    gave_up.write_text('{"reason": "crash loop"}')
    watchdog.step(0.0)
    gave_up.unlink()  # what `tickwave up` does before starting it
    killed = kill(supervisor.start(service))

    watchdog.step(1.0)
    watchdog.step(3.0)

    restarted = supervisor.endpoint(service.name)
    assert restarted is not None and restarted.pid != killed
    assert watchdog.watched[service.name].gave_up is None


def test_watchdog_when_service_stopped_by_down_then_not_restarted(rig: Rig) -> None:
    supervisor, service, watchdog = rig
    endpoint = supervisor.start(service)
    assert isinstance(endpoint, Endpoint)
    watchdog.step(0.0)  # seen running

    supervisor.stop(service)
    for now in (1.0, 10.0, 100.0):
        watchdog.step(now)

    assert supervisor.endpoint(service.name) is None
    assert not process_matches(endpoint.pid, endpoint.started_after_boot_s)
    assert watchdog.events.pending == []


def test_watchdog_when_a_start_is_in_progress_then_left_alone(settings: Settings) -> None:
    # No `rig`: the pid file below names this test's own process, which stop() must never signal.
    supervisor, service = Supervisor(settings), HttpServerService(settings)
    watchdog = Watchdog(settings, [service])
    supervisor.run_dir.mkdir(parents=True)
    (supervisor.run_dir / f"{service.name}.wanted").touch()
    started_at = process_start(os.getpid())
    (supervisor.run_dir / f"{service.name}.pid").write_text(f"{os.getpid()} {started_at}\n")  # a live start

    watchdog.step(0.0)
    watchdog.step(100.0)

    assert watchdog.events.pending == []


class QuorumMember(HttpServerService):
    """A member of a quorum of three stand-ins: ready only while a majority of them answer (as Kafka's nodes)."""

    quorum = "trio"

    def __init__(self, settings: Settings, number: int, ports: list[int]) -> None:
        super().__init__(settings)
        self.name, self.number, self.ports = f"member-{number}", number, ports

    @property
    def start_timeout_s(self) -> float:
        return 3.0

    def launch(self, data_dir: Path) -> Launch:
        launch = super().launch(data_dir)
        port = self.ports[self.number]
        command = [*launch.command[:-1], launch.command[-1].replace(str(launch.ports["http"]), str(port))]
        return Launch(command=command, address=f"http://{LOOPBACK}:{port}", ports={"http": port})

    def probe(self, address: str) -> bool:
        answering = [super(QuorumMember, self).probe(f"http://{LOOPBACK}:{port}") for port in self.ports]
        return super().probe(address) and sum(answering) >= 2


def test_watchdog_when_every_member_of_a_quorum_killed_then_restarts_them_together(settings: Settings) -> None:
    # Arrange: three members up, then all killed
    ports = [free_port() for _ in range(3)]
    members = [QuorumMember(settings, number, ports) for number in range(3)]
    supervisor, watchdog = Supervisor(settings), Watchdog(settings, list(members))
    try:
        for endpoint in supervisor.start_together(members):
            kill(endpoint)

        # Act
        watchdog.step(0.0)
        watchdog.step(2.0)

        # Assert: one at a time, the first would never have been ready
        assert all(supervisor.endpoint(member.name) is not None for member in members)
        events = [(row["service"], row["event"]) for row in watchdog.events.pending]
        assert [event for event in events if event[1] != "crashed"] == [
            (member.name, "restarted") for member in members
        ]
    finally:
        supervisor.stop_together(members)
