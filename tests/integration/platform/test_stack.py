"""One `tickwave up` stack on the authenticated default, shared by the tests that leave it running.

The commands a user types (`up`, `ingest`, `warehouse query`, `down`) in real subprocesses,
with no security setting at all: every service starts as its own principal, ticks sent by
`tickwave ingest` (as the ingest principal, its role) reach the warehouse through the
dataflow and the loader, a command naming a principal the broker does not know is refused,
and no process that `up` started holds a password (the Kafka principals' included) in its
command line or its environment (``/proc/<pid>/environ`` keeps what a process started with,
whatever it clears later). Then a real Prometheus (Debian's `prometheus`) scrapes the same
stack while it trades: it counts the orders the journal and the warehouse hold, and sees a
killed service go down and come back once the supervisor restarts it; the last test stops
the stack (`down`) to read the journal. Every process `up` started runs with umask 077, and after
the trading nothing under the state dir is open to another account: no file or folder has a bit
for the group or the others, and the account `nobody` opens none of them (the state dir sits in a
folder every account may traverse, so only its own modes keep `nobody` out).

A `tickwave up` costs a worker ~30 s of CPU: tests that stop or break services start their own
(test_cli_lifecycle.py, test_supervision.py, the chaos run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from adapters.bus import make_producer, resolve_bootstrap
from adapters.bus_credentials import ADMIN
from adapters.endpoints import free_port
from adapters.metrics import prometheus_dir
from adapters.signing import signals_key, signed_headers
from adapters.warehouse.client import connect
from dashboards.metrics_panels import metrics_panels
from execution.app import instance_dir
from execution.brokers.paper import LEDGER_NAME
from execution.journal import JOURNAL_NAME, Journal
from tests.integration.execution.conftest import make_signal, make_tick, now_ms
from tests.integration.platform.private_state import open_entries, readable_by_nobody, readable_entries, umask_of
from tests.integration.platform.prometheus import Prometheus, prometheus_for
from tests.integration.platform.test_cli_lifecycle import clean_env, run
from tickwave.config import Settings, load_settings
from tickwave.contracts import OrderSubmitted, encode
from tickwave.topics import PRINCIPALS, SIGNALS, TICKS, topic_name

SERVICES = ("streams", "streams-loader", "execution", "audit", "warehouse", "supervisor")


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, str]]:
    """`tickwave up` once for the module, with no security setting: its own state dir and ports; `down` at the end.

    The state dir's parent is 0711, as a home folder often is (pytest's own temporary folders are
    0700, which would keep another account out whatever the state dir's modes).
    """
    parent = Path(tempfile.mkdtemp(prefix="tickwave-stack-"))
    parent.chmod(0o711)
    env = clean_env(
        TICKWAVE_STATE_DIR=str(parent / "state"),
        TICKWAVE_KAFKA_PORT=str(free_port()),
        TICKWAVE_KAFKA_CONTROLLER_PORT=str(free_port()),
        TICKWAVE_CLICKHOUSE_PORT=str(free_port()),
        TICKWAVE_CLICKHOUSE_NATIVE_PORT=str(free_port()),
        TICKWAVE_ORCHESTRATION_ENABLED="false",  # Dagster under `up`: in test_supervision.py (it adds ~30 s)
        TICKWAVE_MARKET_HOURS="always",  # orders at any hour of the week (the gate checks market hours)
    )
    assert not any(key.startswith("TICKWAVE_KAFKA_SECURITY") for key in env)
    up = run(env, "up", timeout=300)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    yield env
    run(env, "down")
    shutil.rmtree(parent)


def secrets_of(state_dir: Path) -> dict[str, str]:
    """Every secret under the state dir: the brokers' passwords, the warehouse's, the signing keys."""
    folder = state_dir / "secrets"
    found = {path.name: path.read_text().strip() for path in (folder / "kafka").glob("*.password")}
    warehouse = json.loads((folder / "warehouse.json").read_text())
    found.update({f"warehouse {key}": value for key, value in warehouse.items()})
    found["control key"] = (folder / "control.key").read_text().strip()
    found["signals key"] = (folder / "signals.key").read_text().strip()
    return found


def processes_of(state_dir: Path) -> list[psutil.Process]:
    """The running processes started for this state dir (it is in their command line or environment)."""
    mine = []
    for process in psutil.process_iter():
        try:
            if str(state_dir) in " ".join(process.cmdline()) or str(state_dir) in process.environ().get(
                "TICKWAVE_STATE_DIR", ""
            ):
                mine.append(process)
        except psutil.Error:  # ended meanwhile, or not ours to read
            continue
    return mine


def test_up_when_no_security_setting_then_scram_on_loopback_each_principal_works_and_no_process_holds_a_secret(
    stack: dict[str, str],
) -> None:
    # Arrange
    state_dir = Path(stack["TICKWAVE_STATE_DIR"])

    # Act: a command naming a principal the broker does not know, then ingest as its role
    ingest = ("ingest", "--source", "sim", "--duration", "30s", "--speed", "max")
    unknown = run({**stack, "TICKWAVE_KAFKA_USERNAME": "intruder"}, *ingest)
    sent = run(stack, *ingest)
    match = re.search(r"([\d,]+) ticks, 0 dead letters", sent.stdout)
    assert sent.returncode == 0 and match, sent.stdout + sent.stderr
    ticks = int(match.group(1).replace(",", ""))
    deadline = time.monotonic() + 90
    stored = -1
    while stored != ticks and time.monotonic() < deadline:
        query = run(stack, "warehouse", "query", "SELECT count() FROM ticks FINAL")
        counted = re.search(r"│\s*(\d+)\s*│", query.stdout)
        assert query.returncode == 0 and counted, query.stdout + query.stderr
        stored = int(counted.group(1))
        time.sleep(1.0)
    processes = processes_of(state_dir)
    secrets = secrets_of(state_dir)
    (listeners,) = [
        line
        for path in state_dir.rglob("server.properties")
        for line in path.read_text().splitlines()
        if line.startswith("listeners=")
    ]

    # Assert
    assert unknown.returncode != 0 and "the embedded Kafka has no principal 'intruder'" in unknown.stdout + (
        unknown.stderr
    )
    assert ticks > 0 and stored == ticks  # ingest -> dataflow -> loader -> warehouse, each as its principal
    kafka_secrets = [name for name in secrets if name.endswith(".password")]
    assert listeners.startswith("listeners=SASL_PLAINTEXT://127.0.0.1:")  # SCRAM, loopback only
    assert len(kafka_secrets) == len(PRINCIPALS) + 1  # every principal's and admin's (no keystore: no TLS)
    assert len(secrets) == len(kafka_secrets) + 4  # two warehouse passwords, the control key and the signals key
    names = {" ".join(process.cmdline()[:4]) for process in processes}
    assert len(processes) >= 6, names  # kafka, the warehouse, streams (+ its Bytewax), execution, audit, supervisor
    leaks = []  # named, never shown: a failing run must not print the secret it found
    for process in processes:
        listing = " ".join(process.cmdline())
        environment = Path(f"/proc/{process.pid}/environ").read_bytes().decode(errors="replace")
        leaks += [(name, "command line", listing[:120]) for name, secret in secrets.items() if secret in listing]
        leaks += [(name, "environment", listing[:120]) for name, secret in secrets.items() if secret in environment]
    assert leaks == []


def test_up_when_the_services_run_then_each_process_and_its_children_create_files_for_the_owner_only(
    stack: dict[str, str],
) -> None:
    # Arrange
    state_dir = Path(stack["TICKWAVE_STATE_DIR"])

    # Act: Kafka's JVM, the warehouse (and its engine), the dataflow and its loader, execution, audit, supervisor
    umasks = {
        f"{process.pid} {' '.join(process.cmdline()[:5])}": umask_of(process.pid) for process in processes_of(state_dir)
    }

    # Assert
    assert len(umasks) >= 6, umasks
    assert {command: umask for command, umask in umasks.items() if umask != "0077"} == {}
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700


def test_prometheus_when_the_stack_trades_then_it_counts_the_orders_and_sees_a_killed_service_down_and_back(
    stack: dict[str, str], tmp_path: Path
) -> None:
    state = Path(stack["TICKWAVE_STATE_DIR"])
    assert (prometheus_dir(state) / "prometheus.yml").exists()
    with prometheus_for(state, tmp_path) as prometheus:
        trade_kill_and_count(stack, state, prometheus)


def warehouse_orders(settings: Settings) -> int:
    client = connect(settings)
    try:
        return int(client.query("SELECT uniqExact(client_order_id) FROM orders").result_rows[0][0])
    finally:
        client.close()


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
    assert [rule["name"] for rule in group["rules"]] == ["tickwave-tick-to-signal-p99", "tickwave-target-down"]
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


def test_state_dir_when_the_stack_traded_and_stopped_then_another_account_opens_nothing_under_it(
    stack: dict[str, str],
) -> None:
    # Arrange: after the trading above (its last step stops the stack): the journal holds its orders
    state_dir = Path(stack["TICKWAVE_STATE_DIR"])
    settings = load_settings(state_dir=state_dir)
    journal = Journal(instance_dir(settings) / JOURNAL_NAME, fsync=False)
    try:
        orders = sum(isinstance(event, OrderSubmitted) for event in journal.events())
    finally:
        journal.close()
    canary = state_dir.parent / "canary"  # beside the state dir, readable by all: `nobody` must open it
    canary.write_text("readable")
    canary.chmod(0o644)
    entries = readable_entries(state_dir)
    kafka = state_dir / "data" / "kafka"
    kinds = {
        "the journal": instance_dir(settings) / JOURNAL_NAME,
        "the paper ledger": instance_dir(settings) / LEDGER_NAME,
        "Kafka's metadata log (SCRAM records)": next(kafka.rglob("__cluster_metadata-0/*.log")),
        "Kafka's segments of signals": next(kafka.rglob(f"{topic_name(settings, SIGNALS)}-0/*.log")),
        "a warehouse part": next((state_dir / "data" / "warehouse").rglob("store/*/*/*/columns.txt")),
        "a service log": state_dir / "logs" / "execution.log",
        "the Prometheus configuration": prometheus_dir(state_dir) / "prometheus.yml",
    }

    # Act
    opened = readable_by_nobody([canary, *entries])

    # Assert
    assert orders > 0, "the stack did not trade: run the whole module"
    assert all(path in entries for path in kinds.values()), kinds
    assert opened[:1] == [str(canary)]  # the attempt reads what it may
    assert opened[1:] == []
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert open_entries(state_dir) == []
    print(f"another account opened none of the {len(entries):,} files and folders under the state dir")
