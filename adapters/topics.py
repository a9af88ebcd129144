"""The registered topics made to exist on a cluster, each with the retention of the retention table.

Topics are created explicitly (``tickwave topics create``, ``tickwave up``); the embedded broker has
auto-creation off so that a typo never silently makes a new topic. A topic that exists already keeps its
partitions (too few is an error) and gets the configured ``retention.ms`` and ``retention.bytes``
(incrementally: its other settings are left alone), so a changed retention setting reaches the cluster
on the next run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
    TopicMetadata,
)

from adapters.bus import Bootstrap, make_consumer, raise_if_denied
from adapters.retention import TopicRetention, topic_retention
from tickwave.config import Settings
from tickwave.errors import ServiceError
from tickwave.topics import topic_specs

logger = logging.getLogger(__name__)


def create_topics(
    admin: AdminClient,
    settings: Settings,
    timeout_s: float = 30.0,
    *,
    is_retention_set: bool = True,
    base_names: Collection[str] | None = None,
) -> list[str]:
    """Create the registered topics that do not exist yet; verify the partitions and set the retention of all.

    Args:
        admin: a client of the cluster.
        settings: the topics' partitions, prefix and retention.
        timeout_s: how long each step may take.
        is_retention_set: set existing topics' retention too (a process that only needs its topics to exist,
            such as ingest, passes False: its principal may not be allowed to alter topic configs).
        base_names: only these registered topics (a principal under ACLs sees only the topics it may use).

    Returns:
        The names of the topics created by this call.

    Raises:
        ServiceError: when a topic cannot be created, exists with too few partitions, or its retention cannot be set.
    """
    prefix = settings.kafka.topic_prefix
    retention = {rule.topic: rule for rule in topic_retention(settings.retention)}
    existing = admin.list_topics(timeout=timeout_s).topics
    wanted = {
        spec.name(prefix): spec for spec in topic_specs(settings) if base_names is None or spec.base_name in base_names
    }
    new = [
        NewTopic(name, num_partitions=spec.partitions, replication_factor=-1, config=retention[spec.base_name].config)
        for name, spec in wanted.items()
        if name not in existing
    ]
    created: list[str] = []
    if new:
        for name, future in admin.create_topics(new, operation_timeout=timeout_s).items():
            try:
                future.result(timeout=timeout_s)
                created.append(name)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise ServiceError(f"creating topic {name} failed: {exc.args[0].str()}") from exc
        # Metadata can lag a creation (ours or a concurrent one): check against a fresh view.
        existing = _wait_for_topics(admin, list(wanted), timeout_s)
    for name, spec in wanted.items():
        if len(existing[name].partitions) < spec.partitions:
            raise ServiceError(
                f"topic {name} has {len(existing[name].partitions)} partitions, fewer than the "
                f"{spec.partitions} configured; raise them with kafka-topics --alter or change the setting"
            )
    if created:
        logger.info("created topics %s", ", ".join(created))
    if is_retention_set:
        set_retention(admin, {name: retention[spec.base_name] for name, spec in wanted.items()}, timeout_s)
    return created


def topic_configs(admin: AdminClient, names: list[str], timeout_s: float = 30.0) -> dict[str, dict[str, str]]:
    """Return each topic's retention.ms and retention.bytes as the cluster reports them.

    A topic just created may be unknown for a moment to the node that answers (on a cluster,
    the metadata reaches each node in turn): asked again until ``timeout_s``.

    Raises:
        KafkaException: the cluster's refusal (a topic still unknown after ``timeout_s``, a denied describe).
    """
    deadline = time.monotonic() + timeout_s
    found: dict[str, dict[str, str]] = {}
    pending = list(names)
    while pending:
        resources = [ConfigResource(ResourceType.TOPIC, name) for name in pending]
        pending = []
        for resource, future in admin.describe_configs(resources, request_timeout=timeout_s).items():
            try:
                entries = future.result(timeout=timeout_s)
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                unknown = isinstance(error, KafkaError) and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
                if not unknown or time.monotonic() > deadline:
                    raise
                pending.append(resource.name)
                continue
            found[resource.name] = {key: str(entries[key].value) for key in ("retention.ms", "retention.bytes")}
        if pending:
            time.sleep(0.2)
    return found


def set_retention(admin: AdminClient, rules: dict[str, TopicRetention], timeout_s: float = 30.0) -> list[str]:
    """Give each named topic its rule's retention where the cluster's differs; return the topics changed.

    Raises:
        ServiceError: when the cluster refuses a change (e.g. the principal may not alter topic configs).
    """
    current = topic_configs(admin, list(rules), timeout_s)
    changes = [
        ConfigResource(
            ResourceType.TOPIC,
            name,
            incremental_configs=[
                ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                for key, value in rule.config.items()
                if current[name].get(key) != value
            ],
        )
        for name, rule in rules.items()
        if current[name] != rule.config
    ]
    changed = []
    if changes:
        for resource, future in admin.incremental_alter_configs(changes, request_timeout=timeout_s).items():
            try:
                future.result(timeout=timeout_s)
            except KafkaException as exc:
                raise ServiceError(
                    f"setting the retention of topic {resource.name} failed: {exc.args[0].str()}"
                ) from exc
            changed.append(resource.name)
        _wait_for_retention(admin, {name: rules[name] for name in changed}, timeout_s)
        logger.info("set the retention of topics %s", ", ".join(sorted(changed)))
    return sorted(changed)


def _wait_for_retention(admin: AdminClient, rules: dict[str, TopicRetention], timeout_s: float) -> None:
    # An accepted change reaches the brokers through the metadata log: describe can show the old value briefly.
    deadline = time.monotonic() + timeout_s
    while True:
        current = topic_configs(admin, list(rules), timeout_s)
        behind = sorted(name for name, rule in rules.items() if current[name] != rule.config)
        if not behind:
            return
        if time.monotonic() > deadline:
            raise ServiceError(f"the retention of topics {', '.join(behind)} was accepted but not applied in time")
        time.sleep(0.1)


def _wait_for_topics(admin: AdminClient, names: list[str], timeout_s: float) -> dict[str, TopicMetadata]:
    deadline = time.monotonic() + timeout_s
    while True:
        topics = admin.list_topics(timeout=timeout_s).topics
        missing = [name for name in names if name not in topics or topics[name].error is not None]
        if not missing:
            return dict(topics)
        if time.monotonic() > deadline:
            raise ServiceError(f"topics {', '.join(missing)} did not appear within {timeout_s:.0f} s")
        time.sleep(0.1)


@dataclass(frozen=True)
class Record:
    """One message as it sits on a partition (what ``tickwave topics tail`` prints)."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


def last_records(bootstrap: Bootstrap, topic: str, count: int, group_id: str, timeout_s: float = 15.0) -> list[Record]:
    """Return the last ``count`` messages of every partition of ``topic``, oldest first per partition.

    Reads by assignment (it joins no consumer group and commits nothing; the cluster still
    checks ``group_id``), with the connection's security, as ``kcat -C -o -<count> -e`` does.

    Raises:
        ConfigurationError: when the cluster refuses the principal the topic (naming both).
        ServiceError: when the topic does not exist or the messages do not arrive in ``timeout_s``.
    """
    consumer = make_consumer(bootstrap, group_id, "latency", **{"enable.partition.eof": True})
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        raise_if_denied(metadata.error if metadata else None, bootstrap, topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise ServiceError(f"topic {topic!r} does not exist on the cluster ({metadata.error if metadata else ''})")
        starts: list[TopicPartition] = []
        ends: dict[int, int] = {}
        for partition in sorted(metadata.partitions):
            try:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
            except KafkaException as exc:
                raise_if_denied(exc.args[0], bootstrap, topic)
                raise
            if high > low:
                starts.append(TopicPartition(topic, partition, max(low, high - count)))
                ends[partition] = high
        records: list[Record] = []
        consumer.assign(starts)
        deadline = time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                ends.pop(message.partition(), None)
                continue
            raise_if_denied(error, bootstrap, topic)
            if error is not None:
                raise ServiceError(f"reading {topic!r} failed: {error}")
            partition, offset = message.partition(), message.offset()
            records.append(Record(partition, offset, message.timestamp()[1], message.key(), message.value()))
            if offset + 1 >= ends.get(partition, 0):
                ends.pop(partition, None)
        if ends:
            raise ServiceError(f"reading {topic!r}: partitions {sorted(ends)} did not answer in {timeout_s:g} s")
        return records
    finally:
        consumer.close()
