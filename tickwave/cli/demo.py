"""``tickwave demo``: start the embedded services, run the main job end to end, show where to look.

The main job so far: a handful of ticks produced onto ``ticks``, consumed back and
checked one by one, then written through the batched writer into the warehouse and
counted there; then ingest replays the shipped sample (SIMULATED ticks in MT5 export
format, ``streams/samples``) onto ``ticks``, every message acknowledged.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Annotated

import typer
from confluent_kafka import TopicPartition
from rich.table import Table

from tickwave.bus import make_consumer, make_producer, resolve_bootstrap
from tickwave.cli.common import console, exit_on_tickwave_error, settings_or_exit
from tickwave.cli.ingest_cmd import replay_sample
from tickwave.cli.services import bring_down, bring_up
from tickwave.config import Settings
from tickwave.contracts import Tick, decode, encode
from tickwave.errors import ServiceError
from tickwave.topics import TICKS, topic_name


def demo_ticks(count: int, now_ms: int, seed: int = 7) -> list[Tick]:
    """Return ``count`` plausible EURUSD/USDJPY ticks (a seeded random walk)."""
    rng = random.Random(seed)
    prices = {"EURUSD": (1.08500, 5), "USDJPY": (151.250, 3)}
    ticks = []
    for index in range(count):
        symbol = "EURUSD" if index % 2 == 0 else "USDJPY"
        mid, digits = prices[symbol]
        mid *= 1 + rng.gauss(0, 2e-5)
        prices[symbol] = (mid, digits)
        half_spread = 10**-digits
        ticks.append(Tick(
            symbol=symbol, time_ms=now_ms + index * 100, seq=0,
            bid=round(mid - half_spread, digits), ask=round(mid + half_spread, digits),
            volume=1.0, source="demo",
        ))  # fmt: skip
    return ticks


def round_trip(settings: Settings, ticks: list[Tick], timeout_s: float = 30.0) -> list[Tick]:
    """Produce ``ticks`` onto the ticks topic and consume them back from their offsets.

    Raises:
        ServiceError: if they do not all come back within the timeout.
    """
    bootstrap = resolve_bootstrap(settings)
    topic = topic_name(settings, TICKS)
    marker = uuid.uuid4().hex  # this run's ticks only: the topic may hold earlier data
    consumer = make_consumer(bootstrap, f"tickwave-demo-{marker}", "latency")
    # Read from each partition's current end: no group join, no earlier data.
    partitions = consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions
    starts = [TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p))[1]) for p in partitions]
    consumer.assign(starts)
    producer = make_producer(bootstrap, "bulk")
    for tick in ticks:
        producer.produce(topic, key=tick.symbol.encode(), value=encode(tick), headers={"demo-run": marker})
    if producer.flush(timeout_s) != 0:
        raise ServiceError("the broker did not acknowledge every demo tick")
    received: list[Tick] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(received) < len(ticks) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            if dict(message.headers() or []).get("demo-run") == marker.encode():
                received.append(decode(message.value(), Tick))
    finally:
        consumer.close()
    if len(received) != len(ticks):
        raise ServiceError(f"only {len(received)} of {len(ticks)} demo ticks came back within {timeout_s:.0f} s")
    return received


def warehouse_url(settings: Settings) -> str:
    """Return the warehouse's URL (imported lazily: clickhouse-connect is not needed before)."""
    from tickwave.warehouse.client import warehouse_url as resolve

    return resolve(settings)


def store_ticks(settings: Settings, ticks: list[Tick]) -> int:
    """Write ``ticks`` into the warehouse's ``ticks`` table and return how many are there (exactly, FINAL)."""
    from tickwave.warehouse.client import connect
    from tickwave.warehouse.tables import TICKS
    from tickwave.warehouse.writer import BatchWriter

    client = connect(settings)
    try:
        with BatchWriter(client, TICKS) as writer:
            writer.write_messages(ticks)
        first_ms, last_ms = min(tick.time_ms for tick in ticks), max(tick.time_ms for tick in ticks)
        counted = client.query(
            "SELECT count() FROM ticks FINAL WHERE source = 'demo' AND time_ms "
            "BETWEEN fromUnixTimestamp64Milli({first:Int64}) AND fromUnixTimestamp64Milli({last:Int64})",
            parameters={"first": first_ms, "last": last_ms},
        )
        return int(counted.result_rows[0][0])
    finally:
        client.close()


def demo(
    ticks: Annotated[int, typer.Option(help="how many ticks to send")] = 20,
    keep: Annotated[bool, typer.Option("--keep", help="leave the services running afterwards")] = False,
) -> None:
    """Start the embedded services, run the main job end to end, print where to look."""
    settings = settings_or_exit()
    with exit_on_tickwave_error():
        addresses = bring_up(settings)
        try:
            sent = demo_ticks(ticks, int(time.time() * 1000))
            started = time.monotonic()
            received = round_trip(settings, sent)
            elapsed_ms = (time.monotonic() - started) * 1000
            by_id = {tick.tick_id: tick for tick in received}
            matches = sum(by_id.get(tick.tick_id) == tick for tick in sent)
            table = Table("symbol", "time_ms", "bid", "ask", title=f"ticks consumed back from {TICKS}")
            for tick in received[:6]:
                table.add_row(tick.symbol, str(tick.time_ms), f"{tick.bid}", f"{tick.ask}")
            console.print(table)
            console.print(f"[green]✓[/] {matches}/{len(sent)} ticks round-tripped intact in {elapsed_ms:.0f} ms")
            if matches != len(sent):
                raise ServiceError("some ticks came back different from what was sent")
            stored = store_ticks(settings, received)
            console.print(f"[green]✓[/] {stored}/{len(received)} ticks stored in the warehouse table ticks")
            if stored != len(received):
                raise ServiceError("the warehouse holds a different number of demo ticks than were written")
            replayed = replay_sample(settings)
            console.print(
                f"[green]✓[/] ingest replayed {replayed.ticks} SIMULATED sample ticks (streams/samples) onto "
                f"{TICKS}, all acknowledged; {replayed.dead_letters} dead letters"
            )
            if not replayed.is_clean:
                raise ServiceError("the broker did not acknowledge every sample tick")
            console.print("\nwhere to look:")
            console.print(f"  Kafka bootstrap     {addresses.get('kafka')}  (topics: `tickwave topics list`)")
            console.print(
                f"  ClickHouse HTTP     {warehouse_url(settings)}  (users {settings.clickhouse.user} and "
                f"{settings.clickhouse.analyst_user}; passwords: `tickwave warehouse credentials-path`)"
            )
            console.print(
                '  sample query        tickwave warehouse query "SELECT symbol, count() AS ticks, '
                'max(time_ms) AS last FROM ticks FINAL GROUP BY symbol"'
            )
            console.print(f"  service logs        {settings.state_path / 'logs'}  (`tickwave logs kafka|warehouse`)")
            console.print("  service status      `tickwave status`")
        finally:
            if not keep:
                bring_down(settings)
                console.print("services stopped (run with --keep to leave them up)")


def register(app: typer.Typer) -> None:
    """Add the demo command to the root app."""
    app.command()(demo)
