"""Service logs are rolled by size, a few generations kept, under a live service that keeps writing."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.endpoints import Endpoint
from app.services.logroll import roll, roll_logs
from app.services.supervisor import Supervisor
from app.services.watchdog import Watchdog
from tests.unit.app.test_supervisor import HttpServerService
from tickwave.config import load_settings
from tickwave.config.retention import SERVICE_LOG_GENERATIONS as GENERATIONS

MIB = 1 << 20


def test_roll_when_under_the_size_then_untouched(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_bytes(b"a" * 100)

    assert roll(log, 101) is False
    assert log.read_bytes() == b"a" * 100
    assert roll(tmp_path / "missing.log", 1) is False


def test_roll_when_rolled_more_times_than_kept_then_generations_shift_and_the_oldest_goes(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    for index in range(GENERATIONS + 2):
        log.write_bytes(f"generation {index}\n".encode())
        assert roll(log, 1) is True
        assert log.read_bytes() == b""

    kept = sorted(path.name for path in tmp_path.iterdir())
    assert kept == ["x.log", *(f"x.log.{index}" for index in range(1, GENERATIONS + 1))]
    newest_first = [(tmp_path / f"x.log.{index}").read_text() for index in range(1, GENERATIONS + 1)]
    assert newest_first == [f"generation {GENERATIONS + 1 - index}\n" for index in range(GENERATIONS)]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Supervisor, Watchdog, Endpoint]]:
    settings = load_settings(state_dir=tmp_path / "state", retention={"service_log_mb": 1})
    supervisor, service = Supervisor(settings), HttpServerService(settings)
    endpoint = supervisor.start(service)
    assert isinstance(endpoint, Endpoint)
    try:
        yield supervisor, Watchdog(settings, [service]), endpoint
    finally:
        supervisor.stop(service)


def test_watchdog_when_a_live_services_log_passes_its_size_then_rolled_and_the_service_writes_on_from_zero(
    running: tuple[Supervisor, Watchdog, Endpoint],
) -> None:
    supervisor, watchdog, endpoint = running
    log = supervisor.log_path("web")
    with log.open("ab") as filler:  # as if the service had written it
        filler.write(b"old line\n" * (MIB // 9 + 1))

    watchdog.sample_resources(0.0)
    with urllib.request.urlopen(endpoint.address, timeout=5) as response:  # the server logs the request to stderr
        assert response.status == 200

    rolled = log.with_name("web.log.1").read_bytes()
    assert rolled.count(b"old line\n") == MIB // 9 + 1
    fresh = log.read_bytes()
    # The service's descriptor appends: its next line starts the emptied file (no hole of zeros before it).
    assert fresh.startswith(b"127.0.0.1 - - [") and b"GET / HTTP/1.1" in fresh
    assert len(fresh) < 1024


def test_roll_logs_when_a_copy_cannot_be_made_then_the_log_and_its_generations_stay_and_others_roll(
    tmp_path: Path,
) -> None:
    stuck, other = tmp_path / "stuck.log", tmp_path / "other.log"
    stuck.write_bytes(b"current\n")
    (tmp_path / "stuck.log.1").write_bytes(b"older\n")
    (tmp_path / "stuck.log.rolling").mkdir()  # the copy's place is taken: opening it fails, as a full disk would
    other.write_bytes(b"other\n")

    rolled = roll_logs(tmp_path, 1)

    assert rolled == ["other.log"]
    assert stuck.read_bytes() == b"current\n"
    assert (tmp_path / "stuck.log.1").read_bytes() == b"older\n"
    assert not (tmp_path / "stuck.log.2").exists()
