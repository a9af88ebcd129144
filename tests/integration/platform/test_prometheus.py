"""A real Prometheus (Debian's `prometheus`) scrapes the stack `tickwave up` runs.

It counts the orders the journal and the warehouse hold, and sees a killed service go
down and come back once the supervisor restarts it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from adapters.bus import make_producer, resolve_bootstrap
from adapters.bus_credentials import ADMIN
from adapters.endpoints import free_port
from adapters.metrics import RULES, prometheus_dir, scrape_config
from adapters.signing import signals_key, signed_headers
from adapters.warehouse.client import connect
from dashboards.metrics_panels import metrics_panels
from execution.app import instance_dir
from execution.journal import JOURNAL_NAME, Journal
from tests.integration.execution.conftest import make_signal, make_tick, now_ms
from tests.integration.platform.test_cli_lifecycle import cli_env, run  # noqa: F401 - the fixture
from tickwave.config import Settings, load_settings
from tickwave.contracts import OrderSubmitted, encode
from tickwave.topics import SIGNALS, TICKS, topic_name

SCRAPE_S = 1.0
SERVICES = ("streams", "streams-loader", "execution", "audit", "warehouse", "supervisor")


class Prometheus:
    """Debian's prometheus on a free loopback port, with its own storage, scraping every second."""

    def __init__(self, config: Path, storage: Path) -> None:
        self.port = free_port()
        binary = shutil.which("prometheus")
        assert binary, "Debian's prometheus is needed (make prereqs installs it)"
        self.log = (storage.parent / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={storage}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
            return bytes(response.read())

    def wait_ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self.get("/-/ready")
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("prometheus did not become ready")

    def query(self, expression: str) -> dict[str, float]:
        """Return each series' value of an instant query, keyed by its job label."""
        answer = json.loads(self.get(f"/api/v1/query?query={urllib.parse.quote(expression)}"))
        assert answer["status"] == "success", answer
        return {item["metric"].get("job", ""): float(item["value"][1]) for item in answer["data"]["result"]}

    def query_labels(self, expression: str, label: str) -> dict[str, float]:
        """Return each series' value of an instant query, keyed by ``label``."""
        answer = json.loads(self.get(f"/api/v1/query?query={urllib.parse.quote(expression)}"))
        return {item["metric"].get(label, ""): float(item["value"][1]) for item in answer["data"]["result"]}

    def wait_for(
        self, expression: str, accept: Callable[[dict[str, float]], bool], timeout_s: float
    ) -> dict[str, float]:
        deadline = time.monotonic() + timeout_s
        found = self.query(expression)
        while not accept(found) and time.monotonic() < deadline:
            time.sleep(0.5)
            found = self.query(expression)
        assert accept(found), f"{expression}: {found} after {timeout_s} s"
        return found

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@contextmanager
def prometheus_for(state: Path, tmp_path: Path) -> Iterator[Prometheus]:
    """Prometheus on the targets and the rule file `tickwave up` wrote, scraping every second."""
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps(scrape_config(state, SCRAPE_S, [prometheus_dir(state) / RULES])))
    started = Prometheus(config, tmp_path / "tsdb")
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


def warehouse_orders(settings: Settings) -> int:
    client = connect(settings)
    try:
        return int(client.query("SELECT uniqExact(client_order_id) FROM orders").result_rows[0][0])
    finally:
        client.close()


def test_prometheus_when_the_stack_trades_then_it_counts_the_orders_and_sees_a_killed_service_down_and_back(
    cli_env: dict[str, str],  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    cli_env["TICKWAVE_MARKET_HOURS"] = "always"  # orders at any hour of the week (the gate checks market hours)
    up = run(cli_env, "up", timeout=300)
    assert up.returncode == 0, up.stderr
    state = Path(cli_env["TICKWAVE_STATE_DIR"])
    assert (prometheus_dir(state) / "prometheus.yml").exists()
    with prometheus_for(state, tmp_path) as prometheus:
        trade_kill_and_count(cli_env, state, prometheus)


def trade_kill_and_count(env: dict[str, str], state: Path, prometheus: Prometheus) -> None:
    settings = load_settings(
        state_dir=state,
        kafka={"username": ADMIN},  # the authenticated default: the state dir's credentials, as its super user
        clickhouse={"port": int(env["TICKWAVE_CLICKHOUSE_PORT"])},
    )
    every_job_up = prometheus.wait_for("up", lambda found: all(found.get(job) == 1 for job in SERVICES), 60)
    # Every panel's PromQL and the alert rule are valid for this Prometheus (a parse error answers 400).
    for spec in metrics_panels():
        for _legend, expression in spec.queries:
            prometheus.query(expression)
    [group] = json.loads(prometheus.get("/api/v1/rules"))["data"]["groups"]
    assert [rule["name"] for rule in group["rules"]] == ["tickwave-tick-to-signal-p99"]
    status = run(env, "status")
    for job in ("execution", "warehouse", "supervisor"):  # each service's metrics port, on its row
        port = (state / "run" / f"{job}.metrics_port").read_text()
        assert any(job in line and f" {port} " in line for line in status.stdout.splitlines()), status.stdout

    # Trade: fresh prices for two symbols all along (the gate refuses stale ones), then signals that each ask
    # for an order once the execution process has read prices.
    producer = make_producer(resolve_bootstrap(settings), "latency")
    key = signals_key(settings)  # the dataflow's key: the execution process decides only signed signals
    pricing = threading.Event()

    def send_prices() -> None:
        while not pricing.wait(0.2):
            for symbol, mid in (("EURUSD", 1.1), ("GBPUSD", 1.27)):
                tick = make_tick(now_ms(), mid, symbol)
                producer.produce(topic_name(settings, TICKS), key=symbol.encode(), value=encode(tick))
            producer.poll(0)

    prices = threading.Thread(target=send_prices, daemon=True)
    prices.start()
    try:
        time.sleep(3.0)
        signals = [
            make_signal(i, now_ms(), ("long", "short")[i // 2 % 2], 0.5, ("EURUSD", "GBPUSD")[i % 2]) for i in range(12)
        ]
        for sent in signals + signals[:4]:  # the first four delivered twice: decided once
            value = encode(sent)
            producer.produce(
                topic_name(settings, SIGNALS), key=sent.symbol.encode(), value=value, headers=signed_headers(key, value)
            )
        producer.flush(10)
        prometheus.wait_for(
            "tickwave_execution_signals_total", lambda found: found.get("execution") == len(signals), 60
        )
    finally:
        pricing.set()
        prices.join(5)
        producer.flush(10)
    orders = prometheus.query("tickwave_execution_orders_submitted_total")["execution"]
    denied = prometheus.query_labels("tickwave_execution_orders_denied_total", "check")
    assert orders > 0, f"no order; denied: {denied}"
    decisions = prometheus.query("tickwave_execution_decision_seconds_count")["execution"]
    assert decisions >= 1

    # A killed service is down for Prometheus, then back once the supervisor restarted it.
    audit_pid = int(json.loads((state / "run" / "audit.json").read_text())["pid"])
    os.kill(audit_pid, signal.SIGKILL)
    prometheus.wait_for('up{job="audit"}', lambda found: found.get("audit") == 0, 20)
    prometheus.wait_for('up{job="audit"}', lambda found: found.get("audit") == 1, 90)
    restarts = prometheus.wait_for(
        'tickwave_supervisor_restarts_total{service="audit"}', lambda found: found.get("supervisor", 0) >= 1, 20
    )

    # The restarted audit loader catches up: the warehouse holds what Prometheus counted.
    deadline = time.monotonic() + 60
    while warehouse_orders(settings) < orders and time.monotonic() < deadline:
        time.sleep(0.5)
    in_warehouse = warehouse_orders(settings)
    requests = prometheus.query('sum by (job) (tickwave_warehouse_requests_total{status="ok"})')

    down = run(env, "down")
    assert down.returncode == 0, down.stderr
    journal = Journal(instance_dir(settings) / JOURNAL_NAME, fsync=False)
    try:
        in_journal = sum(isinstance(event, OrderSubmitted) for event in journal.events())
    finally:
        journal.close()

    assert in_journal == orders == in_warehouse, (in_journal, orders, in_warehouse)
    assert restarts["supervisor"] >= 1 and requests.get("warehouse", 0) > 0
    assert set(SERVICES) <= set(every_job_up)
    assert not list((prometheus_dir(state) / "targets").glob("*.json")), "down forgets the targets"
    print(
        f"prometheus counted: {orders:.0f} orders of {len(signals)} signals, {decisions:.0f} decisions, "
        f"{restarts['supervisor']:.0f} restart(s) of audit; journal {in_journal}, warehouse {in_warehouse}"
    )
