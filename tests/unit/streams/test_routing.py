"""The predictions of ``streams.routing`` against what Bytewax 0.21.1 was seen to do.

The tables below were recorded from real Bytewax processes (2 and 3 processes, one
worker each): the process each state key ran on, and the process each source partition
was read by. ``tests/integration/streams/test_processes.py`` checks the whole chain
again on every run, on real processes and the real broker.
"""

from __future__ import annotations

import pytest

from adapters.bus import default_partition
from streams.routing import GroupLayout, key_for_worker, reader_of_partition, siphash13, worker_of_key

SYMBOLS = ["EURUSD", "USDJPY", "GBPUSD", "AUDUSD", "XAUUSD", "USDCHF", "USDCAD", "NZDUSD", "EURJPY", "EURGBP"]
KEYS = ["0", "1", "2", "3", "4", "5", "g0", "g1", "g2", "g3", "p0", "p1", "p2", "p3", "p4", "p5"]
SEEN_WORKER = {
    2: [1, 1, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0],
    3: [0, 1, 0, 1, 0, 1, 2, 2, 0, 1, 0, 1, 2, 2, 1, 0],
}
SEEN_WORKER_OF_SYMBOL_2 = {
    "AUDUSD": 0,
    "EURGBP": 0,
    "EURUSD": 0,
    "NZDUSD": 0,
    "XAUUSD": 0,
    "EURJPY": 1,
    "GBPUSD": 1,
    "USDCAD": 1,
    "USDCHF": 1,
    "USDJPY": 1,
}


def test_siphash13_when_rust_reference_values_then_equal() -> None:
    # Printed by Rust 1.95: `DefaultHasher::new()`, then `h.write(b"")` or `String::from(s).hash(&mut h)`.
    assert siphash13(b"") == 0xD1FBA762150C532C
    rust = {
        "EURUSD": 0xA54ABC53697A86A2,
        "g0": 0xAECAB77CFAB5CCF7,
        "w1": 0x608FE9E5E4BC91FA,
        "a-longer-key-of-more-than-16-bytes": 0xD2BF10FBB93EAC61,
    }
    assert {key: siphash13(key.encode() + b"\xff") for key in rust} == rust  # a str hashes its bytes, then 0xFF


@pytest.mark.parametrize("workers", [2, 3])
def test_worker_of_key_when_seen_keys_then_the_worker_bytewax_ran_them_on(workers: int) -> None:
    assert [worker_of_key(key, workers) for key in KEYS] == SEEN_WORKER[workers]


def test_worker_of_key_when_symbols_and_two_workers_then_as_seen_in_session_9() -> None:
    assert {symbol: worker_of_key(symbol, 2) for symbol in SYMBOLS} == SEEN_WORKER_OF_SYMBOL_2


def test_reader_of_partition_when_more_than_ten_then_names_sorted_as_strings() -> None:
    # Seen with 3 processes and 12 partitions: "10" and "11" sort before "2".
    assert [reader_of_partition(p, 12, 3) for p in range(12)] == [0, 1, 1, 2, 0, 1, 2, 0, 1, 2, 2, 0]
    assert [reader_of_partition(p, 6, 2) for p in range(6)] == [0, 1, 0, 1, 0, 1]
    assert [reader_of_partition(p, 5, 3) for p in range(5)] == [0, 1, 2, 0, 1]


@pytest.mark.parametrize("workers", range(1, 9))
def test_key_for_worker_when_any_worker_then_routes_there_and_distinct(workers: int) -> None:
    keys = [key_for_worker(worker, workers) for worker in range(workers)]

    assert [worker_of_key(key, workers) for key in keys] == list(range(workers))
    assert len(set(keys)) == workers and all(key.startswith(f"w{i}") for i, key in enumerate(keys))


def test_layout_for_run_when_groups_set_or_one_process_then_hashed_else_aligned() -> None:
    assert GroupLayout.for_run(3, workers=2, partitions=6) == GroupLayout(3)
    assert GroupLayout.for_run(0, workers=1, partitions=6) == GroupLayout(1)  # what one process always stored
    assert GroupLayout.for_run(0, workers=2, partitions=6) == GroupLayout(2, partitions=6)


def test_layout_key_when_hashed_then_stable_across_runs_and_spread() -> None:
    assert {GroupLayout(1).key(symbol) for symbol in SYMBOLS} == {"g0"}
    assert GroupLayout(2).key("EURUSD") == "g1" and GroupLayout(2).key("USDJPY") == "g0"  # crc32, not hash()
    assert {GroupLayout(4).key(symbol) for symbol in SYMBOLS} == {"g0", "g1", "g2", "g3"}


@pytest.mark.parametrize(("workers", "partitions"), [(2, 2), (2, 6), (3, 6), (3, 12), (4, 16)])
def test_layout_key_when_aligned_then_runs_on_the_worker_reading_the_symbols_partition(
    workers: int, partitions: int
) -> None:
    layout = GroupLayout(workers, partitions)
    symbols = SYMBOLS + [f"SYM{number}" for number in range(200)]

    for symbol in symbols:
        partition = default_partition(symbol.encode(), partitions)
        assert worker_of_key(layout.key(symbol), workers) == reader_of_partition(partition, partitions, workers)
    assert len({layout.key(symbol) for symbol in symbols}) == workers  # one group per worker, every one used
