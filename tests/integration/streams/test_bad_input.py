"""Six XAUUSD ticks at 1e300 leave `tickwave streams run` running, and the good ticks after them make rows.

The real services: `tickwave ingest --source replay` subprocesses put a good stream, a file of
six consecutive ticks at 1e300 stamped just ahead of it, and the next good ticks on the real
Kafka; the same six ticks are also produced straight onto the ticks topic, as any process
that reaches the broker could. The real `tickwave streams run` process (recovery store, loader)
must keep running, with the twelve in the dead letters (ingest's six) and the quarantine table
(the dataflow's six), while the good ticks after them become bars and features in the real
warehouse. Then the service is stopped and restarted on its recovery store: it resumes and
drains the next ticks (nothing the bad ticks left in its state stops it). No champion model is
registered in this warehouse, so no signals: the unit flow test
(``tests/unit/streams/test_flow_bad_input.py``) shows the same ticks followed by signals.
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from pathlib import Path

from adapters.bus import make_producer, resolve_bootstrap
from adapters.warehouse.client import connect
from tests.integration.ingest.test_ingest_cli import cli_env, ingest
from tests.integration.streams.test_flow_kafka_warehouse import consume_topic
from tests.integration.streams.test_kill_resume import resumable_flow_settings, row_counter, start_flow
from tickwave.config import Settings
from tickwave.contracts import Tick, encode
from tickwave.topics import TICKS, TICKS_DLQ, topic_name

HEADER = "<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>"


def export(path: Path, rows: list[tuple[int, float]]) -> Path:
    """Write an MT5 tick export of XAUUSD (UTC clock): one row per ``(time_ms, mid)``."""
    lines = [HEADER]
    for time_ms, mid in rows:
        moment = datetime.fromtimestamp(time_ms / 1000, tz=UTC)
        stamp = f"{moment:%Y.%m.%d}\t{moment:%H:%M:%S}.{time_ms % 1000:03d}"
        lines.append(f"{stamp}\t{mid - 0.1!r}\t{mid + 0.1!r}\t\t1\t6")
    path.write_text("\n".join(lines) + "\n")
    return path


def gold(start_ms: int, seconds: int) -> list[tuple[int, float]]:
    """Four good ticks a second around 2,000."""
    return [(start_ms + index * 250, 2000.0 + ((index * 7919) % 13 - 6) * 0.05) for index in range(seconds * 4)]


def replay(env: dict[str, str], tmp_path: Path, file: Path) -> None:
    """Replay ``file`` (UTC stamps) through `tickwave ingest`; it must exit 0."""
    replayed = ingest(env, tmp_path, "--source", "replay", "--file", str(file), "--timezone", "UTC")
    assert replayed.returncode == 0, replayed.stderr


def test_streams_service_when_six_gold_ticks_at_1e300_arrive_then_it_runs_on_and_the_next_ticks_make_bars(
    topics: Settings, fresh_database: str, warehouse_endpoint: object, tmp_path: Path
) -> None:
    settings = resumable_flow_settings(topics, fresh_database)
    start_ms = int(time.time() * 1000) - 300_000
    before, after = gold(start_ms, 30), gold(start_ms + 31_000, 120)
    absurd = [(start_ms + 30_000 + index, 1e300) for index in range(6)]  # just ahead of the stream's newest tick
    env = cli_env(topics, tmp_path)
    client = connect(settings)
    count = row_counter(client)

    flow = start_flow(settings)
    try:
        for name, rows in (("good", before), ("bad", absurd), ("next", after)):
            replay(env, tmp_path, export(tmp_path / f"XAUUSD_{name}.csv", rows))
            if name == "bad":  # the same six straight onto the topic, past ingest
                producer = make_producer(resolve_bootstrap(settings))
                for index, (time_ms, mid) in enumerate(absurd):
                    tick = Tick("XAUUSD", time_ms, index, mid, mid)
                    producer.produce(topic_name(settings, TICKS), encode(tick), key=b"XAUUSD")
                assert producer.flush(30) == 0
        deadline = time.monotonic() + 120
        while count("features", "") < 100 + 1 and time.monotonic() < deadline:
            assert flow.poll() is None, f"the flow exited: {flow.stderr.read().decode()[-3000:]}"  # type: ignore[union-attr]
            time.sleep(0.5)
        time.sleep(2)  # a snapshot after the rows
        assert flow.poll() is None, "the flow stopped"
        flow.send_signal(signal.SIGTERM)
        flow.wait(60)
    finally:
        if flow.poll() is None:
            flow.kill()
            flow.wait(30)

    later = f"fromUnixTimestamp64Milli(toInt64({start_ms + 31_000}))"  # the next good ticks' bars on
    bars_after = lambda: int(  # noqa: E731
        client.query(f"SELECT count() FROM bars_1s FINAL WHERE start_ms >= {later}").result_rows[0][0]
    )
    assert bars_after() >= 100
    assert client.query("SELECT max(mid_high) FROM bars_1s FINAL").result_rows[0][0] < 2100
    warm = f"SELECT count() FROM features FINAL WHERE timeframe = '1s' AND bar_start_ms >= {later} AND is_warm"
    assert client.query(warm).result_rows[0][0] > 0
    assert count("ticks") == len(before) + len(after)
    reasons = [row[0] for row in client.query("SELECT reason FROM quarantine FINAL").result_rows]
    assert len(reasons) == 6 and all(reason.startswith("implausible: bid 1e+300") for reason in reasons)
    assert len(consume_topic(settings, TICKS_DLQ, 12)) == 12  # ingest's six and the dataflow's six

    more = gold(start_ms + 151_000, 20)
    replay(env, tmp_path, export(tmp_path / "XAUUSD_more.csv", more))
    bars_before_restart = bars_after()
    second = start_flow(settings, "--stop-at-end")
    _, errors = second.communicate(timeout=300)
    assert second.returncode == 0, errors.decode()[-3000:]
    assert bars_after() >= bars_before_restart + 19
    assert count("ticks") == len(before) + len(after) + len(more)
    client.close()
