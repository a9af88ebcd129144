"""The embedded Kafka cluster's configuration: its nodes, their ports and each node's server.properties."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from app.cli.services import start_groups
from app.services.kafka import FIXED_DESCRIPTORS, NodePorts, cluster_ports, connection_cap, server_properties
from app.services.registry import embedded_services, kafka_nodes
from app.services.resources import data_paths
from tickwave.config import load_settings
from tickwave.errors import ConfigurationError, ServiceError

NODES = [NodePorts(9092, 9093), NodePorts(9094, 9095), NodePorts(9096, 9097)]


def properties(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


@pytest.mark.parametrize("node", [1, 2, 3])
def test_server_properties_when_three_nodes_then_each_votes_with_all_and_replicates_three_times(
    tmp_path: Path, node: int
) -> None:
    # Act
    written = properties(server_properties(tmp_path / f"n{node}", node, NODES))

    # Assert
    assert written["node.id"] == str(node)
    assert written["process.roles"] == "broker,controller"
    assert written["controller.quorum.voters"] == "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
    ports = NODES[node - 1]
    assert written["listeners"] == f"PLAINTEXT://127.0.0.1:{ports.broker},CONTROLLER://127.0.0.1:{ports.controller}"
    assert written["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{ports.broker}"
    assert written["log.dirs"] == str(tmp_path / f"n{node}" / "logs")
    factors = (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
    )
    for factor in factors:
        assert written[factor] == "3", factor
    for min_isr in ("min.insync.replicas", "transaction.state.log.min.isr", "share.coordinator.state.topic.min.isr"):
        assert written[min_isr] == "2", min_isr
    assert written["unclean.leader.election.enable"] == "false"
    assert written["leader.imbalance.check.interval.seconds"] == "10"
    assert written["broker.session.timeout.ms"] == "4000"


def test_server_properties_when_one_node_then_one_voter_and_one_copy(tmp_path: Path) -> None:
    # Act
    written = properties(server_properties(tmp_path, 1, NODES[:1]))

    # Assert
    assert written["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert written["default.replication.factor"] == written["min.insync.replicas"] == "1"
    assert "leader.imbalance.check.interval.seconds" not in written
    assert "broker.session.timeout.ms" not in written


def test_cluster_ports_when_configured_then_node_n_adds_two_per_node(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, kafka={"brokers": 3, "port": 29092, "controller_port": 29093})

    assert cluster_ports(settings) == [NodePorts(29092, 29093), NodePorts(29094, 29095), NodePorts(29096, 29097)]


def test_cluster_ports_when_free_ports_then_picked_once_and_kept_for_every_node(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, kafka={"brokers": 3, "port": 0, "controller_port": 0})

    first = cluster_ports(settings)

    assert cluster_ports(settings) == first  # a node restarted later finds the quorum where it was
    assert len({port for ports in first for port in (ports.broker, ports.controller)}) == 6


def test_kafka_settings_when_cluster_ports_overlap_then_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="share ports"):
        load_settings(state_dir=tmp_path, kafka={"brokers": 3, "port": 19092, "controller_port": 19094})
    with pytest.raises(ConfigurationError):
        load_settings(state_dir=tmp_path, kafka={"brokers": 2})


def test_embedded_services_when_three_brokers_then_three_nodes_start_together_first(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, kafka={"brokers": 3})

    groups = start_groups(embedded_services(settings))

    assert [service.name for service in groups[0]] == ["kafka", "kafka-2", "kafka-3"]
    assert [service.name for service in kafka_nodes(settings)] == list(settings.kafka.node_names)
    assert all(len(group) == 1 for group in groups[1:])


def test_data_paths_when_three_brokers_then_every_node_and_the_warehouse_and_journal_are_watched(
    tmp_path: Path,
) -> None:
    # Arrange
    settings = load_settings(state_dir=tmp_path, kafka={"brokers": 3}, orchestration={"enabled": False})

    # Act
    paths = data_paths(settings, embedded_services(settings))

    # Assert: the free disk of each node's volume is shown and alerted on, not only the first's
    assert set(paths) == {"kafka", "kafka-2", "kafka-3", "warehouse", "journal"}
    assert paths["kafka-3"] == tmp_path / "data" / "kafka-3"


def test_server_properties_when_written_then_connections_bounded_idle_closed_and_creation_paced(tmp_path: Path) -> None:
    written = properties(server_properties(tmp_path, 1, NODES[:1], max_connections=800))

    assert written["max.connections"] == "800"
    assert written["max.connections.per.ip"] == "200"
    assert written["max.connections.per.ip.overrides"] == "127.0.0.1:800"
    assert int(written["connections.max.idle.ms"]) <= 60_000
    assert int(written["max.connection.creation.rate"]) > 0


@pytest.mark.parametrize(
    ("wanted", "file_limit", "log_files", "cap"),
    [
        (1000, 20_000, 40, 1000),  # these machines: far below the limit
        (1000, 4096, 40, 1752),  # never above what was asked
        (5000, 4096, 40, 1752),  # lowered: two full listeners and the JVM's own files fit the limit
        (1000, 1024, 20, 236),  # a common default hard limit still runs the broker
    ],
)
def test_connection_cap_when_file_limit_given_then_both_listeners_and_the_jvm_fit_below_it(
    wanted: int, file_limit: int, log_files: int, cap: int
) -> None:
    got = connection_cap(wanted, file_limit, log_files)

    assert got == min(wanted, cap)
    assert 2 * got + FIXED_DESCRIPTORS + 2 * log_files <= file_limit


def test_connection_cap_when_the_file_limit_leaves_almost_nothing_then_refused_with_the_fix() -> None:
    with pytest.raises(ServiceError, match="ulimit -Hn"):
        connection_cap(1000, 560, 10)


def test_cluster_ports_when_single_node_on_free_ports_then_kept_across_restarts(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, kafka={"port": 0, "controller_port": 0})

    first = cluster_ports(settings)

    assert cluster_ports(settings) == first, "a restarted broker comes back where its clients wait"


def test_cluster_ports_when_single_node_kept_port_taken_then_new_ones_picked(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, kafka={"port": 0, "controller_port": 0})
    first = cluster_ports(settings)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", first[0].broker))
        squatter.listen()

        second = cluster_ports(settings)

    assert second[0].broker != first[0].broker
    assert cluster_ports(settings) == second
