"""Pure ingest logic: tick validation, ``seq`` numbering, merging and pacing of batches.

Nothing here does I/O; time comes in as arguments or injected clocks.

Validation applies the rules of :func:`tickwave.validation.tick_rules` (the one
definition, shared with the dataflow's row-by-row ``check_raw``) to whole columns, then
one rule of its own, which needs the symbol's history:

====================  ==========================================================
``unknown_symbol``    the symbol is not in the registry (``[symbols]`` settings)
``non_finite``        bid, ask, last or volume is NaN or infinite
``non_positive``      bid or ask is zero or negative
``ask_below_bid``     ask < bid
``negative``          last or volume is negative
``bad_flags``         flags outside 0..2^32-1
``implausible``       a price outside the symbol's bounds, or a volume above them
``before_min_time``   time before 2000-01-01
``future_timestamp``  time later than now + ``ingest.max_source_clock_lead_ms``
=======
``out_of_order``      time earlier than a tick already accepted for the symbol
====================  ==========================================================

A row that passes is a valid :class:`tickwave.contracts.Tick`; ``tests/unit/ingest``
checks that the columns and ``check_raw`` accept and reject the same ticks for the same
reasons.

``seq`` numbers the accepted ticks of one symbol within one millisecond (0, 1, 2...), so
``(symbol, time_ms, seq)`` names a tick, and replaying the same input gives the same
names. Rejecting ``out_of_order`` rows keeps that true: a millisecond, once left, is never
numbered again.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from streams.ingest.batches import BoolArray, Candidates, IntArray, Rejected, SourceBatch, TickBatch
from tickwave.clock import Clock
from tickwave.config import SymbolSpec
from tickwave.instruments import tick_bounds
from tickwave.validation import MIN_TIME_MS, TickRule, first_broken, reason, tick_rules


@dataclass
class SeqCursor:
    """Where one symbol's numbering stands: the last accepted time and the next ``seq`` in it."""

    last_time_ms: int = -(2**62)
    next_seq: int = 0


def assign_seq(time_ms: IntArray, cursor: SeqCursor) -> IntArray:
    """Number ticks within each millisecond, continuing from ``cursor`` (updated in place).

    ``time_ms`` must not decrease (one symbol's accepted ticks).
    """
    count = len(time_ms)
    if count == 0:
        return np.empty(0, np.int64)
    positions = np.arange(count, dtype=np.int64)
    starts_run = np.empty(count, dtype=bool)
    starts_run[0] = time_ms[0] != cursor.last_time_ms
    starts_run[1:] = time_ms[1:] != time_ms[:-1]
    run_start = np.maximum.accumulate(np.where(starts_run, positions, -1))
    seq = np.where(run_start >= 0, positions - run_start, cursor.next_seq + positions)
    cursor.last_time_ms = int(time_ms[-1])
    cursor.next_seq = int(seq[-1]) + 1
    return seq


class TickValidator:
    """Checks candidate rows and numbers the good ones; keeps each symbol's cursor between batches.

    Args:
        registry: the known symbols.
        source: the ``source`` label written into every tick.
        max_future_ms: how far past the clock's now a tick may be stamped.
        clock: the wall clock; injected so tests control it.
    """

    def __init__(self, registry: Mapping[str, SymbolSpec], source: str, max_future_ms: int, clock: Clock) -> None:
        self.registry = registry
        self.bounds = tick_bounds(registry)  # each symbol's plausibility bounds, from its instrument
        self.source = source
        self.max_future_ms = max_future_ms
        self.clock = clock
        self.cursors: dict[str, SeqCursor] = {}

    def validate(self, rows: Candidates) -> SourceBatch:
        """Return the rows that pass as ticks and the others as rejects (input order kept in each)."""
        count = len(rows)
        rules = tick_rules(self.registry, MIN_TIME_MS, self.clock.now_ms() + self.max_future_ms, self.bounds)
        failed = first_broken(rows, rules)  # index of the first broken rule, -1 = none
        seq = np.zeros(count, dtype=np.int64)
        floors = np.zeros(count, dtype=np.int64)  # for out-of-order rows: the time already sent
        out_of_order = len(rules)
        for code in np.unique(rows.symbol_code[failed < 0]).tolist():
            members = np.flatnonzero((rows.symbol_code == code) & (failed < 0))
            cursor = self.cursors.setdefault(rows.symbols[code], SeqCursor())
            times = rows.time_ms[members]
            floor = np.maximum.accumulate(np.concatenate(([cursor.last_time_ms], times)))[:-1]
            late = times < floor
            failed[members[late]] = out_of_order
            floors[members[late]] = floor[late]
            accepted = members[~late]
            seq[accepted] = assign_seq(rows.time_ms[accepted], cursor)
        good = failed < 0
        ticks = TickBatch(
            rows.symbols,
            rows.symbol_code[good],
            rows.time_ms[good],
            seq[good],
            rows.bid[good],
            rows.ask[good],
            rows.last[good],
            rows.volume[good],
            rows.flags[good],
            self.source,
        )
        rejected = tuple(
            self._reject(rows, int(i), rules, int(failed[i]), int(floors[i])) for i in np.flatnonzero(~good)
        )
        return SourceBatch(ticks, rejected)

    @staticmethod
    def _reject(rows: Candidates, i: int, rules: tuple[TickRule, ...], rule: int, floor: int) -> Rejected:
        symbol = rows.symbols[rows.symbol_code[i]]
        if rule == len(rules):
            text = reason("out_of_order", f"time_ms {rows.time_ms[i]} is before {floor}, already sent for {symbol}")
        else:
            text = reason(rules[rule].code, rules[rule].detail(rows, i))
        return Rejected(text, rows.raw(i), symbol)


@dataclass
class PollCursor:
    """What polling one MT5 symbol has sent so far: the newest ``time_msc`` and how many ticks at it."""

    last_time_msc: int = -1
    sent_at_last: int = 0


def select_new(time_msc: IntArray, cursor: PollCursor) -> BoolArray:
    """Mark the polled ticks not sent before, and move ``cursor`` past them.

    ``time_msc`` is one ``copy_ticks_range`` answer: ascending, both ends included, and
    starting at or before the cursor's millisecond, so every tick of that millisecond is in
    it. The ones already sent are its first ``sent_at_last`` (the terminal returns ticks of
    one millisecond in the same order each time); the rest are new, even when several share
    a ``time_msc``.
    """
    fresh = time_msc > cursor.last_time_msc
    fresh[np.flatnonzero(time_msc == cursor.last_time_msc)[cursor.sent_at_last :]] = True
    if fresh.any():
        newest = int(time_msc[-1])
        cursor.sent_at_last = int(np.count_nonzero(time_msc == newest))
        cursor.last_time_msc = newest
    return fresh


def within(batch: TickBatch, from_ms: int | None, to_ms: int | None) -> TickBatch:
    """Return the ticks with ``from_ms <= time_ms < to_ms`` (either bound optional)."""
    if from_ms is None and to_ms is None:
        return batch
    keep = np.ones(len(batch), dtype=bool)
    if from_ms is not None:
        keep &= batch.time_ms >= from_ms
    if to_ms is not None:
        keep &= batch.time_ms < to_ms
    return batch if keep.all() else batch.take(keep)


def merge_by_time(streams: Sequence[Iterator[SourceBatch]]) -> Iterator[SourceBatch]:
    """Interleave several time-ordered streams of batches into one, ordered by ``time_ms``.

    Works batch-wise: everything up to the smallest "newest time" among the streams that
    may still produce data is released, sorted (stable), as one batch. Rejects pass
    through at once. A stream that is not itself ordered still loses nothing.
    """
    if len(streams) == 1:
        yield from streams[0]
        return
    pending: list[TickBatch | None] = [None] * len(streams)
    finished = [False] * len(streams)
    while True:
        for index, stream in enumerate(streams):
            while not finished[index] and not pending[index]:
                incoming = next(stream, None)
                if incoming is None:
                    finished[index] = True
                    break
                if incoming.rejected:
                    yield SourceBatch(TickBatch.empty(incoming.ticks.source), incoming.rejected)
                pending[index] = incoming.ticks
        buffered = [(i, ticks) for i, ticks in enumerate(pending) if ticks is not None and len(ticks)]
        if not buffered:
            return
        open_ends = [int(ticks.time_ms.max()) for i, ticks in buffered if not finished[i]]
        bound = min(open_ends) if open_ends else None
        released = []
        for index, ticks in buffered:
            take: BoolArray = np.ones(len(ticks), dtype=np.bool_) if bound is None else ticks.time_ms <= bound
            released.append(ticks.take(take))
            pending[index] = ticks.take(~take)
        merged = TickBatch.concat(released)
        yield SourceBatch(merged.take(np.argsort(merged.time_ms, kind="stable")))


class Pacer:
    """Releases ticks no faster than their own clock, times ``speed`` (``None``: as fast as possible).

    The first tick fixes the origin; a tick stamped ``t`` is due ``(t - origin) / speed``
    after the first was released. Batches are cut into slices of ``slice_s`` of wall time.

    Args:
        speed: replay speed factor (1 = real time), or None for no pacing.
        clock: monotonic seconds.
        wait: sleeps up to the given seconds; returns True if the run was stopped meanwhile.
    """

    def __init__(
        self, speed: float | None, clock: Callable[[], float], wait: Callable[[float], bool], slice_s: float = 0.02
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.speed = speed
        self.clock = clock
        self.wait = wait
        self.slice_s = slice_s
        self._origin: tuple[int, float] | None = None

    def virtual_now_ms(self) -> int | None:
        """Return where the source's clock stands now (None before the first tick or unpaced)."""
        if self._origin is None or self.speed is None:
            return None
        origin_ms, origin_wall = self._origin
        return origin_ms + int((self.clock() - origin_wall) * 1000 * self.speed)

    def pace(self, batch: TickBatch) -> Iterator[TickBatch]:
        """Yield ``batch`` in slices, each when it is due; stop early if the run is stopped."""
        if self.speed is None or not len(batch):
            yield batch
            return
        if self._origin is None:
            self._origin = (int(batch.time_ms[0]), self.clock())
        origin_ms, origin_wall = self._origin
        due = origin_wall + (batch.time_ms - origin_ms) / 1000.0 / self.speed
        bins = np.floor((due - origin_wall) / self.slice_s)
        cuts = [0, *(np.flatnonzero(np.diff(bins)) + 1).tolist(), len(batch)]
        for start, stop in itertools.pairwise(cuts):
            delay = float(due[start]) - self.clock()
            if delay > 0 and self.wait(delay):
                return
            yield batch.take(slice(start, stop))
