"""The supervisor's lifecycle rules, exercised with a real (tiny) server process."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from adapters.endpoints import LOOPBACK, Endpoint, free_port
from app.services.supervisor import Launch, ManagedService, Supervisor, ensure_port_free
from tickwave.config import Settings, load_settings
from tickwave.errors import ServiceError


class HttpServerService(ManagedService):
    """Python's http.server as a stand-in service process (a real process, not a mock)."""

    name = "web"
    stop_timeout_s = 5.0

    def __init__(self, settings: Settings, ignore_sigterm: bool = False, crash: bool = False) -> None:
        super().__init__(settings)
        self.ignore_sigterm = ignore_sigterm
        self.crash = crash

    @property
    def external_address(self) -> str | None:
        return None

    @property
    def start_timeout_s(self) -> float:
        return 10.0

    def launch(self, data_dir: Path) -> Launch:
        port = free_port()
        if self.crash:
            code = "import sys; print('boom: bad config'); sys.exit(3)"
        else:
            code = (
                "import signal, http.server, functools;"
                + ("signal.signal(signal.SIGTERM, signal.SIG_IGN);" if self.ignore_sigterm else "")
                + f"http.server.ThreadingHTTPServer(('{LOOPBACK}', {port}), "
                + f"functools.partial(http.server.SimpleHTTPRequestHandler, directory='{data_dir}')).serve_forever()"
            )
        return Launch(command=[sys.executable, "-c", code], address=f"http://{LOOPBACK}:{port}", ports={"http": port})

    def probe(self, address: str) -> bool:
        try:
            with urllib.request.urlopen(address, timeout=1):
                return True
        except OSError:
            return False


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(state_dir=tmp_path / "state")


def test_start_when_not_running_then_ready_and_recorded(settings: Settings) -> None:
    supervisor, service = Supervisor(settings), HttpServerService(settings)
    try:
        endpoint = supervisor.start(service)

        assert isinstance(endpoint, Endpoint)
        assert supervisor.status(service).state == "up"
        record = json.loads((settings.state_path / "run" / "web.json").read_text())
        assert record["pid"] == endpoint.pid
        assert (settings.state_path / "logs" / "web.log").exists()
    finally:
        supervisor.stop(service)


def test_start_when_already_running_then_same_process(settings: Settings) -> None:
    supervisor, service = Supervisor(settings), HttpServerService(settings)
    try:
        first = supervisor.start(service)
        second = supervisor.start(service)

        assert isinstance(first, Endpoint) and isinstance(second, Endpoint)
        assert second.pid == first.pid
    finally:
        supervisor.stop(service)


def test_stop_when_running_then_process_gone_and_record_removed(settings: Settings) -> None:
    supervisor, service = Supervisor(settings), HttpServerService(settings)
    endpoint = supervisor.start(service)
    assert isinstance(endpoint, Endpoint)

    assert supervisor.stop(service) is True

    assert not psutil.pid_exists(endpoint.pid) or psutil.Process(endpoint.pid).status() == psutil.STATUS_ZOMBIE
    assert supervisor.status(service).state == "down"
    assert not (settings.state_path / "run" / "web.json").exists()
    assert supervisor.stop(service) is False


def test_stop_when_sigterm_ignored_then_killed_after_timeout(settings: Settings) -> None:
    supervisor, service = Supervisor(settings), HttpServerService(settings, ignore_sigterm=True)
    endpoint = supervisor.start(service)
    assert isinstance(endpoint, Endpoint)
    started = time.monotonic()

    assert supervisor.stop(service) is True

    assert time.monotonic() - started >= service.stop_timeout_s
    assert supervisor.status(service).state == "down"


def test_stop_when_the_launcher_ignores_sigterm_then_the_service_still_stops_on_it(settings: Settings) -> None:
    # An ignored signal survives exec: a launcher ignoring SIGTERM (an xdist worker after Dagster mapped SIGTERM
    # to its ignored SIGINT, a script's background job) must still start services that SIGTERM stops.
    supervisor, service = Supervisor(settings), HttpServerService(settings)
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        endpoint = supervisor.start(service)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert isinstance(endpoint, Endpoint)
    ignored = int(Path(f"/proc/{endpoint.pid}/status").read_text().split("SigIgn:")[1].split()[0], 16)
    started = time.monotonic()

    assert supervisor.stop(service) is True

    assert not ignored & (1 << (signal.SIGTERM - 1)), f"the service ignores SIGTERM (SigIgn {ignored:#x})"
    assert time.monotonic() - started < service.stop_timeout_s  # stopped by SIGTERM, not killed at the timeout


def test_status_when_process_died_then_stale_record_detected_and_removed(settings: Settings) -> None:
    supervisor, service = Supervisor(settings), HttpServerService(settings)
    endpoint = supervisor.start(service)
    assert isinstance(endpoint, Endpoint)
    os.kill(endpoint.pid, signal.SIGKILL)
    time.sleep(0.2)

    assert supervisor.status(service).state == "stale"
    assert supervisor.status(service).state == "down"
    restarted = supervisor.start(service)
    try:
        assert isinstance(restarted, Endpoint) and restarted.pid != endpoint.pid
    finally:
        supervisor.stop(service)


def test_endpoint_when_pid_reused_by_another_process_then_not_trusted(settings: Settings) -> None:
    supervisor = Supervisor(settings)
    supervisor.run_dir.mkdir(parents=True)
    foreign = Endpoint("web", os.getpid(), 12345.0, "http://x", {}, "2026-01-01T00:00:00+00:00", [])
    (supervisor.run_dir / "web.json").write_text(json.dumps(foreign.__dict__))

    assert supervisor.endpoint("web") is None  # our pid, but a different start time


def test_endpoint_when_wall_clock_boot_time_moves_then_live_service_still_trusted(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # /proc/stat's btime is recomputed from the wall clock on every read: an adjusted clock moves it
    # by whole seconds, and with it psutil's create_time() of every process. A running service's
    # record must not be taken for stale (and removed) because of it.
    supervisor, service = Supervisor(settings), HttpServerService(settings)
    endpoint = supervisor.start(service)
    try:
        assert isinstance(endpoint, Endpoint)
        moved = psutil.boot_time() + 1.0
        monkeypatch.setattr(psutil, "boot_time", lambda: moved)
        monkeypatch.setattr(psutil._pslinux, "boot_time", lambda: moved)

        assert supervisor.endpoint(service.name) == endpoint
        assert supervisor.status(service).state == "up"
    finally:
        monkeypatch.undo()
        supervisor.stop(service)


def test_start_when_process_exits_early_then_error_with_log_tail(settings: Settings) -> None:
    supervisor, service = Supervisor(settings), HttpServerService(settings, crash=True)

    with pytest.raises(ServiceError, match=r"exited with code 3(.|\n)*boom: bad config"):
        supervisor.start(service)

    assert supervisor.status(service).state == "down"


def test_ensure_port_free_when_port_taken_then_error_names_port_owner_and_fix() -> None:
    with socket.socket() as holder:
        holder.bind((LOOPBACK, 0))
        holder.listen()
        port = holder.getsockname()[1]

        with pytest.raises(ServiceError, match=rf"port 127\.0\.0\.1:{port} is in use.*TICKWAVE_KAFKA_PORT"):
            ensure_port_free(port, "kafka", "TICKWAVE_KAFKA_PORT")


@pytest.mark.parametrize(("operator_value", "expected"), [(None, "2"), ("4", "4")])
def test_start_when_service_launched_then_two_malloc_arenas_unless_operator_sets_them(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, operator_value: str | None, expected: str
) -> None:
    if operator_value is None:
        monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    else:
        monkeypatch.setenv("MALLOC_ARENA_MAX", operator_value)
    supervisor, service = Supervisor(settings), HttpServerService(settings)
    try:
        endpoint = supervisor.start(service)
        assert isinstance(endpoint, Endpoint)

        assert psutil.Process(endpoint.pid).environ().get("MALLOC_ARENA_MAX") == expected
    finally:
        supervisor.stop(service)


class LeaderWithStubbornChild(HttpServerService):
    """A server whose child ignores SIGTERM, in the server's process group (as the flow's loader is in the flow's)."""

    def launch(self, data_dir: Path) -> Launch:
        launch = super().launch(data_dir)
        child = (
            "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            f"open({str(data_dir / 'child.pid')!r}, 'w').write(str(os.getpid())); time.sleep(600)"
        )
        code = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {child!r}]); " + launch.command[-1]
        return Launch(command=[sys.executable, "-c", code], address=launch.address, ports=launch.ports)


def test_stop_when_the_leader_died_and_left_a_child_ignoring_sigterm_then_the_child_is_stopped_in_bounded_time(
    settings: Settings,
) -> None:
    supervisor, service = Supervisor(settings), LeaderWithStubbornChild(settings)
    endpoint = supervisor.start(service)
    assert isinstance(endpoint, Endpoint)
    child_pid_file = supervisor.data_dir(service) / "child.pid"
    deadline = time.monotonic() + 10
    while not child_pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = psutil.Process(int(child_pid_file.read_text()))
    try:
        os.kill(endpoint.pid, signal.SIGKILL)  # the leader dies; its child is orphaned, still in the group
        psutil.Process(endpoint.pid).wait(5)
        assert supervisor.status(service).state == "stale"  # `status` removed the dead record first
        started = time.monotonic()

        assert supervisor.stop(service) is True

        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, "the orphaned child survived down"
        assert time.monotonic() - started < service.stop_timeout_s + 5
    finally:
        if child.is_running():
            child.kill()


def test_start_when_the_launcher_runs_under_umask_022_then_the_service_and_its_log_are_the_owners_only(
    settings: Settings,
) -> None:
    supervisor, service = Supervisor(settings), HttpServerService(settings)
    before = os.umask(0o022)
    try:
        endpoint = supervisor.start(service)
        assert isinstance(endpoint, Endpoint)
        umask = next(line for line in Path(f"/proc/{endpoint.pid}/status").read_text().splitlines() if "Umask" in line)

        assert umask.split()[1] == "0077"
        assert (settings.state_path / "logs" / "web.log").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(before)
        supervisor.stop(service)
