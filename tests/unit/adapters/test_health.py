"""Health files: written by the service, read by `tickwave status`."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from adapters.endpoints import Endpoint, process_start
from adapters.health import HealthReport, HealthReporter, read_health, write_health
from app.services.probes import _reported
from tickwave.config import load_settings


def test_reporter_when_watched_thread_dies_then_process_taken_down_and_reported(tmp_path: Path) -> None:
    taken_down: list[str] = []
    worker = threading.Thread(target=lambda: None)
    worker.start()
    worker.join()
    reporter = HealthReporter(tmp_path, "svc", lambda: ([], {"done": 3}), interval_s=60, on_death=taken_down.append)
    reporter.watch("the worker", worker.is_alive)

    report = reporter.report()

    assert taken_down == ["the worker"]
    assert report.problems == ["the worker died"] and report.detail == {"done": 3}
    assert read_health(tmp_path, "svc") == report


def test_reporter_when_a_worker_dies_then_the_report_names_it_before_the_process_is_taken_down(
    tmp_path: Path,
) -> None:
    # A process that stops at once when taken down must not leave its last healthy report behind.
    seen_at_death: list[HealthReport | None] = []
    worker = threading.Thread(target=lambda: None)
    worker.start()
    worker.join()
    reporter = HealthReporter(
        tmp_path,
        "svc",
        lambda: ([], {}),
        interval_s=60,
        on_death=lambda _what: seen_at_death.append(read_health(tmp_path, "svc")),
    )
    reporter.watch("the worker", worker.is_alive)

    reporter.report()

    [written] = seen_at_death
    assert written is not None and written.problems == ["the worker died"]


def test_reporter_when_the_report_cannot_be_written_then_a_dead_worker_still_takes_the_process_down(
    tmp_path: Path,
) -> None:
    taken_down: list[str] = []
    (tmp_path / "run").write_text("a file where the run directory goes: the report cannot be written")
    worker = threading.Thread(target=lambda: None)
    worker.start()
    worker.join()
    reporter = HealthReporter(tmp_path, "svc", lambda: ([], {}), interval_s=60, on_death=taken_down.append)
    reporter.watch("the worker", worker.is_alive)

    reporter.start()  # its first report fails to write: logged, not raised
    reporter.stop()

    assert taken_down == ["the worker"]


def test_reporter_when_check_raises_then_degraded_not_dead(tmp_path: Path) -> None:
    def broken() -> tuple[list[str], dict[str, object]]:
        raise RuntimeError("no broker")

    report = HealthReporter(tmp_path, "svc", broken, interval_s=60).report()

    assert report.problems == ["health check failed: no broker"]


def test_status_health_when_ok_degraded_or_silent_then_each_named(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path)
    now = time.time()
    detail = {
        "last_signal_id": "s1",
        "last_signal_decided_at_ms": now * 1000,
        "journal_position": 7,
        "broker": "PaperBroker",
        "is_broker_connected": True,
        "trading_state": "ACTIVE",
    }
    write_health(tmp_path, HealthReport("execution", 1, now, 2.0, [], detail))
    write_health(tmp_path, HealthReport("audit", 1, now, 2.0, ["cannot reach the warehouse"], {"cursor_lag": {}}))
    write_health(tmp_path, HealthReport("streams", 1, now - 30, 2.0, [], {}))

    execution, audit, streams = (_reported(settings, name) for name in ("execution", "audit", "streams"))

    assert execution.is_ok and "journal at 7" in execution.summary and "PaperBroker connected" in execution.summary
    assert audit.state == "degraded" and "cannot reach the warehouse" in audit.summary
    assert streams.state == "stalled" and "30 s ago" in streams.summary


def _broker_at(state_dir: Path, address: str) -> None:
    """A live record of the embedded broker at ``address`` (this test's own process stands in for it)."""
    record = Endpoint("kafka", os.getpid(), process_start(os.getpid()), address, {}, "2026-01-01T00:00:00+00:00", [])
    (state_dir / "run").mkdir(parents=True, exist_ok=True)
    (state_dir / "run" / "kafka.json").write_text(json.dumps(asdict(record)))


def test_reporter_when_the_broker_came_back_elsewhere_then_the_process_is_taken_down_to_follow_it(
    tmp_path: Path,
) -> None:
    settings = load_settings(state_dir=tmp_path)
    deaths: list[str] = []
    reporter = HealthReporter(tmp_path, "audit", lambda: ([], {}), on_death=deaths.append)
    reporter.follow_broker(settings, "127.0.0.1:1111")
    _broker_at(tmp_path, "127.0.0.1:1111")

    assert reporter.report().detail["bus_address"] == "127.0.0.1:1111"
    assert deaths == []

    (tmp_path / "run" / "kafka.json").unlink()  # the broker restarting: its clients wait
    reporter.report()
    assert deaths == []

    _broker_at(tmp_path, "127.0.0.1:2222")  # back, on another port
    reporter.report()
    assert deaths == ["its connection to the broker at 127.0.0.1:1111"]


@pytest.mark.parametrize("service", ["audit", "streams"])
def test_status_health_when_a_loader_uses_a_dead_broker_address_then_degraded_and_named(
    tmp_path: Path, service: str
) -> None:
    settings = load_settings(state_dir=tmp_path)
    _broker_at(tmp_path, "127.0.0.1:2222")
    old = {"bus_address": "127.0.0.1:1111"}
    detail = old if service == "audit" else {"bus_address": "127.0.0.1:2222", "loader": old}
    write_health(tmp_path, HealthReport(service, 1, time.time(), 2.0, [], detail))
    healthy = {"bus_address": "127.0.0.1:2222"} if service == "audit" else {"loader": {"bus_address": "127.0.0.1:2222"}}

    dead = _reported(settings, service)
    write_health(tmp_path, HealthReport(service, 1, time.time(), 2.0, [], healthy))
    live = _reported(settings, service)

    assert dead.state == "degraded" and "127.0.0.1:1111, a dead address" in dead.summary
    assert "127.0.0.1:2222" in dead.summary
    assert live.state == "ok"
