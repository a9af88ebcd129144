"""The kafka section's security settings, the client properties derived from them, and the ACL table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError

from adapters.acls import consumer_groups, grants, tail_group
from adapters.bus import (
    KafkaConnection,
    client_security,
    consumer_config,
    denial,
    embedded_connection,
    producer_config,
    raise_if_denied,
    shared_section,
)
from adapters.bus_credentials import EmbeddedCredentials
from app.services.kafka import KafkaService, NodePorts, server_properties
from app.services.kafka.security import scram_arguments, secured_properties
from app.services.processes import own_processes
from tickwave.config import load_settings
from tickwave.config.loading import masked_settings
from tickwave.errors import ConfigurationError, ServiceError
from tickwave.topics import (
    ANALYST,
    AUDIT,
    DATAFLOW,
    EXECUTION,
    INGEST,
    LOADER,
    OPERATOR,
    PRINCIPALS,
    READER,
    topic_specs,
)

EXTERNAL = {"bootstrap": "broker.example:9092"}


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


@pytest.mark.parametrize(
    ("kafka", "problem"),
    [
        ({**EXTERNAL, "security_protocol": "SASL_SSL", "password": "p"}, "needs a username"),
        ({**EXTERNAL, "security_protocol": "SASL_SSL"}, "needs a username and a password"),
        ({**EXTERNAL, "security_protocol": "SASL_PLAINTEXT", "username": "u"}, "needs a password"),
        ({**EXTERNAL, "security_protocol": "SSL", "ssl_ca_file": "/no/such/ca.pem"}, "does not exist"),
        ({**EXTERNAL, "security_protocol": "PLAINTEXT", "username": "u"}, "set but security_protocol is PLAINTEXT"),
        (EXTERNAL, "SASL_SSL with SCRAM-SHA-512 needs a username and a password"),
        (
            {**EXTERNAL, "security_protocol": "SASL_PLAINTEXT", "username": "u", "password": "p", "ssl_ca_file": "/x"},
            "set but security_protocol is SASL_PLAINTEXT",
        ),
        ({"security_protocol": "SSL"}, "the embedded broker runs SASL_PLAINTEXT, SASL_SSL, PLAINTEXT, not SSL"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "username": "u"}, "authenticates with SCRAM"),
    ],
)
def test_kafka_settings_when_security_inconsistent_then_refused_without_showing_the_password(
    kafka: dict[str, Any], problem: str
) -> None:
    # Act
    with pytest.raises(ConfigurationError) as raised:
        load_settings(kafka=kafka)

    # Assert
    assert problem in str(raised.value)
    assert "'p'" not in str(raised.value)


def test_kafka_settings_when_oauthbearer_then_no_password_needed() -> None:
    settings = load_settings(kafka={**EXTERNAL, "security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"})

    assert client_security(settings.kafka) == {"security.protocol": "sasl_ssl", "sasl.mechanism": "OAUTHBEARER"}


def test_client_security_when_sasl_ssl_then_librdkafka_properties(ca_file: Path) -> None:
    # Arrange
    kafka = load_settings(
        kafka={
            **EXTERNAL,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-256",
            "username": "ingest",
            "password": "s3cret",
            "ssl_ca_file": str(ca_file),
        }
    ).kafka

    # Act
    config = client_security(kafka)

    # Assert
    assert config == {
        "security.protocol": "sasl_ssl",
        "ssl.ca.location": str(ca_file),
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "ingest",
        "sasl.password": "s3cret",
    }


def test_client_security_when_plaintext_asked_then_nothing_added() -> None:
    assert client_security(load_settings(kafka={"security_protocol": "PLAINTEXT"}).kafka) == {}


def test_client_configs_when_secured_connection_then_every_client_carries_the_security() -> None:
    # Arrange
    secured = KafkaConnection("b:1", {"security.protocol": "sasl_ssl", "sasl.username": "u", "sasl.password": "pw"})

    # Act
    configs = [producer_config(secured, "live"), consumer_config(secured, "g", "latency")]

    # Assert
    assert all(config["sasl.password"] == "pw" and config["bootstrap.servers"] == "b:1" for config in configs)


def test_kafka_connection_when_printed_then_no_secret() -> None:
    secured = KafkaConnection("b:1", {"sasl.username": "ingest", "sasl.password": "hunter2"})

    assert "hunter2" not in f"{secured} {secured!r}"
    assert str(secured) == "b:1 as ingest"


def test_config_show_when_password_set_then_masked() -> None:
    settings = load_settings(
        kafka={**EXTERNAL, "security_protocol": "SASL_SSL", "username": "u", "password": "hunter2"}
    )

    assert "hunter2" not in str(masked_settings(settings))


def test_denial_when_topic_refused_then_message_names_principal_and_topic() -> None:
    secured = KafkaConnection("b:1", {"sasl.username": "ingest"})

    with pytest.raises(ConfigurationError, match=r"principal 'ingest' topic 'signals'"):
        raise_if_denied(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED), secured, "signals")
    assert denial(KafkaError(KafkaError._MSG_TIMED_OUT), secured, "signals") is None


def test_grants_when_generated_then_follow_the_registry_and_analyst_has_none() -> None:
    # Arrange
    settings = load_settings()

    # Act
    table = grants(settings)

    # Assert
    writes = {
        (grant.principal, grant.name) for grant in table if grant.operation == "WRITE" and grant.resource == "topic"
    }
    reads = {
        (grant.principal, grant.name) for grant in table if grant.operation == "READ" and grant.resource == "topic"
    }
    specs = topic_specs(settings)
    assert writes == {(principal, spec.base_name) for spec in specs for principal in spec.writers}
    assert reads == {(principal, spec.base_name) for spec in specs for principal in spec.readers}
    assert {(INGEST, "ticks")} == {(p, n) for p, n in writes if p == INGEST and n == "ticks"}
    assert not [grant for grant in table if grant.principal == ANALYST]
    assert {grant.principal for grant in table} <= set(PRINCIPALS)
    fences = {(grant.principal, grant.name, grant.operation) for grant in table if grant.resource == "transactional_id"}
    assert fences == {(EXECUTION, "tickwave-execution-", "WRITE"), (EXECUTION, "tickwave-execution-", "DESCRIBE")}


@pytest.mark.parametrize("prefix", ["", "t1."])
def test_consumer_groups_when_every_process_names_its_group_then_only_its_owner_is_granted_it(prefix: str) -> None:
    # Arrange: the group names the processes use
    settings = load_settings(kafka={"topic_prefix": prefix})
    execution = settings.execution.consumer_group
    used = {
        DATAFLOW: ["tickwave-streams-unused"],
        LOADER: [f"{prefix}tickwave-streams-loader"],
        EXECUTION: [execution, f"{execution}-prime-1a2b", f"{execution}.fence"],
        AUDIT: [f"{execution}-audit"],
        OPERATOR: ["tickwave-cli-1a2b"],
        READER: [tail_group(load_settings(kafka={"username": READER, "topic_prefix": prefix}))],
    }
    table = [grant for grant in grants(settings) if grant.resource == "group"]

    # Act
    owners = {
        group: {
            grant.principal
            for grant in table
            if group == grant.name or (grant.is_prefix and group.startswith(grant.name))
        }
        for groups in used.values()
        for group in groups
    }

    # Assert
    assert owners == {group: {principal} for principal, groups in used.items() for group in groups}


def test_consumer_groups_when_execution_granted_then_only_groups_it_names() -> None:
    # Arrange: every group the execution process names (hot loop, price read-back, fence, control listener)
    settings = load_settings()
    execution = settings.execution.consumer_group
    named = [
        execution,
        f"{execution}-prime-1a2b",
        f"{execution}.fence",
        f"{execution}.control.{settings.execution.instance_id}",
    ]

    # Act
    granted = consumer_groups(settings)[EXECUTION]

    # Assert: no grant is left over for a group nothing names
    assert [
        name for name, is_prefix in granted if not any(g == name or (is_prefix and g.startswith(name)) for g in named)
    ] == []


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_secured_properties_when_written_then_scram_on_loopback_authorizer_closed_and_super_user_admin(
    tmp_path: Path, protocol: str
) -> None:
    # Arrange
    credentials = EmbeddedCredentials(tmp_path)

    # Act
    text = server_properties(tmp_path, 1, [NodePorts(1, 2)], secured_properties(credentials, 1, 2, protocol))

    # Assert
    assert "allow.everyone.if.no.acl.found=false" in text
    assert "super.users=User:admin\n" in text
    assert f"listeners={protocol}://127.0.0.1:1,CONTROLLER://127.0.0.1:2" in text
    assert f"listener.name.{protocol.lower()}.scram-sha-512.sasl.jaas.config=" in text
    assert "PLAINTEXT://" not in text.replace("SASL_PLAINTEXT", "")
    assert ("ssl.keystore.location=" in text) == (protocol == "SASL_SSL")


@pytest.mark.parametrize(
    ("kafka", "protocol"),
    [
        ({}, "SASL_PLAINTEXT"),  # the embedded broker: SCRAM on loopback
        (
            {"bootstrap": "127.0.0.1:1", "username": "admin", "credentials_dir": "/state/secrets/kafka"},
            "SASL_PLAINTEXT",
        ),
        ({**EXTERNAL, "username": "u", "password": "p"}, "SASL_SSL"),  # a cluster of its own: TLS
    ],
)
def test_security_protocol_when_unset_then_scram_on_loopback_for_the_embedded_broker_and_tls_for_a_cluster(
    kafka: dict[str, Any], protocol: str
) -> None:
    assert load_settings(kafka=kafka).kafka.security_protocol == protocol


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_shared_section_when_embedded_broker_then_names_its_protocol(tmp_path: Path, protocol: str) -> None:
    # Arrange: a process reaching the broker by its address, as the tests and the benchmarks do
    folder = tmp_path / "secrets" / "kafka"
    EmbeddedCredentials(tmp_path).ensure_password(LOADER)
    kafka = {"bootstrap": "127.0.0.1:1", "username": LOADER, "credentials_dir": str(folder)}
    settings = load_settings(state_dir=tmp_path, kafka={**kafka, "security_protocol": protocol})

    # Act
    section = shared_section(settings)

    # Assert: the child is given the broker's protocol, not the default
    assert section == {**kafka, "security_protocol": protocol, "topic_prefix": ""}
    assert load_settings(state_dir=tmp_path / "child", kafka=section).kafka.security_protocol == protocol


def test_scram_arguments_when_principals_then_both_mechanisms_each() -> None:
    arguments = scram_arguments({"admin": "a", "ingest": "b"})

    assert arguments.count("--add-scram") == 4
    assert "SCRAM-SHA-512=[name=ingest,password=b]" in arguments


@pytest.mark.parametrize(
    ("kafka", "expected"),
    [
        ({}, {"streams": "dataflow", "execution": "execution", "audit": "audit"}),
        (
            {**EXTERNAL, "security_protocol": "SASL_SSL", "username": "svc", "password": "p"},
            {"streams": "svc", "execution": "svc", "audit": "svc"},
        ),
    ],
)
def test_own_processes_when_embedded_broker_secured_then_each_runs_as_its_principal(
    tmp_path: Path, kafka: dict[str, Any], expected: dict[str, str]
) -> None:
    # Arrange
    settings = load_settings(state_dir=tmp_path, kafka=kafka, orchestration={"enabled": False})

    # Act
    environments = {service.name: service.launch(tmp_path).env for service in own_processes(settings)}

    # Assert
    assert {name: env.get("TICKWAVE_KAFKA_USERNAME") for name, env in environments.items() if name in expected} == (
        expected
    )
    assert all("TICKWAVE_KAFKA_PASSWORD" not in env for env in environments.values()) == ("bootstrap" not in kafka)


@pytest.mark.parametrize(
    ("principal", "message"),
    [
        (None, r"set kafka.username \(TICKWAVE_KAFKA_USERNAME\) to one of its principals \(execution, ingest\)"),
        ("intruder", r"has no principal 'intruder' \(known: execution, ingest\)"),
    ],
)
def test_embedded_connection_when_principal_unknown_or_unset_then_says_which_to_set(
    tmp_path: Path, principal: str | None, message: str
) -> None:
    # Arrange
    credentials = EmbeddedCredentials(tmp_path)
    for name in (INGEST, EXECUTION):
        credentials.ensure_password(name)
    settings = load_settings(state_dir=tmp_path, kafka={"security_protocol": "SASL_SSL", "username": principal})

    # Act / Assert
    with pytest.raises(ConfigurationError, match=message):
        embedded_connection(settings, "127.0.0.1:9093")


@pytest.mark.parametrize(
    ("formatted", "protocol", "is_refused"),
    [
        ("SASL_SSL", "SASL_PLAINTEXT", False),  # the same SCRAM users: TLS dropped in place
        ("SASL_PLAINTEXT", "SASL_SSL", False),
        ("SASL_SSL", "PLAINTEXT", True),
        ("PLAINTEXT", "SASL_PLAINTEXT", True),  # no users were made at format time
    ],
)
def test_format_check_when_state_dir_formatted_for_another_protocol_then_refused_only_if_users_differ(
    tmp_path: Path, formatted: str, protocol: str, is_refused: bool
) -> None:
    # Arrange: a node formatted before, with the protocol it was formatted for
    settings = load_settings(state_dir=tmp_path, kafka={"security_protocol": protocol})
    data_dir = tmp_path / "node"
    (data_dir / "logs").mkdir(parents=True)
    (data_dir / "logs" / "meta.properties").write_text("version=1\n")
    (data_dir / "security_protocol").write_text(formatted)
    (data_dir / "brokers").write_text("1")

    # Act / Assert (no JVM is run: an already formatted node is only checked)
    if is_refused:
        with pytest.raises(ServiceError, match=f"formatted for security_protocol {formatted}, not {protocol}"):
            KafkaService(settings)._format_storage([], data_dir, data_dir / "server.properties")
    else:
        KafkaService(settings)._format_storage([], data_dir, data_dir / "server.properties")
