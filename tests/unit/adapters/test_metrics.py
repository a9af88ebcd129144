"""Metrics plumbing: ports kept across restarts, the scrape configuration, the hot histogram, bounded labels."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections import Counter
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import adapters.metrics
from adapters.metrics import (
    HEAD_DEADLINE_S,
    MAX_CONNECTIONS,
    HotHistogram,
    MetricsServer,
    forget_all_metrics,
    metrics_port,
    metrics_served,
    port_path,
    recorded_port,
    scrape_config,
    target_path,
)
from execution.metrics import AuditCounts, ExecutionCollector
from streams.ingest.metrics import REASON_CODES, reason_code
from streams.metrics import DataflowCollector
from tests.sockets import SilentHolders, is_closed_by_server
from tickwave.config import Settings
from tickwave.contracts import Bar, OrderFilled, OrderSubmitted, Signal, Tick

BOUNDS = (0.001, 0.01, 0.1, 1.0)


def test_metrics_port_when_asked_again_then_the_same_until_down(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)

    first = metrics_port(settings, "execution")
    again = metrics_port(settings, "execution")  # a restart: the same port, where Prometheus looks
    target = json.loads(target_path(tmp_path, "execution").read_text())
    recorded = recorded_port(tmp_path, "execution")
    forget_all_metrics(tmp_path)

    assert first == again == recorded
    assert target == [{"targets": [f"127.0.0.1:{first}"], "labels": {"job": "execution"}}]
    assert recorded_port(tmp_path, "execution") is None and not target_path(tmp_path, "execution").exists()


def test_metrics_port_when_configured_then_used_and_process_n_of_the_dataflow_offset() -> None:
    settings = Settings(metrics={"execution_port": 9301, "streams_port": 9400})

    assert settings.metrics.port_of("execution") == 9301
    assert settings.metrics.port_of("streams-2") == 9402
    assert settings.metrics.port_of("streams-loader") == 0


def test_metrics_served_when_the_run_ends_then_the_server_stops_and_its_target_goes(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)

    with metrics_served(settings, "ingest") as port:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            served = response.read().decode()
        assert target_path(tmp_path, "ingest").exists()

    assert "process_cpu_seconds_total" in served or "python_info" in served
    assert not target_path(tmp_path, "ingest").exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_metrics_served_when_the_disk_is_full_at_start_then_served_and_recorded_once_space_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(state_dir=tmp_path)
    is_full = threading.Event()
    is_full.set()
    real_write = adapters.metrics._write

    def write(path: Path, text: str) -> None:
        if is_full.is_set():
            raise OSError(28, "No space left on device")
        real_write(path, text)

    monkeypatch.setattr(adapters.metrics, "_write", write)
    monkeypatch.setattr(adapters.metrics, "RECORD_RETRY_S", 0.05)

    with metrics_served(settings, "audit") as port:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            served_while_full = response.status
        unrecorded = recorded_port(tmp_path, "audit")
        is_full.clear()  # the space is back
        deadline = time.monotonic() + 5
        while recorded_port(tmp_path, "audit") is None and time.monotonic() < deadline:
            time.sleep(0.02)
        recorded = recorded_port(tmp_path, "audit")
        target = json.loads(target_path(tmp_path, "audit").read_text())

    assert served_while_full == 200 and unrecorded is None
    assert recorded == port and target[0]["targets"] == [f"127.0.0.1:{port}"]
    assert not port_path(tmp_path, "audit").exists(), "the ended run's port came back"
    assert not list((tmp_path / "run").glob("*.tmp")), "a half-written file stayed"


def test_scrape_config_when_written_then_discovers_the_targets_at_the_interval(tmp_path: Path) -> None:
    config = scrape_config(tmp_path, 1.5, [tmp_path / "rules.yml"])

    [job] = config["scrape_configs"]  # type: ignore[misc]
    assert config["global"] == {
        "scrape_interval": "1500ms",
        "evaluation_interval": "1500ms",
        "scrape_timeout": "1500ms",
    }
    assert job["file_sd_configs"] == [
        {"files": [str(tmp_path / "prometheus" / "targets" / "*.json")], "refresh_interval": "1500ms"}
    ]
    assert config["rule_files"] == [str(tmp_path / "rules.yml")]


@given(st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), max_size=50))
@example([0.001, 0.01, 1.0, 5.0])  # on the bounds: `le` includes them
def test_hot_histogram_when_observed_then_exposes_what_the_client_histogram_does(values: list[float]) -> None:
    hot = HotHistogram("tickwave_test_hot_seconds", "test", BOUNDS)
    reference_registry = CollectorRegistry()
    reference = Histogram("tickwave_test_hot_seconds", "test", buckets=BOUNDS, registry=reference_registry)
    try:
        for value in values:
            hot.observe(value)
            reference.observe(value)
        ours = {(s.name, tuple(sorted(s.labels.items()))): s.value for family in hot.collect() for s in family.samples}
        theirs = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(generate_latest(reference_registry).decode())
            for s in family.samples
            if not s.name.endswith("_created")
        }
    finally:
        REGISTRY.unregister(hot)

    assert ours.keys() == theirs.keys()
    for key, value in ours.items():
        assert value == pytest.approx(theirs[key]), key


@pytest.mark.parametrize(
    ("reason", "code"),
    [("ask_below_bid: ask 1.1 < bid 1.2", "ask_below_bid"), ("late: 12 ms behind", "late"), ("x" * 500, "other")],
)
def test_reason_code_when_any_text_then_a_code_of_the_rules_or_other(reason: str, code: str) -> None:
    assert reason_code(reason) == code
    assert reason_code(reason) in REASON_CODES | {"other"}


def _scrape(port: int, timeout_s: float = 5.0) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s) as response:
        return int(response.status)


def test_metrics_server_when_clients_hold_connections_then_bounded_and_closed_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MetricsServer, "deadline_s", 1.0)
    settings = Settings(state_dir=tmp_path)
    threads_before = threading.active_count()

    with metrics_served(settings, "ingest") as port:
        assert port is not None
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(MAX_CONNECTIONS + 20)]
        time.sleep(0.2)
        threads_held = threading.active_count() - threads_before
        closed = [is_closed_by_server(sock, within_s=3.0) for sock in idle]
        status = _scrape(port)  # the slots are free again
        for sock in idle:
            sock.close()

    assert threads_held <= MAX_CONNECTIONS + 1  # and the serving thread
    assert all(closed)
    assert status == 200


def test_metrics_server_when_a_client_trickles_its_request_then_cut_off_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MetricsServer, "deadline_s", 1.0)
    settings = Settings(state_dir=tmp_path)

    with metrics_served(settings, "ingest") as port:
        assert port is not None
        with socket.create_connection(("127.0.0.1", port)) as trickling:
            started = time.monotonic()
            trickling.sendall(b"GET /metrics HTTP/1.1\r\n")
            held_s = 0.0
            while held_s < 5.0:  # a header byte every 0.2 s: every read is within the socket timeout
                time.sleep(0.2)
                held_s = time.monotonic() - started
                try:
                    trickling.sendall(b"X")
                except OSError:
                    break
                if is_closed_by_server(trickling, within_s=0.01):
                    break

    assert held_s < 2.0


@pytest.mark.parametrize("holders", [MAX_CONNECTIONS, 200])
def test_metrics_server_when_silent_connections_are_reopened_as_cut_then_every_scrape_is_answered(
    tmp_path: Path, holders: int
) -> None:
    settings = Settings(state_dir=tmp_path)

    with metrics_served(settings, "ingest") as port:
        assert port is not None
        attack = SilentHolders(port, holders)
        try:
            time.sleep(0.5)
            statuses = []
            for _ in range(20):
                try:  # Prometheus's timeout, as `tickwave up` configures it (scrape_config: the interval)
                    statuses.append(_scrape(port, timeout_s=settings.metrics.scrape_interval_s))
                except OSError:
                    statuses.append(0)
                time.sleep(0.1)
        finally:
            attack.close()

    assert statuses == [200] * 20
    assert attack.reopened > 0  # they were cut (and came back)


def test_metrics_server_when_a_connection_sends_no_head_then_cut_within_a_second(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)

    with metrics_served(settings, "ingest") as port:
        assert port is not None
        with socket.create_connection(("127.0.0.1", port)) as silent:
            started = time.monotonic()
            closed = is_closed_by_server(silent, within_s=3.0)
            held_s = time.monotonic() - started

    assert closed and held_s < HEAD_DEADLINE_S + 0.3


def test_metrics_server_when_its_port_is_taken_then_the_bind_error_is_raised_and_no_reader_is_left() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        readers = {t for t in threading.enumerate() if t.name == "metrics-heads"}

        with pytest.raises(OSError) as raised:
            adapters.metrics.start_bounded_server(taken.getsockname()[1])

    assert raised.type is not AttributeError and "in use" in str(raised.value)
    deadline = time.monotonic() + 2
    while {t for t in threading.enumerate() if t.name == "metrics-heads"} - readers and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not {t for t in threading.enumerate() if t.name == "metrics-heads"} - readers


def _samples(collector: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(collector)  # type: ignore[arg-type]
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }


def test_execution_collector_when_scraped_then_counts_denials_state_and_positions() -> None:
    counts = AuditCounts()
    counts.by_kind.update({Signal: 5, OrderSubmitted: 3, OrderFilled: 2})
    counts.denied_by_check.update({"max_lots": 2, "stale_price": 1})
    collector = ExecutionCollector(counts, lambda: "REDUCING", lambda: {"EURUSD": Decimal("-0.3")}, lambda: 7)

    samples = _samples(collector)

    assert samples[("tickwave_execution_signals_total", ())] == 5
    assert samples[("tickwave_execution_orders_submitted_total", ())] == 3
    assert samples[("tickwave_execution_orders_rejected_total", ())] == 0
    assert samples[("tickwave_execution_fills_total", ())] == 2
    assert samples[("tickwave_execution_orders_denied_total", (("check", "max_lots"),))] == 2
    assert samples[("tickwave_execution_orders_denied_total", (("check", "stale_price"),))] == 1
    assert samples[("tickwave_execution_ticks_skipped_total", ())] == 7
    assert samples[("tickwave_execution_trading_state", (("state", "REDUCING"),))] == 1
    assert samples[("tickwave_execution_trading_state", (("state", "ACTIVE"),))] == 0
    assert samples[("tickwave_execution_position_lots", (("symbol", "EURUSD"),))] == -0.3


def test_dataflow_collector_when_scraped_then_counts_by_kind_and_rejections_by_reason() -> None:
    records = SimpleNamespace(by_kind=Counter({Tick: 40, Bar: 4, Signal: 1}), rejected=Counter({"crossed": 2}))

    samples = _samples(DataflowCollector(records))  # type: ignore[arg-type]

    assert samples[("tickwave_dataflow_ticks_accepted_total", ())] == 40
    assert samples[("tickwave_dataflow_bars_total", ())] == 4
    assert samples[("tickwave_dataflow_predictions_total", ())] == 0
    assert samples[("tickwave_dataflow_signals_total", ())] == 1
    assert samples[("tickwave_dataflow_ticks_rejected_total", (("reason", "crossed"),))] == 2
