"""Every principal of the authenticated default, tried on every topic and every consumer group.

On the session broker (the embedded default: SASL_PLAINTEXT, SCRAM, the registry's ACLs on this
test's topics), each principal writes one message to every registered topic, reads every
topic from its start and commits an offset under every principal's consumer group. What the
broker allows must be what the registry grants, no more: ``ticks`` written by ingest only,
``signals`` by the dataflow only, ``orders.events`` by execution only, ``execution.control``
by the operator only, and each consumer group used by its owner only.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

from adapters.acls import consumer_groups, grants
from adapters.bus import as_principal, consumer_config, make_admin, producer_config, resolve_admin, resolve_bootstrap
from tickwave.config import Settings
from tickwave.topics import (
    DATAFLOW,
    EXECUTION,
    EXECUTION_CONTROL,
    INGEST,
    OPERATOR,
    ORDERS_EVENTS,
    PRINCIPALS,
    SIGNALS,
    TICKS,
    topic_name,
    topic_specs,
)

DENIED = (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED)


def _topics(settings: Settings) -> list[str]:
    return [spec.name(settings.kafka.topic_prefix) for spec in topic_specs(settings)]


def _allowed(settings: Settings, operation: str) -> set[tuple[str, str]]:
    """(principal, topic) pairs the registry grants ``operation``."""
    return {
        (grant.principal, grant.name)
        for grant in grants(settings)
        if grant.resource == "topic" and grant.operation == operation
    }


def _writes(settings: Settings, principal: str) -> dict[str, KafkaError | None]:
    """Write one message to every topic as ``principal``; return each topic's delivery error (None: written)."""
    config = producer_config(
        resolve_bootstrap(as_principal(settings, principal)), "live", **{"message.timeout.ms": 8000}
    )
    producer = Producer(config)
    outcome: dict[str, KafkaError | None] = {}
    for topic in _topics(settings):
        producer.produce(
            topic,
            f"from {principal}".encode(),
            on_delivery=lambda error, message: outcome.update({message.topic(): error}),
        )
    producer.flush(15)
    return outcome


def _reads(settings: Settings, principal: str, group: str) -> dict[str, KafkaError | None]:
    """Read each topic from its start as ``principal``; return each topic's error (None: a message was read)."""
    connection = resolve_bootstrap(as_principal(settings, principal))
    outcome: dict[str, KafkaError | None] = {}
    for topic in _topics(settings):  # a consumer each: one fetch's refusal is reported for one of its topics
        consumer = Consumer(consumer_config(connection, group, "latency"))
        # A topic the principal may not even describe is refused in its metadata; one it may describe
        # but not read, in the fetch.
        described = consumer.list_topics(topic, timeout=10).topics[topic].error
        if described is not None:
            outcome[topic] = described
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + 10
        try:
            while topic not in outcome and time.monotonic() < deadline:
                message = consumer.poll(0.2)
                if message is not None:
                    outcome[topic] = message.error()
        finally:
            consumer.close()
    return outcome


def _owned_group(name: str, is_prefix: bool) -> str:
    return f"{name}probe" if is_prefix else name


def test_acls_when_listed_then_the_broker_holds_exactly_the_registry_grants(topics: Settings) -> None:
    # Arrange
    admin = make_admin(resolve_admin(topics))
    mine = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    prefix = topics.kafka.topic_prefix

    # Act
    listed = admin.describe_acls(mine, request_timeout=15).result(timeout=15)

    # Assert: this test's topics carry the registry's grants and nothing else
    on_my_topics = {
        binding for binding in listed if binding.name.startswith(prefix) and binding.name in _topics(topics)
    }
    expected = {grant.binding() for grant in grants(topics) if grant.resource == "topic"}
    assert on_my_topics == expected
    writers = {name: {p for p, topic in _allowed(topics, "WRITE") if topic == name} for name in _topics(topics)}
    assert writers[topic_name(topics, TICKS)] == {INGEST}
    assert writers[topic_name(topics, SIGNALS)] == {DATAFLOW}
    assert writers[topic_name(topics, ORDERS_EVENTS)] == {EXECUTION}
    assert writers[topic_name(topics, EXECUTION_CONTROL)] == {OPERATOR}


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_acls_when_a_principal_writes_and_reads_every_topic_then_only_its_grants_succeed(
    topics: Settings, principal: str
) -> None:
    # Arrange: one message on every topic, so an allowed read has something to read
    admin_producer = Producer(producer_config(resolve_admin(topics), "latency"))
    for topic in _topics(topics):
        admin_producer.produce(topic, b"seed")
    assert admin_producer.flush(15) == 0
    owned = consumer_groups(topics).get(principal, (("tickwave-tools-", True),))
    group = _owned_group(*owned[0])

    # Act
    writes = _writes(topics, principal)
    reads = _reads(topics, principal, group)

    # Assert: every topic answered, and each answer is the registry's
    assert set(writes) == set(reads) == set(_topics(topics)), (writes, reads)
    for topic in _topics(topics):
        may_write, may_read = (
            (principal, topic) in _allowed(topics, "WRITE"),
            (principal, topic) in _allowed(topics, "READ"),
        )
        assert (writes[topic] is None) == may_write, (principal, "write", topic, writes[topic])
        assert (reads[topic] is None) == may_read, (principal, "read", topic, reads[topic])
        for error in (writes[topic], reads[topic]):
            assert error is None or error.code() in DENIED, (principal, topic, error)


@pytest.mark.parametrize("owner", sorted({principal for principal in PRINCIPALS if principal != "analyst"} - {INGEST}))
def test_consumer_groups_when_each_principal_commits_under_another_s_then_only_the_owner_may(
    topics: Settings, owner: str
) -> None:
    # Arrange: a group the owner owns, and for each principal a topic it may read
    groups = consumer_groups(topics)
    group = _owned_group(*groups[owner][0])
    readable = {principal: topic for principal, topic in sorted(_allowed(topics, "READ"))}
    outcome: dict[str, str] = {}

    # Act: each reading principal commits offset 0 of a topic it reads, under the owner's group (as an admin
    # client does: a consumer refused the group's coordinator only waits for one)
    for principal, topic in readable.items():
        client = make_admin(resolve_bootstrap(as_principal(topics, principal)))
        offsets = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 0)])
        try:
            client.alter_consumer_group_offsets([offsets], request_timeout=15)[group].result(timeout=15)
            outcome[principal] = "committed"
        except KafkaException as exc:
            outcome[principal] = exc.args[0].name()
    admin = make_admin(resolve_admin(topics))
    request = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=15)
    # The execution's groups are named without the test's prefix: an earlier test on this broker may have
    # committed under them too (its own topics), which is no part of this test.
    prefix = topics.kafka.topic_prefix
    stored = {tp.topic for tp in request[group].result(timeout=15).topic_partitions if tp.topic.startswith(prefix)}

    # Assert: the owner committed; every other principal was refused, and the group holds the owner's offset only
    assert {principal for principal, result in outcome.items() if result == "committed"} == {owner}, outcome
    assert stored == {readable[owner]}
