"""The embedded Kafka in SASL_SSL mode: SCRAM users, its own CA, and the ACLs of the topic registry.

One broker for the module, with its own state dir, started as `tickwave up` starts it
(topics and ACLs created by the super user after the start) and stopped at the end.
Clients connect the two ways a process can: through the embedded broker's generated
credentials (``kafka.username`` only), and as against any external cluster (bootstrap,
username, password and CA file in the settings).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from typer.testing import CliRunner

from adapters.bus import KafkaConnection, denial, make_admin, make_consumer, resolve_admin, resolve_bootstrap
from adapters.bus_credentials import ADMIN, EmbeddedCredentials
from adapters.endpoints import Endpoint
from app.cli import app as cli
from app.services.kafka import KafkaService
from app.services.supervisor import Supervisor
from streams.connectors import Publisher, TickTopicSource
from streams.ingest.adapters.kafka import KafkaSink
from streams.ingest.batches import SourceBatch, TickBatch
from tests.plugins.postgres import PostgresCluster
from tests.plugins.warehouse import start_warehouse
from tickwave.clock import SystemClock
from tickwave.config import Settings, load_settings
from tickwave.contracts import Tick, decode
from tickwave.errors import ConfigurationError
from tickwave.topics import (
    ANALYST,
    AUDIT,
    DATAFLOW,
    EXECUTION,
    INGEST,
    LOADER,
    OPERATOR,
    ORDERS_EVENTS,
    PRINCIPALS,
    SIGNALS,
    TICKS,
    TICKS_DLQ,
    topic_name,
    topic_specs,
)

SECURED = {"port": 0, "controller_port": 0, "security_protocol": "SASL_SSL"}


@pytest.fixture(scope="module")
def secured_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state dir of this module's secured broker."""
    return tmp_path_factory.mktemp("tickwave-sasl-ssl")


@pytest.fixture(scope="module")
def secured_broker(secured_state: Path) -> Iterator[Endpoint]:
    """The embedded broker in SASL_SSL mode, with the registry's topics and ACLs, for this module."""
    settings = load_settings(state_dir=secured_state, kafka={**SECURED, "username": ADMIN})
    supervisor = Supervisor(settings)
    service = KafkaService(settings)
    started = supervisor.start(service)
    assert isinstance(started, Endpoint)
    try:
        service.after_start()  # as `tickwave up`: topics and ACLs, as the super user
        yield started
    finally:
        supervisor.stop(service)


def as_principal(state: Path, principal: str) -> Settings:
    """Settings of a process running as ``principal`` on the embedded secured broker."""
    return load_settings(state_dir=state, kafka={**SECURED, "username": principal})


def as_external(state: Path, endpoint: Endpoint, principal: str, password: str | None = None) -> Settings:
    """Settings naming the broker as any external SASL_SSL cluster: address, user, password, CA file."""
    credentials = EmbeddedCredentials(state)
    return load_settings(
        state_dir=state,
        kafka={
            "bootstrap": endpoint.address,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-256",
            "username": principal,
            "password": password if password is not None else credentials.password(principal),
            "ssl_ca_file": str(credentials.ca_file),
        },
    )


def ticks(count: int, first_ms: int = 1_700_000_000_000) -> SourceBatch:
    ints, floats = np.zeros(count, np.int64), np.full(count, 1.1)
    times = np.arange(first_ms, first_ms + count, dtype=np.int64)
    batch = TickBatch(
        ("EURUSD",),
        np.zeros(count, np.int32),
        times,
        ints,
        floats,
        floats + 0.0002,
        floats * 0,
        floats * 0,
        ints,
        "test",
    )
    return SourceBatch(batch)


def tick() -> Tick:
    return Tick(symbol="EURUSD", time_ms=1_700_000_000_000, seq=0, bid=1.1, ask=1.1002, source="test")


def read_values(
    connection: KafkaConnection,
    topic: str,
    expected: int,
    timeout_s: float = 20.0,
    group: str = "tickwave-streams-unused",
) -> list[bytes]:
    consumer = make_consumer(connection, f"{group}-test-{uuid.uuid4().hex[:6]}", "latency")
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(values) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                values.append(message.value())
    finally:
        consumer.close()
    return values


def write_ticks(connection: KafkaConnection, settings: Settings, topic: str, batch: SourceBatch) -> None:
    sink = KafkaSink(connection, topic, topic_name(settings, TICKS_DLQ), "test", SystemClock(), "latency")
    sink.send(batch)
    assert sink.flush(15) == 0


def test_ticks_when_ingest_writes_and_dataflow_reads_over_sasl_ssl_then_round_trip(
    secured_broker: Endpoint, secured_state: Path
) -> None:
    # Arrange: ingest through the embedded credentials, the dataflow as an external cluster's client
    ingest_settings = as_principal(secured_state, INGEST)
    ingest = resolve_bootstrap(ingest_settings)
    dataflow = resolve_bootstrap(as_external(secured_state, secured_broker, DATAFLOW))
    sent = ticks(50)
    topic = topic_name(ingest_settings, TICKS)

    # Act
    write_ticks(ingest, ingest_settings, topic, sent)
    received = [decode(value, Tick) for value in read_values(dataflow, topic, len(sent.ticks))]

    # Assert
    assert ingest.security["security.protocol"] == "sasl_ssl"
    assert sorted(t.time_ms for t in received) == sent.ticks.time_ms.tolist()


def read_through_source(connection: KafkaConnection, topic: str, timeout_s: float = 15.0) -> None:
    """Read ``topic`` as the dataflow does (its metadata, then its first partition's messages)."""
    source = TickTopicSource(connection, topic, tail=False)
    part = source.build_part("read", source.list_parts()[0], None)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            part.next_batch()
    except StopIteration:
        return
    finally:
        part.close()


def refusal(secured_state: Path, principal: str, operation: str, base_topic: str) -> str:
    settings = as_principal(secured_state, principal)
    connection = resolve_bootstrap(settings)
    topic = topic_name(settings, base_topic)
    with pytest.raises(ConfigurationError) as raised:
        if operation == "write" and principal == INGEST:
            write_ticks(connection, settings, topic, ticks(1))
        elif operation == "write":
            publisher = Publisher(connection, topic, "latency")
            publisher.publish([tick()])
            publisher.flush()
        else:
            read_through_source(connection, topic)
    return str(raised.value)


@pytest.mark.parametrize(
    ("principal", "operation", "base_topic"),
    [
        (INGEST, "write", SIGNALS),
        (INGEST, "read", TICKS),
        (EXECUTION, "write", TICKS),
        (EXECUTION, "write", SIGNALS),
        (DATAFLOW, "write", ORDERS_EVENTS),
        (DATAFLOW, "read", SIGNALS),
    ],
)
def test_acl_when_principal_uses_a_topic_outside_its_grants_then_refused_naming_both(
    secured_broker: Endpoint, secured_state: Path, principal: str, operation: str, base_topic: str
) -> None:
    # Act
    message = refusal(secured_state, principal, operation, base_topic)

    # Assert
    assert f"principal {principal!r}" in message
    assert f"topic {base_topic!r}" in message


def test_acl_when_analyst_reads_any_topic_then_refused(secured_broker: Endpoint, secured_state: Path) -> None:
    # Arrange
    names = [spec.base_name for spec in topic_specs(as_principal(secured_state, ANALYST))]

    # Act
    messages = {name: refusal(secured_state, ANALYST, "read", name) for name in names}

    # Assert
    assert all("principal 'analyst'" in text and f"topic {name!r}" in text for name, text in messages.items())


def test_connect_when_password_is_wrong_then_refused_naming_the_principal(
    secured_broker: Endpoint, secured_state: Path
) -> None:
    # Arrange
    wrong = resolve_bootstrap(as_external(secured_state, secured_broker, INGEST, password="not-the-password"))
    errors: list[KafkaError] = []
    admin = AdminClient({**wrong.client_config(), "error_cb": errors.append})

    # Act: the broker's refusal of the handshake reaches the error callback; no request gets an answer
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        admin.poll(0.2)
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=2)
    admin.poll(1)

    # Assert
    refusals = [denial(error, wrong, TICKS) for error in errors]
    assert any(text and "did not authenticate principal 'ingest'" in text for text in refusals), errors


def test_secrets_when_broker_runs_then_absent_from_argv_logs_and_config_show(
    secured_broker: Endpoint, secured_state: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: every generated secret, and a client's activity logged at DEBUG
    credentials = EmbeddedCredentials(secured_state)
    secrets = [path.read_text().strip() for path in credentials.folder.glob("*.password")]
    caplog.set_level(logging.DEBUG)
    connection = resolve_bootstrap(as_principal(secured_state, EXECUTION))
    logging.getLogger("test").info("connected to %s (%r)", connection, connection)
    monkeypatch.setenv("TICKWAVE_STATE_DIR", str(secured_state))
    monkeypatch.setenv("TICKWAVE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TICKWAVE_KAFKA_USERNAME", EXECUTION)
    monkeypatch.setenv("TICKWAVE_KAFKA_PASSWORD", credentials.password(EXECUTION))
    monkeypatch.setenv("TICKWAVE_KAFKA_BOOTSTRAP", secured_broker.address)

    # Act
    shown = CliRunner().invoke(cli, ["config", "show", "--json"])
    argv = Path(f"/proc/{secured_broker.pid}/cmdline").read_bytes().decode()
    broker_log = (secured_state / "logs" / "kafka.log").read_text()
    record = (secured_state / "run" / "kafka.json").read_text()

    # Assert
    assert shown.exit_code == 0, shown.output
    assert len(secrets) == len(PRINCIPALS) + 2  # the principals, admin, the keystore
    for secret in secrets:
        assert secret not in shown.output
        assert secret not in argv
        assert secret not in broker_log
        assert secret not in record
        assert secret not in caplog.text
    assert not any(
        stat.S_IMODE(path.stat().st_mode) & 0o077 for path in [*credentials.folder.iterdir(), credentials.folder]
    )


@pytest.mark.parametrize(("principal", "topic", "is_allowed"), [(DATAFLOW, TICKS, True), (ANALYST, TICKS, False)])
def test_topics_tail_when_run_as_a_principal_then_reads_within_its_grants_like_kcat(
    secured_broker: Endpoint,
    secured_state: Path,
    monkeypatch: pytest.MonkeyPatch,
    principal: str,
    topic: str,
    is_allowed: bool,
) -> None:
    # Arrange: ticks on the topic, written as ingest; the command run as the principal, as a user would
    ingest = as_principal(secured_state, INGEST)
    write_ticks(resolve_bootstrap(ingest), ingest, topic_name(ingest, TICKS), ticks(3, first_ms=1_700_000_100_000))
    monkeypatch.setenv("TICKWAVE_STATE_DIR", str(secured_state))
    monkeypatch.setenv("TICKWAVE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TICKWAVE_KAFKA_PORT", "0")
    monkeypatch.setenv("TICKWAVE_KAFKA_CONTROLLER_PORT", "0")
    monkeypatch.setenv("TICKWAVE_KAFKA_USERNAME", principal)

    # Act
    result = CliRunner().invoke(cli, ["topics", "tail", topic, "-n", "2"])

    # Assert
    if is_allowed:
        assert result.exit_code == 0, result.output
        lines = [json.loads(line) for line in result.output.splitlines()]
        assert len(lines) == 2 and lines[-1]["value"]["type"] == "tick.v1" and lines[-1]["key"] == "EURUSD"
        assert lines[-1]["value"]["time_ms"] == 1_700_000_100_002 and lines[0]["offset"] + 1 == lines[1]["offset"]
    else:
        assert result.exit_code != 0
        assert f"principal {principal!r} topic {topic!r}" in " ".join(result.output.split())


def test_admin_when_listing_topics_then_super_user_sees_every_topic(
    secured_broker: Endpoint, secured_state: Path
) -> None:
    # Arrange
    settings = as_principal(secured_state, ANALYST)

    # Act
    visible = make_admin(resolve_admin(settings)).list_topics(timeout=10).topics
    ingest_visible = make_admin(resolve_bootstrap(as_principal(secured_state, INGEST))).list_topics(timeout=10).topics

    # Assert
    assert {topic_name(settings, spec.base_name) for spec in topic_specs(settings)} <= set(visible)
    assert {name for name in ingest_visible if not name.startswith("__")} == {TICKS, TICKS_DLQ}


def pipeline_settings(
    secured_state: Path, endpoint: Endpoint, principal: str, state_dir: Path, database: str
) -> Settings:
    """One process's settings on the secured broker (under its own prefix) and the HTTPS warehouse of ``state_dir``."""
    kafka = as_external(secured_state, endpoint, principal).kafka.model_dump()
    return load_settings(
        state_dir=state_dir,
        kafka={**kafka, "topic_prefix": PIPELINE_PREFIX},
        clickhouse={"database": database, "tls": True},
        streams={"close_on_wall_clock": False, "model_refresh_s": 0.01},
    )


PIPELINE_PREFIX = "pipeline."
PIPELINE_DATABASE = "sasl_pipeline"


def wait_for_audit_rows(settings: Settings, done: threading.Event, timeout_s: float = 90.0) -> None:
    """Set ``done`` once the warehouse holds audit rows (or after ``timeout_s``)."""
    from adapters.warehouse.client import connect

    client = connect(settings)
    deadline = time.monotonic() + timeout_s
    try:
        while not done.is_set() and time.monotonic() < deadline:
            query = "SELECT (SELECT count() FROM order_events) + (SELECT count() FROM risk_events)"
            if client.query(query).result_rows[0][0] > 0:
                time.sleep(2.0)  # the rest of the batch
                break
            time.sleep(0.5)
    finally:
        client.close()
        done.set()


@pytest.mark.timeout(900)  # four stages, each waiting for the one before, on a shared 2-core machine
def test_pipeline_when_sample_replayed_over_sasl_ssl_and_https_then_each_stage_as_its_own_principal_reaches_the_next(
    secured_broker: Endpoint,
    secured_state: Path,
    postgres_cluster: PostgresCluster,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Ingest -> dataflow -> warehouse -> execution -> audit -> Dagster's dbt marts: each stage as its principal on
    topics and ACLs of a new prefix, every warehouse client over HTTPS verified against the warehouse's CA, and
    Dagster's runs and events stored in PostgreSQL."""
    from adapters.acls import apply_acls
    from adapters.topics import create_topics

    # Arrange: the super user creates the prefix's topics and ACLs, as `tickwave up` does for its own
    admin_settings = load_settings(
        state_dir=secured_state, kafka={**SECURED, "username": ADMIN, "topic_prefix": PIPELINE_PREFIX}
    )
    admin = make_admin(resolve_admin(admin_settings))
    create_topics(admin, admin_settings)
    apply_acls(admin, admin_settings)
    warehouse_state = tmp_path / "warehouse"
    supervisor, warehouse_service, warehouse_endpoint = start_warehouse(warehouse_state, tls=True)
    try:
        _run_pipeline(secured_broker, secured_state, warehouse_state, warehouse_endpoint, tmp_path)
        _build_marts_on_postgresql(postgres_cluster, warehouse_state, monkeypatch)
    finally:
        supervisor.stop(warehouse_service)


def _build_marts_on_postgresql(
    cluster: PostgresCluster, warehouse_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run the dbt marts through Dagster on an instance stored in PostgreSQL, as `tickwave orchestrate` writes it."""
    import dagster as dg
    from dagster_dbt import DbtCliResource

    from adapters.warehouse.client import connect
    from orchestration.dbt_project import DBT_EXECUTABLE, dbt_project
    from orchestration.defs.marts.assets import tickwave_dbt
    from orchestration.resources import TickwaveResource
    from orchestration.service import POSTGRES_URL_VARIABLE, dagster_home

    storage = f"dagster_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(POSTGRES_URL_VARIABLE, cluster.create_database(storage))
    monkeypatch.setenv("TICKWAVE_CLICKHOUSE_TLS", "true")  # the Dagster resource's settings: HTTPS, the state dir's CA
    settings = load_settings(state_dir=warehouse_state, clickhouse={"database": PIPELINE_DATABASE})
    resources = {
        "tickwave": TickwaveResource(state_dir=str(warehouse_state), database=PIPELINE_DATABASE),
        "dbt": DbtCliResource(project_dir=dbt_project(), dbt_executable=DBT_EXECUTABLE),
    }
    with dg.DagsterInstance.from_config(str(dagster_home(settings))) as instance:
        result = dg.materialize([tickwave_dbt], resources=resources, instance=instance, raise_on_error=False)
    built = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    client = connect(settings)
    try:
        orders = client.query("SELECT count() FROM orders FINAL").result_rows[0][0]
        marts = client.query("SELECT count() FROM fct_orders").result_rows[0][0]
    finally:
        client.close()
    stored = cluster.execute(storage, "SELECT status FROM runs WHERE run_id = %s", (result.run_id,))

    assert result.success, [event.message for event in result.all_events if event.is_failure]
    assert {"fct_orders", "pnl_daily"} <= built
    assert marts == orders
    assert stored == [("SUCCESS",)]


def _run_pipeline(
    secured_broker: Endpoint, secured_state: Path, warehouse_state: Path, warehouse_endpoint: Endpoint, tmp_path: Path
) -> None:
    from bytewax.testing import run_main

    from adapters.warehouse.address import warehouse_address
    from adapters.warehouse.client import connect
    from adapters.warehouse.credentials import resolve_credentials
    from adapters.warehouse.migrate import migrate
    from adapters.warehouse.tls import generated_ca_file
    from execution.audit import run_audit_loader
    from streams.app import production_sinks
    from streams.features import FeatureSpec
    from streams.flow import build_flow
    from streams.ingest.sources import replay_sample
    from streams.loader import load_to_end
    from tests.integration.execution.conftest import ExecutionProcess
    from tests.unit.streams.tiny_model import every_timeframe
    from tickwave.config import to_environment
    from tickwave.contracts import decode_any

    ingest, dataflow, loader, execution, audit_loader, operator = (
        pipeline_settings(secured_state, secured_broker, principal, warehouse_state, PIPELINE_DATABASE)
        for principal in (INGEST, DATAFLOW, LOADER, EXECUTION, AUDIT, OPERATOR)
    )
    ca_file = generated_ca_file(dataflow)
    assert warehouse_address(dataflow).scheme == "https"
    migrate(dataflow)

    # Act: ingest replays the sample; the dataflow makes bars, features, predictions and signals;
    # the loader fills the warehouse; the execution process decides on the signals
    replayed = replay_sample(ingest)
    source = TickTopicSource(resolve_bootstrap(dataflow), topic_name(dataflow, TICKS), tail=False)
    provider = every_timeframe(FeatureSpec(), ("1s", "1m"), ("EURUSD", "USDJPY", "XAUUSD"))
    run_main(build_flow(dataflow.streams, source, production_sinks(dataflow), provider, clock=SystemClock()))
    load_to_end(loader)
    credentials = resolve_credentials(dataflow)
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("TICKWAVE_")},
        **to_environment(execution),
        "TICKWAVE_STATE_DIR": str(tmp_path),  # the execution's own: the warehouse is reached by URL and CA
        "TICKWAVE_CLICKHOUSE_URL": f"https://{warehouse_endpoint.address}",
        "TICKWAVE_CLICKHOUSE_CA_FILE": str(ca_file),
        "TICKWAVE_MARKET_HOURS": "always",
        "TICKWAVE_CLICKHOUSE_PASSWORD": credentials.password.get_secret_value(),
        "TICKWAVE_CLICKHOUSE_ANALYST_PASSWORD": credentials.analyst_password.get_secret_value(),
    }
    process = ExecutionProcess(environment, tmp_path / "execution.log").start()
    try:
        orders_events = topic_name(operator, ORDERS_EVENTS)
        audit = read_values(resolve_bootstrap(operator), orders_events, 1, timeout_s=60, group="tickwave-cli")
    finally:
        process.stop()
    # The audit loader (quixstreams) moves the trail into the warehouse as its own principal, on this thread.
    loaded = threading.Event()
    watcher = threading.Thread(target=wait_for_audit_rows, args=(audit_loader, loaded), daemon=True)
    watcher.start()
    run_audit_loader(audit_loader, resolve_bootstrap(audit_loader), loaded)

    # Assert
    client = connect(dataflow)
    counts = {
        table: client.query(f"SELECT count() FROM {table} FINAL").result_rows[0][0]
        for table in ("ticks", "bars_1s", "signals", "order_events", "risk_events")
    }
    client.close()
    log = (tmp_path / "execution.log").read_text(errors="replace")
    assert replayed.is_clean and replayed.ticks > 0
    assert counts["ticks"] == replayed.ticks
    assert counts["bars_1s"] > 0 and counts["signals"] > 0
    assert audit, f"no audit event from the execution process:\n{log[-3000:]}"
    assert {type(decode_any(value)).__name__ for value in audit} <= {"OrderEvent", "Fill", "RiskEvent"}
    assert counts["order_events"] + counts["risk_events"] > 0
    assert "AUTHORIZATION_FAILED" not in log
