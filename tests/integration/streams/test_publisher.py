"""The flow's publisher on the real broker: a batch keeps each symbol's partition and order, signed if asked.

A refused batch raises.
"""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

from adapters.bus import NOT_IDEMPOTENT, make_admin, make_consumer, resolve_bootstrap
from adapters.signing import refusal
from streams.connectors import Publisher
from tickwave.config import Settings
from tickwave.contracts import Signal, decode
from tickwave.errors import ServiceError

SYMBOLS = ("EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCAD", "USDCHF", "NZDUSD", "EURJPY", "XAUUSD", "EURGBP")
PARTITIONS = 3
KEY = b"k" * 32


def signal(symbol: str, second: int) -> Signal:
    bar_start_ms = 1_700_000_000_000 + 1000 * second
    return Signal(
        signal_id=Signal.make_id("m", 1, symbol, "1s", bar_start_ms),
        symbol=symbol,
        timeframe="1s",
        bar_start_ms=bar_start_ms,
        direction="long",
        strength=0.5,
        confidence=0.6,
        model_id="m",
        model_version=1,
        created_at_ms=bar_start_ms + 1000,
    )


@pytest.mark.parametrize("signing_key", [None, KEY], ids=["unsigned", "signed"])
def test_publisher_when_batches_of_symbols_then_each_symbol_on_one_partition_in_order(
    settings: Settings, signing_key: bytes | None
) -> None:
    bootstrap = resolve_bootstrap(settings)
    topic = f"{settings.kafka.topic_prefix}publisher"
    admin = make_admin(bootstrap)  # kept until the topic exists: a collected client cancels its request
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    publisher = Publisher(bootstrap, topic, "latency", signing_key=signing_key, **NOT_IDEMPOTENT)
    for second in range(5):  # as the flow sends them: all the symbols' signals of a second in one call
        publisher.publish([signal(symbol, second) for symbol in SYMBOLS])
    publisher.flush()

    consumer = make_consumer(bootstrap, "publisher-check", "latency")
    consumer.assign([TopicPartition(topic, partition, 0) for partition in range(PARTITIONS)])
    partitions: dict[str, set[int]] = {}
    seconds: dict[str, list[int]] = {}
    for message in consumer.consume(len(SYMBOLS) * 5, timeout=30):
        assert message.error() is None, message.error()
        received = decode(message.value(), Signal)
        verdict = refusal("signal", message.value(), message.headers(), KEY)
        assert verdict == (None if signing_key else "unsigned signal"), verdict  # signed: every message, all of it
        assert message.key() == received.symbol.encode()
        partitions.setdefault(received.symbol, set()).add(message.partition())
        seconds.setdefault(received.symbol, []).append(received.bar_start_ms)
    consumer.close()

    assert sorted(seconds) == sorted(SYMBOLS)
    assert all(len(found) == 1 for found in partitions.values())  # keyed: a symbol stays on its partition
    assert len(set().union(*partitions.values())) > 1  # and the symbols spread over the partitions
    assert all(starts == sorted(starts) and len(starts) == 5 for starts in seconds.values())


def test_publisher_when_its_queue_refuses_part_of_a_batch_then_service_error_says_how_many() -> None:
    # A producer with room for 5 messages and no broker to drain it: the second half of the batch is refused.
    publisher = Publisher("127.0.0.1:1", "signals", "latency", **{"queue.buffering.max.messages": 5})

    with pytest.raises(ServiceError, match=r"5 messages not queued.*Queue full"):
        publisher.publish([signal(symbol, 0) for symbol in SYMBOLS])
