"""Which state key a symbol's state lives under, and which Bytewax worker runs that key.

A tick that Bytewax routes to a key of another process is pickled there and unpickled on
arrival: with two processes and symbols hashed into two groups, the process reading the
topic spends 25% of its time pickling ticks and the other 40% unpickling them, and two
processes run at half the speed of one (measured with ``bench/streams.py``). A
partition-aligned ``GroupLayout`` avoids that: one group per worker, holding the symbols
whose ticks that worker reads, under a key Bytewax routes to that worker.

It predicts three things, each a fact of the pinned versions that
``tests/integration/streams/test_processes.py`` checks end to end on real processes:

- a symbol's partition: every Tickwave producer keys a tick by its symbol and uses
  librdkafka's default partitioner (``adapters.bus.default_partition``);
- the worker that reads a partition: Bytewax 0.21 hands the partitions, sorted by name
  as strings ("10" before "2"), to the workers in turn when every worker lists them all
  (``reader_of_partition``);
- the worker that runs a state key: Bytewax 0.21 hashes the key with Rust's
  ``DefaultHasher`` (SipHash-1-3 with zero keys; a ``str`` hashes its bytes, then 0xFF)
  modulo the worker count (``worker_of_key``).

A wrong prediction (a producer with another partitioner, another Bytewax) costs speed,
never correctness: every tick of a symbol still reaches the one worker its key routes to.
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass
from functools import lru_cache

from adapters.bus import default_partition

_MASK = (1 << 64) - 1


def _rotate(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (64 - bits))) & _MASK


def siphash13(data: bytes) -> int:
    """SipHash-1-3 of ``data`` with a zero key: Rust's ``std::collections::hash_map::DefaultHasher::new()``."""
    v0, v1, v2, v3 = 0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573

    def sip_round() -> None:
        nonlocal v0, v1, v2, v3
        v0 = (v0 + v1) & _MASK
        v1 = _rotate(v1, 13) ^ v0
        v0 = _rotate(v0, 32)
        v2 = (v2 + v3) & _MASK
        v3 = _rotate(v3, 16) ^ v2
        v0 = (v0 + v3) & _MASK
        v3 = _rotate(v3, 21) ^ v0
        v2 = (v2 + v1) & _MASK
        v1 = _rotate(v1, 17) ^ v2
        v2 = _rotate(v2, 32)

    whole = len(data) - len(data) % 8
    for start in range(0, whole, 8):
        word = int.from_bytes(data[start : start + 8], "little")
        v3 ^= word
        sip_round()
        v0 ^= word
    last = ((len(data) & 0xFF) << 56) | int.from_bytes(data[whole:], "little")
    v3 ^= last
    sip_round()
    v0 ^= last
    v2 ^= 0xFF
    for _ in range(3):
        sip_round()
    return v0 ^ v1 ^ v2 ^ v3


def worker_of_key(key: str, workers: int) -> int:
    """The worker Bytewax 0.21 runs state key ``key`` on, out of ``workers``."""
    return siphash13(key.encode() + b"\xff") % workers


def reader_of_partition(partition: int, partitions: int, workers: int) -> int:
    """The worker Bytewax 0.21 has read source partition ``partition`` (named ``str(partition)``)."""
    names = sorted(str(number) for number in range(partitions))
    return names.index(str(partition)) % workers


@lru_cache(maxsize=256)
def key_for_worker(worker: int, workers: int) -> str:
    """The first of ``w<worker>``, ``w<worker>.1``, ``w<worker>.2``, ... that Bytewax runs on ``worker``."""
    candidates = itertools.chain([f"w{worker}"], (f"w{worker}.{attempt}" for attempt in itertools.count(1)))
    return next(key for key in candidates if worker_of_key(key, workers) == worker)


@dataclass(frozen=True)
class GroupLayout:
    """How symbols map to state keys (part of a recovery store's layout).

    ``partitions == 0``: ``groups`` groups by a stable hash of the symbol (``g0``, ``g1``,
    ...). ``partitions > 0``: one group per worker of ``groups`` workers, holding the
    symbols of the ticks partitions (of ``partitions``) that worker reads.
    """

    groups: int = 1
    partitions: int = 0

    @classmethod
    def for_run(cls, symbol_groups: int, workers: int, partitions: int) -> GroupLayout:
        """``streams.symbol_groups`` groups, or with 0 one group per worker aligned with the partitions."""
        if symbol_groups > 0:
            return cls(symbol_groups)
        if workers <= 1:
            return cls(1)  # one group holds every symbol: the layout one process always had
        return cls(workers, partitions)

    def key(self, symbol: str) -> str:
        """The state key of ``symbol``: the same in every process and run."""
        if self.partitions == 0:
            return f"g{zlib.crc32(symbol.encode()) % self.groups}"
        partition = default_partition(symbol.encode(), self.partitions)
        return key_for_worker(reader_of_partition(partition, self.partitions, self.groups), self.groups)

    def describe(self) -> str:
        """The layout in the settings' words."""
        if self.partitions == 0:
            return f"streams.symbol_groups={self.groups}"
        return f"streams.symbol_groups=0 with {self.groups} processes and {self.partitions} ticks partitions"
