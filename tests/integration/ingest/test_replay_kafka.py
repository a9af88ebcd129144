"""Replay through the real Kafka: the sample round-trips exactly; bad lines go to the DLQ."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from adapters.bus import resolve_bootstrap
from streams.ingest.adapters.files import ReplayOptions, ReplaySource
from streams.ingest.adapters.kafka import KafkaSink
from streams.ingest.runner import run_ingest
from streams.ingest.sample import sample_paths
from tests.integration.ingest.kafka_reading import message_count, read_dead_letters, read_ticks
from tickwave.clock import SystemClock
from tickwave.config import Settings
from tickwave.contracts import Tick
from tickwave.timezones import WallClock
from tickwave.topics import TICKS, TICKS_DLQ, topic_name


def expected_ticks(path: Path) -> list[Tick]:
    """Read an MT5 export the simple way: one line at a time, empty prices repeat the last."""
    symbol = path.name.split("_")[0]
    ticks: list[Tick] = []
    bid = ask = 0.0
    for line in path.read_text().splitlines()[1:]:
        date, time, bid_text, ask_text, _last, _volume, flags = line.split("\t")
        bid, ask = float(bid_text or bid), float(ask_text or ask)
        moment = datetime.strptime(f"{date} {time}", "%Y.%m.%d %H:%M:%S.%f").replace(tzinfo=UTC)
        time_ms = round(moment.timestamp() * 1000)
        seq = ticks[-1].seq + 1 if ticks and ticks[-1].time_ms == time_ms else 0
        ticks.append(Tick(symbol, time_ms, seq, bid, ask, 0.0, 0.0, int(flags), "replay"))
    return ticks


def replay(settings: Settings, paths: list[Path]) -> None:
    bootstrap = resolve_bootstrap(settings)
    stop = threading.Event()
    options = ReplayOptions(clock=WallClock("UTC"), batch_ticks=1000)
    source = ReplaySource(
        paths, options, settings.symbols, settings.ingest.max_source_clock_lead_ms, stop, SystemClock()
    )
    sink = KafkaSink(bootstrap, topic_name(settings, TICKS), topic_name(settings, TICKS_DLQ), "replay", SystemClock())
    report = run_ingest(source, sink, stop, flush_timeout_s=30)
    assert report.is_clean


def test_replay_when_sample_files_then_every_tick_round_trips_exactly(topics: Settings) -> None:
    bootstrap = resolve_bootstrap(topics)

    replay(topics, sample_paths())

    received = read_ticks(bootstrap, topic_name(topics, TICKS))
    by_symbol: dict[str, list[Tick]] = defaultdict(list)
    for key, tick in received:
        assert key == tick.symbol.encode()
        by_symbol[tick.symbol].append(tick)
    expected = {path.name.split("_")[0]: expected_ticks(path) for path in sample_paths()}
    assert sum(len(ticks) for ticks in expected.values()) == len(received) == 4_600
    for symbol, ticks in expected.items():
        # One symbol lives in one partition, so its order survives; compare the full content.
        assert by_symbol[symbol] == ticks
    assert message_count(bootstrap, topic_name(topics, TICKS_DLQ)) == 0


def test_replay_when_file_has_bad_lines_then_they_reach_the_dlq_and_good_lines_are_unaffected(
    topics: Settings, tmp_path: Path
) -> None:
    bootstrap = resolve_bootstrap(topics)
    good = [f"2024.03.04\t08:00:0{i}.000\t1.0850{i}\t1.0851{i}\t\t\t6" for i in range(6)]
    bad = {
        "2024.03.04\t08:00:02.500\t1.08600\t1.08500\t\t\t6": "ask_below_bid",
        "2024.03.04\t08:00:02.600\tnan\t1.08500\t\t\t6": "non_finite",
        "2024.03.04\t08:00:02.700\t-1\t1.08500\t\t\t6": "non_positive",
        "garbage without tabs": "wrong_column_count",
        "2024.02.30\t08:00:02.800\t1.08500\t1.08510\t\t\t6": "unparseable",
        "2099.03.04\t08:00:02.900\t1.08500\t1.08510\t\t\t6": "future_timestamp",
        "2024.03.04\t07:59:00.000\t1.08500\t1.08510\t\t\t6": "out_of_order",
    }
    lines = [*good[:3], *bad, *good[3:]]
    path = tmp_path / "EURUSD_202403040800_202403040801.csv"
    path.write_text("\n".join(["<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>", *lines]) + "\n")

    replay(topics, [path])

    ticks = [tick for _key, tick in read_ticks(bootstrap, topic_name(topics, TICKS))]
    letters = read_dead_letters(bootstrap, topic_name(topics, TICKS_DLQ))
    assert [tick.bid for tick in ticks] == [float(line.split("\t")[2]) for line in good]
    assert {letter.raw: letter.reason.split(":")[0] for _key, letter in letters} == bad
    for key, letter in letters:
        assert letter.source == f"replay:{path.name}"
        assert letter.symbol == "EURUSD" and key == b"EURUSD"
        assert letter.reason.split(": ", 1)[1]


def test_replay_when_kafka_cannot_deliver_then_failures_counted_and_run_not_clean(settings: Settings) -> None:
    stop = threading.Event()
    source = ReplaySource(
        sample_paths()[:1], ReplayOptions(clock=WallClock("UTC")), settings.symbols, 60_000, stop, SystemClock()
    )
    missing = f"{settings.kafka.topic_prefix}no-such-topic"  # auto-creation is off on the embedded broker
    sink = KafkaSink(
        resolve_bootstrap(settings), missing, missing, "replay", SystemClock(), **{"message.timeout.ms": 1500}
    )

    report = run_ingest(source, sink, stop, flush_timeout_s=20)

    assert report.ticks == 1_788
    assert report.delivery_failures == 1_788
    assert not report.is_clean
