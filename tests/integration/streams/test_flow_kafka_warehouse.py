"""The dataflow through the real Kafka and the real warehouse, with exact expected counts."""

from __future__ import annotations

import time
from dataclasses import replace

from bytewax.testing import run_main
from confluent_kafka import TopicPartition

from adapters.bus import make_consumer, make_producer, resolve_bootstrap
from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from streams.app import production_sinks
from streams.connectors import TickTopicSource
from streams.features import FeatureSpec
from streams.flow import build_flow
from streams.loader import load_to_end
from tests.plugins.services import bus_section
from tests.unit.streams.test_flow import stream
from tests.unit.streams.tiny_model import every_timeframe, tiny_artifact
from tickwave.clock import SystemClock
from tickwave.config import Settings, load_settings
from tickwave.contracts import Signal, decode, encode
from tickwave.modeling import CHALLENGER
from tickwave.topics import SIGNALS, TICKS, TICKS_DLQ, topic_name

MINUTES = 52


def consume_topic(settings: Settings, base_name: str, expected: int, timeout_s: float = 30) -> list[bytes]:
    topic = topic_name(settings, base_name)
    consumer = make_consumer(resolve_bootstrap(settings), "check", "latency")
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, partition, 0) for partition in partitions])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(values) < expected and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is not None and not message.error():
            values.append(message.value())
    extra = consumer.poll(1.0)  # nothing more than expected
    consumer.close()
    assert extra is None, "more messages than expected"
    return values


def test_flow_when_ticks_on_kafka_and_a_challenger_in_shadow_then_exact_rows_and_only_champions_signal(
    topics: Settings, fresh_database: str
) -> None:
    settings = load_settings(
        state_dir=topics.state_dir,
        kafka=bus_section(topics),
        clickhouse={"database": fresh_database},
        streams={"late_wait_ms": 500, "close_on_wall_clock": False, "model_refresh_s": 0.01},
    )
    migrate(settings)  # a database of this test's own: exact counts
    ticks = stream(minutes=MINUTES)
    producer = make_producer(resolve_bootstrap(settings))
    for tick in ticks:
        producer.produce(topic_name(settings, TICKS), encode(tick), key=tick.symbol.encode())
    producer.produce(topic_name(settings, TICKS), b"garbage", key=b"EURUSD")
    assert producer.flush(30) == 0

    source = TickTopicSource(resolve_bootstrap(settings), topic_name(settings, TICKS), tail=False)
    provider = every_timeframe(FeatureSpec(), ("1s", "1m"), ("EURUSD", "USDJPY"))  # one champion per timeframe
    # The 1 min champion's challenger, of another model id (in the champion's slot), scored in shadow.
    challenger = tiny_artifact(FeatureSpec(), model_id="tiny_lgbm", version=1, seed=1, timeframe="1m")
    provider.artifacts.append(replace(challenger, role=CHALLENGER, slot="tiny"))
    run_main(build_flow(settings.streams, source, production_sinks(settings), provider, clock=SystemClock()))
    load_to_end(settings)

    client = connect(settings)
    count = lambda table: client.query(f"SELECT count() FROM {table} FINAL").result_rows[0][0]  # noqa: E731
    symbols, warm_1s, warm_1m = 2, MINUTES * 60 - 49, MINUTES - 49
    assert count("ticks") == len(ticks)
    assert count("bars_1s") == symbols * MINUTES * 60
    assert count("bars_1m") == symbols * MINUTES
    assert client.query("SELECT min(tick_count), max(tick_count) FROM bars_1m FINAL").result_rows == [(240, 240)]
    assert count("features") == symbols * (MINUTES * 60 + MINUTES)
    assert count("predictions") == symbols * (warm_1s + warm_1m + warm_1m)  # the challenger scored every 1 min vector
    shadow = (
        "SELECT role, model_id, model_version, count() FROM predictions FINAL WHERE timeframe = '1m' "
        "GROUP BY ALL ORDER BY ALL"
    )
    assert client.query(shadow).result_rows == [
        ("challenger", "tiny_lgbm", 1, symbols * warm_1m),  # under its own model id
        ("champion", "tiny", 1, symbols * warm_1m),
    ]
    assert count("signals") == symbols * (warm_1s + warm_1m)
    assert client.query("SELECT DISTINCT model_id FROM signals FINAL").result_rows == [("tiny",)]
    assert count("quarantine") == 1
    signals = [decode(raw, Signal) for raw in consume_topic(settings, SIGNALS, symbols * (warm_1s + warm_1m))]
    assert len({signal.signal_id for signal in signals}) == symbols * (warm_1s + warm_1m)
    assert {signal.model_id for signal in signals} == {"tiny"}  # no signal carries the challenger's model id
    assert len(consume_topic(settings, TICKS_DLQ, 1)) == 1
    client.close()


def sample_windows() -> tuple[int, int, int]:
    """Independently of the flow: ticks, distinct (symbol, second) and (symbol, minute) of the shipped sample."""
    from datetime import UTC, datetime

    from streams.ingest.sample import sample_paths

    ticks, seconds, minutes = 0, set(), set()
    for path in sample_paths():
        symbol = path.name.split("_")[0]
        for line in path.read_text().splitlines()[1:]:
            date, clock = line.split("\t")[:2]
            moment = datetime.strptime(f"{date} {clock}", "%Y.%m.%d %H:%M:%S.%f").replace(tzinfo=UTC)
            time_ms = int(moment.timestamp() * 1000)
            ticks += 1
            seconds.add((symbol, time_ms // 1000))
            minutes.add((symbol, time_ms // 60_000))
    return ticks, len(seconds), len(minutes)


def test_flow_when_sample_file_replayed_then_exact_bars_features_predictions_and_signals(
    topics: Settings, fresh_database: str
) -> None:
    from streams.ingest.sources import replay_sample

    settings = load_settings(
        state_dir=topics.state_dir,
        kafka=bus_section(topics),
        clickhouse={"database": fresh_database},
        streams={"close_on_wall_clock": False, "model_refresh_s": 0.01},
    )
    migrate(settings)  # a database of this test's own: exact counts
    report = replay_sample(settings)
    assert report.is_clean and report.dead_letters == 0

    source = TickTopicSource(resolve_bootstrap(settings), topic_name(settings, TICKS), tail=False)
    provider = every_timeframe(FeatureSpec(), ("1s", "1m"), ("EURUSD", "USDJPY", "XAUUSD"))  # the sample's symbols
    run_main(build_flow(settings.streams, source, production_sinks(settings), provider, clock=SystemClock()))
    load_to_end(settings)

    ticks, seconds, minutes = sample_windows()
    symbols = 3
    warm = seconds - symbols * 49 + max(0, minutes - symbols * 49)  # 50 bars warm a series up
    client = connect(settings)
    count = lambda table: client.query(f"SELECT count() FROM {table} FINAL").result_rows[0][0]  # noqa: E731
    assert (count("ticks"), count("bars_1s"), count("bars_1m")) == (ticks, seconds, minutes)
    assert count("features") == seconds + minutes
    assert count("predictions") == count("signals") == warm
    assert len(consume_topic(settings, SIGNALS, warm)) == warm
    client.close()
