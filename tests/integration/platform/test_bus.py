"""Produce and consume through the real embedded Kafka broker."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

from adapters.bus import (
    PREFETCH_KBYTES,
    Profile,
    broker_answers,
    default_partition,
    make_admin,
    make_consumer,
    make_producer,
    resolve_bootstrap,
)
from adapters.endpoints import Endpoint
from adapters.retention import topic_retention
from adapters.topics import create_topics, topic_configs
from app.demo import demo_ticks
from tests.plugins.services import bus_environment, bus_section
from tickwave.config import Settings, load_settings
from tickwave.contracts import Tick, decode, encode
from tickwave.errors import ServiceError
from tickwave.topics import ORDERS_EVENTS, TICKS, topic_name, topic_specs


def consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 20.0) -> list[Tick]:
    consumer = make_consumer(bootstrap, f"test-{topic}", "latency")
    consumer.subscribe([topic])
    received: list[Tick] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(received) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                received.append(decode(message.value(), Tick))
    finally:
        consumer.close()
    return received


def test_create_topics_when_run_twice_then_second_run_creates_nothing(settings: Settings) -> None:
    admin = make_admin(resolve_bootstrap(settings))
    specs = topic_specs(settings)

    created = create_topics(admin, settings)
    again = create_topics(admin, settings)

    assert sorted(created) == sorted(spec.name(settings.kafka.topic_prefix) for spec in specs)
    assert again == []
    listed = admin.list_topics(timeout=10).topics
    assert len(listed[topic_name(settings, TICKS)].partitions) == settings.kafka.ticks_partitions


def test_create_topics_when_existing_topic_has_fewer_partitions_then_error(settings: Settings) -> None:
    admin = make_admin(resolve_bootstrap(settings))
    create_topics(admin, settings)
    wider = load_settings(
        state_dir=settings.state_dir,
        kafka=bus_section(settings, ticks_partitions=settings.kafka.ticks_partitions + 2),
    )

    with pytest.raises(ServiceError, match="fewer than the"):
        create_topics(admin, wider)


def test_create_topics_when_retention_configured_then_kafka_reports_it_and_a_change_reaches_existing_topics(
    settings: Settings,
) -> None:
    admin = make_admin(resolve_bootstrap(settings))
    names = {topic_name(settings, spec.base_name): spec.base_name for spec in topic_specs(settings)}
    create_topics(admin, settings)
    rules = {rule.topic: rule.config for rule in topic_retention(settings.retention)}

    assert topic_configs(admin, list(names)) == {name: rules[base] for name, base in names.items()}
    assert rules[TICKS] == {"retention.ms": str(7 * 86_400_000), "retention.bytes": str(8 << 30)}
    assert rules[ORDERS_EVENTS]["retention.bytes"] == "-1"  # the audit trail is never cut by size

    changed = load_settings(
        state_dir=settings.state_dir,
        kafka=settings.kafka.model_dump(),
        retention={"topic_retention_ms": {TICKS: 3_600_000}, "topic_retention_bytes": {TICKS: 1 << 20}},
    )
    assert create_topics(admin, changed) == []  # nothing created: the existing topic is altered

    after = topic_configs(admin, list(names))
    assert after[topic_name(settings, TICKS)] == {"retention.ms": "3600000", "retention.bytes": str(1 << 20)}
    assert after[topic_name(settings, ORDERS_EVENTS)] == rules[ORDERS_EVENTS]


def test_topic_configs_when_the_topic_appears_a_moment_later_then_asked_again_until_known(
    settings: Settings,
) -> None:
    admin = make_admin(resolve_bootstrap(settings))
    name = f"{settings.kafka.topic_prefix}late-{time.monotonic_ns()}"
    creator = threading.Timer(1.0, lambda: admin.create_topics([NewTopic(name, 1, 1)])[name].result(10))
    creator.start()
    try:
        started = time.monotonic()
        configs = topic_configs(admin, [name], timeout_s=20)

        assert configs[name]["retention.ms"] == "604800000"  # the broker's default: the topic was found
        assert time.monotonic() - started >= 0.9  # it was asked for before it existed
    finally:
        creator.join()
        admin.delete_topics([name])


def test_topic_configs_when_the_topic_never_appears_then_the_cluster_refusal_after_the_timeout(
    settings: Settings,
) -> None:
    admin = make_admin(resolve_bootstrap(settings))

    with pytest.raises(KafkaException):
        topic_configs(admin, [f"{settings.kafka.topic_prefix}never-{time.monotonic_ns()}"], timeout_s=1)


def test_produce_consume_when_ticks_keyed_by_symbol_then_all_arrive_in_order_per_symbol(topics: Settings) -> None:
    bootstrap = resolve_bootstrap(topics)
    topic = topic_name(topics, TICKS)
    sent = demo_ticks(400, now_ms=1_700_000_000_000)
    producer = make_producer(bootstrap, "bulk")
    for tick in sent:
        producer.produce(topic, key=tick.symbol.encode(), value=encode(tick))
    assert producer.flush(10) == 0

    received = consume_all(bootstrap, topic, len(sent))

    assert sorted(received, key=lambda t: t.time_ms) == sent
    for symbol in ("EURUSD", "USDJPY"):
        times = [tick.time_ms for tick in received if tick.symbol == symbol]
        assert times == sorted(times)  # one symbol -> one partition -> order kept


def test_broker_when_it_reads_lz4_batches_then_its_native_library_comes_from_its_own_state_dir(
    topics: Settings, kafka_endpoint: Endpoint, state_dir: Path
) -> None:
    producer = make_producer(resolve_bootstrap(topics), "bulk")  # lz4-compressed batches
    for tick in demo_ticks(200, now_ms=1_700_000_000_000):
        producer.produce(topic_name(topics, TICKS), key=tick.symbol.encode(), value=encode(tick))
    assert producer.flush(10) == 0

    maps = Path(f"/proc/{kafka_endpoint.pid}/maps").read_text().splitlines()
    libraries = {Path(line.split()[-1]) for line in maps if "liblz4-java" in line}

    assert libraries, "the broker has not loaded lz4-java's native library"
    assert all(state_dir in library.parents for library in libraries), libraries  # not left in /tmp


def test_produce_when_topic_not_registered_then_not_auto_created(topics: Settings) -> None:
    bootstrap = resolve_bootstrap(topics)
    producer = make_producer(bootstrap, "latency", **{"message.timeout.ms": 2000})
    errors: list[str] = []
    producer.produce(
        f"{topics.kafka.topic_prefix}typo", value=b"x", on_delivery=lambda err, _msg: errors.append(str(err))
    )
    producer.flush(5)

    assert errors and errors[0] != "None"
    assert f"{topics.kafka.topic_prefix}typo" not in make_admin(bootstrap).list_topics(timeout=5).topics


def test_latency_profile_when_round_trip_then_well_under_fetch_wait_default(topics: Settings) -> None:
    bootstrap = resolve_bootstrap(topics)
    topic = topic_name(topics, TICKS)
    producer = make_producer(bootstrap, "latency")
    consumer = make_consumer(bootstrap, "latency-probe", "latency")
    consumer.assign([TopicPartition(topic, p, 0) for p in range(topics.kafka.ticks_partitions)])
    tick = demo_ticks(1, now_ms=1_700_000_000_000)[0]
    producer.produce(topic, key=b"EURUSD", value=encode(tick))
    producer.flush(5)
    assert consumer.poll(10) is not None  # warm up: connections and fetch sessions
    round_trips = []
    for _ in range(20):
        started = time.perf_counter()
        producer.produce(topic, key=b"EURUSD", value=encode(tick))
        producer.poll(0)
        message = None
        while message is None:
            message = consumer.poll(1)
        round_trips.append(time.perf_counter() - started)
    consumer.close()

    assert sorted(round_trips)[len(round_trips) // 2] < 0.25  # the 500 ms fetch wait default would dominate


@pytest.mark.parametrize("profile", ["bulk", "live", "latency"])
def test_default_partition_when_keyed_messages_produced_then_where_librdkafka_put_them(
    settings: Settings, profile: Profile
) -> None:
    bootstrap = resolve_bootstrap(settings)
    topic = f"{settings.kafka.topic_prefix}partitioner-{profile}"
    partitions = 7
    admin = make_admin(bootstrap)  # kept until the topic exists: a collected client cancels its request
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    keys = [f"SYM{number}".encode() for number in range(60)] + [b"EURUSD", b"XAUUSD", b"\xff\x00"]
    placed: dict[bytes, int] = {}

    def delivered(error: object, message: Any) -> None:
        assert error is None, error
        placed[message.key()] = message.partition()

    producer = make_producer(bootstrap, profile)
    for key in keys:
        producer.produce(topic, b"x", key, on_delivery=delivered)
    assert producer.flush(30) == 0

    assert placed == {key: default_partition(key, partitions) for key in keys}
    assert len(set(placed.values())) == partitions  # spread: a constant would not match by chance


def test_broker_answers_when_nothing_listens_then_false_quickly() -> None:
    from adapters.endpoints import free_port

    started = time.monotonic()

    assert broker_answers(f"127.0.0.1:{free_port()}", timeout_s=1) is False
    assert time.monotonic() - started < 3


BEHIND = """
import os, sys, time
from confluent_kafka import TopicPartition
from adapters.bus import make_consumer, resolve_bootstrap
from adapters.process_memory import allocated_bytes
from tickwave.config import load_settings
topic, profile = sys.argv[1:3]
consumer = make_consumer(resolve_bootstrap(load_settings()), "behind", profile)
before, grown = allocated_bytes(os.getpid()), 0
consumer.assign([TopicPartition(topic, partition, 0) for partition in range(6)])
deadline = time.monotonic() + 6
while time.monotonic() < deadline:  # one record a call: an application far behind its fetcher
    consumer.consume(1, 0.05)
    grown = max(grown, allocated_bytes(os.getpid()) - before)
consumer.close()
print(grown)
"""


@pytest.mark.parametrize("profile", ["bulk", "latency"])
def test_consumer_when_behind_a_backlog_then_what_it_fetches_ahead_is_bounded(
    settings: Settings, profile: Profile
) -> None:
    bootstrap = resolve_bootstrap(settings)
    topic = f"{settings.kafka.topic_prefix}backlog-{profile}"
    admin = make_admin(bootstrap)  # kept until the topic exists: a collected client cancels its request
    admin.create_topics([NewTopic(topic, 6, 1)])[topic].result(30)
    producer = make_producer(bootstrap, "bulk")
    payload = os.urandom(96 << 20)
    for offset in range(0, len(payload), 800):  # 96 MiB in 800-byte records: a backlog bigger than any bound
        producer.produce(topic, payload[offset : offset + 800], str(offset % 6).encode())
        producer.poll(0)
    assert producer.flush(60) == 0

    behind = subprocess.run(
        [sys.executable, "-c", BEHIND, topic, profile],
        env={**os.environ, **bus_environment(settings), "TICKWAVE_STATE_DIR": str(settings.state_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    grown = int(behind.stdout.split()[-1])

    # 16 MiB queued (PREFETCH_KBYTES) and the fetches in flight; librdkafka's defaults (100,000 records,
    # 64 MiB) grew the process by 98 MiB here.
    assert grown <= (PREFETCH_KBYTES << 10) + (24 << 20), grown >> 20
