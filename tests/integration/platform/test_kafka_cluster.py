"""The embedded three-node Kafka cluster: replication 3, min ISR 2, and no acknowledged write lost to a kill -9.

Three KRaft nodes on free loopback ports, each its own process under the supervisor, as
`tickwave up` starts them with ``kafka.brokers = 3``; stopped at the end, even on failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

from adapters.bus import make_admin, make_consumer, make_producer, resolve_bootstrap
from adapters.bus_credentials import ADMIN
from app.services.kafka import KafkaService
from app.services.registry import kafka_nodes
from app.services.supervisor import Supervisor
from tests.chaos.cluster import partitions
from tickwave.config import Settings, load_settings
from tickwave.topics import TICKS, topic_name, topic_specs


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, list[KafkaService]]]:
    """Three nodes started together, with the registered topics created as `tickwave up` does."""
    settings = load_settings(
        state_dir=tmp_path_factory.mktemp("tickwave-cluster"),
        kafka={"brokers": 3, "port": 0, "controller_port": 0, "heap_mb": 256, "username": ADMIN},
    )  # the authenticated default, its clients as the super user
    supervisor, nodes = Supervisor(settings), kafka_nodes(settings)
    try:
        supervisor.start_together(nodes)
        nodes[0].after_start()
        yield settings, nodes
    finally:
        supervisor.stop_together(nodes)


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll ``condition`` until it holds (a metadata request that times out, to a dead node: not yet)."""
    started = time.monotonic()
    while True:
        with contextlib.suppress(KafkaException):
            if condition():
                return time.monotonic() - started
        assert time.monotonic() - started < timeout_s, f"{what} within {timeout_s:.0f} s"
        time.sleep(0.2)


def test_cluster_when_started_then_every_topic_has_three_replicas_in_sync_and_min_isr_two(
    cluster: tuple[Settings, list[KafkaService]],
) -> None:
    settings, _nodes = cluster
    admin = make_admin(resolve_bootstrap(settings))
    names = [spec.name(settings.kafka.topic_prefix) for spec in topic_specs(settings)]

    found = partitions(admin, names)
    configs = admin.describe_configs([ConfigResource(ResourceType.TOPIC, name) for name in names])

    assert {topic for topic, _number in found} == set(names)
    assert all(sorted(replicas) == sorted(isr) == [1, 2, 3] for _leader, replicas, isr in found.values()), found
    for resource, future in configs.items():
        assert future.result(timeout=10)["min.insync.replicas"].value == "2", resource.name
    assert len(resolve_bootstrap(settings).bootstrap.split(",")) == 3


def test_cluster_when_leader_killed_while_producing_then_no_acknowledged_message_lost_and_node_rejoins_isr(
    cluster: tuple[Settings, list[KafkaService]],
) -> None:
    # Arrange: a producer as ingest's (acks=all) writing numbered messages to the ticks topic
    settings, nodes = cluster
    supervisor = Supervisor(settings)
    bootstrap = resolve_bootstrap(settings)
    admin = make_admin(bootstrap)
    topic = topic_name(settings, TICKS)
    acknowledged: set[int] = set()
    stop = threading.Event()

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is None:
            acknowledged.add(int(message.value()))

    def produce() -> None:
        producer = make_producer(bootstrap, "bulk", **{"linger.ms": 1})
        number = 0
        while not stop.is_set():
            for _ in range(200):
                producer.produce(topic, key=b"EURUSD", value=str(number).encode(), on_delivery=delivered)
                number += 1
            producer.poll(0.01)
        producer.flush(60)

    producing = threading.Thread(target=produce, name="producer")
    producing.start()
    try:
        wait_for(lambda: len(acknowledged) > 5_000, 20, "the first writes acknowledged")
        leader = partitions(admin, [topic])[(topic, 0)][0]
        victim = nodes[leader - 1]
        endpoint = supervisor.endpoint(victim.name)
        assert endpoint is not None

        # Act: kill -9 the partition's leader mid-stream, write on, then start it again
        os.kill(endpoint.pid, signal.SIGKILL)
        wait_for(lambda: partitions(admin, [topic])[(topic, 0)][0] not in (leader, -1), 30, "leadership moved")
        during = len(acknowledged)
        wait_for(lambda: len(acknowledged) > during + 5_000, 20, "writes acknowledged without the dead node")
        supervisor.start(victim)
        names = [spec.name(settings.kafka.topic_prefix) for spec in topic_specs(settings)]
        wait_for(
            lambda: all(leader in isr for _lead, _replicas, isr in partitions(admin, names).values()),
            40,
            "the restarted node back in every partition's ISR",
        )
    finally:
        stop.set()
        producing.join(90)

    # Assert: everything the cluster acknowledged is on the topic
    consumer = make_consumer(bootstrap, "cluster-check")
    end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    consumer.assign([TopicPartition(topic, 0, 0)])
    read: set[int] = set()
    position = 0
    while position < end:
        for message in consumer.consume(10_000, 2.0):
            if message.error() is None:
                read.add(int(message.value()))
                position = message.offset() + 1
    consumer.close()
    lost = acknowledged - read
    assert len(acknowledged) > 10_000
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged messages lost, e.g. {sorted(lost)[:5]}"
