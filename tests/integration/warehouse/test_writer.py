"""The batched writer against the real warehouse: batching, retries without duplicates, backpressure."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from adapters.endpoints import Endpoint
from adapters.warehouse.client import connect
from adapters.warehouse.credentials import resolve_credentials
from adapters.warehouse.writer import BatchWriter, RetryPolicy, WriterConfig
from tests.integration.warehouse.faults import FaultProxy
from tickwave.config import Settings
from tickwave.contracts import Tick
from tickwave.errors import RetryableError, ServiceError
from tickwave.warehouse.tables import TICKS, Table, row_for, to_arrow

NOW_MS = int(time.time() * 1000)


def ticks(symbol: str, count: int, start_ms: int = NOW_MS) -> list[Tick]:
    return [
        Tick(symbol=symbol, time_ms=start_ms + index, seq=0, bid=1.1, ask=1.1002, volume=1.0, source="test")
        for index in range(count)
    ]


def count_of(client: Client, symbol: str, final: bool = False) -> int:
    return int(client.command(f"SELECT count() FROM ticks {'FINAL' if final else ''} WHERE symbol = '{symbol}'"))


def wait_for(predicate: object, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def symbol() -> str:
    return "W" + uuid.uuid4().hex[:8].upper()


@pytest.fixture
def plain_ticks(warehouse: Client) -> Iterator[Table]:
    """A plain MergeTree copy of ticks: nothing collapses duplicates, so counts are exact."""
    name = "plain_" + uuid.uuid4().hex[:8]
    warehouse.command(
        f"CREATE TABLE {name} AS ticks ENGINE = MergeTree ORDER BY (symbol, time_ms, seq) "
        f"SETTINGS non_replicated_deduplication_window = 1000"
    )
    try:
        yield Table(name, TICKS.schema)
    finally:
        warehouse.command(f"DROP TABLE {name}")


@pytest.fixture
def proxy(warehouse_endpoint: Endpoint) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(warehouse_endpoint.address)
    try:
        yield fault_proxy
    finally:
        fault_proxy.close()


@pytest.fixture
def proxied_client(proxy: FaultProxy, warehouse_settings: Settings, migrated_database: str) -> Iterator[Client]:
    credentials = resolve_credentials(warehouse_settings)
    via_proxy = warehouse_settings.model_copy(
        update={
            "clickhouse": warehouse_settings.clickhouse.model_copy(
                update={"url": f"http://{proxy.address}", "password": credentials.password}
            )
        }
    )
    client = connect(via_proxy, database=migrated_database, send_receive_timeout=10)
    client.http_retries = 0  # type: ignore[misc]
    try:
        yield client
    finally:
        client.close()


def test_writer_when_rows_reach_max_rows_then_full_batches_are_inserted(warehouse: Client, symbol: str) -> None:
    writer = BatchWriter(warehouse, TICKS, WriterConfig(max_rows=100, max_delay_s=60.0))
    try:
        writer.write_messages(ticks(symbol, 250))
        assert wait_for(lambda: writer.stats.batches_written == 2)
        landed_before_close = count_of(warehouse, symbol)
    finally:
        writer.close()

    assert landed_before_close == 200
    assert count_of(warehouse, symbol) == 250
    assert writer.stats.rows_written == 250 and writer.stats.batches_written == 3


def test_writer_when_a_batch_is_inserted_then_its_arrow_pages_are_released_after_it_is_freed(
    warehouse: Client, symbol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow as pa

    from adapters.warehouse import writer as writer_module

    rows = [row_for(tick) for tick in ticks(symbol, 20_000)]
    one_batch = to_arrow(TICKS, {name: [row[name] for row in rows] for name in TICKS.column_names})
    held_at_release: list[int] = []
    record = lambda: held_at_release.append(pa.total_allocated_bytes())  # noqa: E731
    monkeypatch.setattr(writer_module, "release_arrow_memory", record)
    baseline = pa.total_allocated_bytes()
    writer = BatchWriter(warehouse, TICKS, WriterConfig(max_rows=20_000, max_delay_s=60.0))
    try:
        writer.write_messages(ticks(symbol, 60_000))
        writer.flush()
    finally:
        writer.close()

    # One release per batch, each once that batch is freed: the last one finds none of the three held.
    assert len(held_at_release) == 3, held_at_release
    assert held_at_release[-1] - baseline < one_batch.nbytes / 2, (held_at_release, baseline)


def test_writer_when_delay_passes_then_a_partial_batch_is_inserted_without_flush(
    warehouse: Client, symbol: str
) -> None:
    writer = BatchWriter(warehouse, TICKS, WriterConfig(max_rows=10_000, max_delay_s=0.2))
    try:
        writer.write_messages(ticks(symbol, 5))
        landed = wait_for(lambda: count_of(warehouse, symbol) == 5, timeout_s=5.0)
    finally:
        writer.close()

    assert landed


def test_writer_when_sealed_then_inserted_in_the_background_without_waiting_for_the_delay(
    warehouse: Client, symbol: str
) -> None:
    writer = BatchWriter(warehouse, TICKS, WriterConfig(max_rows=10_000, max_delay_s=600))
    try:
        writer.write_messages(ticks(symbol, 7))
        time.sleep(0.3)
        buffered = count_of(warehouse, symbol)
        started = time.monotonic()
        writer.seal_pending()  # returns at once: the insert runs on the writer's thread
        returned_after_s = time.monotonic() - started
        landed = wait_for(lambda: count_of(warehouse, symbol) == 7, timeout_s=5.0)
    finally:
        writer.close()

    assert buffered == 0  # the 600 s delay held the rows until sealed
    assert returned_after_s < 0.5 and landed


def test_writer_when_an_acknowledgement_is_lost_then_the_retry_adds_no_duplicate(
    proxied_client: Client, proxy: FaultProxy, warehouse: Client, plain_ticks: Table
) -> None:
    writer = BatchWriter(proxied_client, plain_ticks, WriterConfig(max_rows=1000, retry=RetryPolicy(initial_s=0.05)))
    proxy.set_mode("drop_next_response")
    try:
        writer.write([row_for(tick) for tick in ticks("ACK", 500)])
        writer.flush(timeout_s=30)
    finally:
        writer.close()

    assert proxy.dropped == 1
    assert writer.stats.retries >= 1
    # not 1000: the first attempt committed, and the server dropped the retry by its token
    assert warehouse.command(f"SELECT count() FROM {plain_ticks.name}") == 500


def test_writer_when_warehouse_is_unreachable_then_blocks_then_recovers_without_loss(
    proxied_client: Client, proxy: FaultProxy, warehouse: Client, plain_ticks: Table
) -> None:
    config = WriterConfig(
        max_rows=200,
        max_delay_s=0.05,
        max_buffered_rows=600,
        block_timeout_s=0.5,
        retry=RetryPolicy(initial_s=0.05, max_s=0.2),
    )
    writer = BatchWriter(proxied_client, plain_ticks, config)
    sent = [row_for(tick) for tick in ticks("DOWN", 1200)]
    try:
        proxy.set_mode("refuse")
        writer.write(sent[:600])
        with pytest.raises(RetryableError):
            writer.write(sent[600:700])  # the bound is reached: backpressure, not growth
        buffered = writer.stats.rows_buffered
        proxy.set_mode("pass")
        writer.flush(timeout_s=30)  # the retries drain the buffer (not within block_timeout_s on a busy machine)
        writer.write(sent[600:])
        writer.flush(timeout_s=30)
    finally:
        writer.close()

    assert buffered == 600
    assert writer.stats.retries >= 1
    assert warehouse.query(f"SELECT count(), uniqExact(time_ms) FROM {plain_ticks.name}").result_rows == [(1200, 1200)]


def test_writer_when_insert_fails_permanently_then_raises_and_keeps_the_batch(warehouse: Client) -> None:
    wrong = Table("ticks", TICKS.schema.append(TICKS.schema.field("bid").with_name("no_such_column")))
    writer = BatchWriter(warehouse, wrong, WriterConfig(max_rows=10))
    writer.write([{**row_for(tick), "no_such_column": 1.0} for tick in ticks("PERM", 10)])

    with pytest.raises(ServiceError, match="stopped"):
        writer.flush(timeout_s=10)
    with pytest.raises(ServiceError):
        writer.write([row_for(ticks("PERM", 1)[0])])
    writer.close()

    assert writer.failed_batch is not None and writer.failed_batch.num_rows == 10
    assert writer.stats.failures == 1


def test_ticks_when_redelivered_in_other_batches_then_final_counts_each_once(warehouse: Client, symbol: str) -> None:
    sent = ticks(symbol, 300)
    with BatchWriter(warehouse, TICKS, WriterConfig(max_rows=100)) as first:
        first.write_messages(sent)
    with BatchWriter(warehouse, TICKS, WriterConfig(max_rows=70)) as replay:
        replay.write_messages(sent)  # a restarted consumer re-reads the same ticks, batched differently

    # Both copies were inserted (different batches, different tokens); merges may already have
    # collapsed some, so the plain count is anywhere between; FINAL is exact.
    assert replay.stats.rows_written == 300
    assert 300 <= count_of(warehouse, symbol) <= 600
    assert count_of(warehouse, symbol, final=True) == 300
