"""The MT5 source (fake terminal) through the real Kafka: a restart in the middle loses nothing."""

from __future__ import annotations

import threading

from adapters.bus import resolve_bootstrap
from adapters.mt5.terminal import Terminal
from streams.ingest.adapters.kafka import KafkaSink
from streams.ingest.adapters.mt5 import Mt5Source
from streams.ingest.logic import TickValidator
from streams.ingest.runner import run_ingest
from tests.integration.ingest.kafka_reading import read_ticks
from tests.unit.ingest.helpers import T0, ScriptedTerminal
from tickwave.clock import ManualClock
from tickwave.config import MT5Settings, Settings
from tickwave.topics import TICKS, TICKS_DLQ, topic_name


def test_mt5_source_when_terminal_restarts_mid_stream_then_kafka_gets_every_tick_once(topics: Settings) -> None:
    bootstrap = resolve_bootstrap(topics)
    server_offset_ms = 2 * 3_600_000  # the broker's server clock runs at UTC+2

    def burst(start: int) -> list[tuple[int, float, float]]:
        return [(T0 + server_offset_ms + start + i // 3, 1.085 + i * 1e-5, 1.0852 + i * 1e-5) for i in range(300)]

    def restart(terminal: ScriptedTerminal) -> None:
        terminal.restart_terminal(startup_failures=1)
        terminal.push("EURUSD", burst(60_000))

    stop = threading.Event()
    fake = ScriptedTerminal(
        [lambda t: t.push("EURUSD", burst(0)), restart, lambda t: t.push("EURUSD", burst(120_000))], stop
    )
    mt5 = MT5Settings(server_timezone="+02:00", poll_interval_ms=1, backfill_s=600, reconnect_initial_s=0.01)
    now = ManualClock(T0 + 300_000)
    validator = TickValidator(topics.symbols, "mt5", 60_000, now)
    source = Mt5Source(Terminal(mt5, fake), ["EURUSD"], topics.symbols, validator, stop, now)
    sink = KafkaSink(bootstrap, topic_name(topics, TICKS), topic_name(topics, TICKS_DLQ), "mt5", now)

    report = run_ingest(source, sink, stop)

    received = [tick for _key, tick in read_ticks(bootstrap, topic_name(topics, TICKS))]
    assert report.is_clean and report.ticks == 900 == len(received)
    assert [(t.time_ms + server_offset_ms, t.bid) for t in received] == [(ms, bid) for ms, bid, _ask in fake.pushed]
    assert len({t.tick_id for t in received}) == 900
    assert source.terminal.reconnects == 1
