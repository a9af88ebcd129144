"""Event-time tumbling bars per symbol, deterministic under replay and redelivery.

Rules (one symbol's state; the dataflow keys by symbol):

- A tick belongs to the window ``[start, start + length)`` of each timeframe, windows
  aligned to the Unix epoch (a 1-minute bar starts on the minute, UTC), except H4 and
  D1 bars given a ``SessionAlignment``: those start at the trading day's rollover
  (``tickwave.timeframes``), and a D1 bar lasts 23 or 25 hours when the clocks change.
- The watermark is the newest event time seen for the symbol minus ``wait_ms``. A
  window closes (its bar is emitted) once the watermark reaches its end.
- A tick older than the watermark when it arrives is *late*: it is returned to the
  caller to be counted and quarantined, never silently dropped, and never changes a
  bar. Every accepted tick therefore lands in windows that are still open, for every
  timeframe alike.
- A tick seen twice (same ``tick_id``: symbol, time, seq) is counted once.
- Open and close are the prices of the earliest and latest tick by ``(time_ms, seq)``,
  so ticks arriving out of order within the wait give the same bar.
- With ``advance_to(now_ms)`` a quiet symbol's bars still close on wall-clock time
  (live trading); replays leave it unused so results depend on event time only.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from tickwave.contracts import Bar, Tick
from tickwave.timeframes import SESSION_TIMEFRAMES, SessionAlignment, window_of

TickStatus = Literal["accepted", "late", "duplicate"]
NEVER = 2**62  # a time after every real one

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def timeframe_ms(timeframe: str) -> int:
    """Return the length of a timeframe like ``1s``, ``5m`` or ``1h`` in milliseconds.

    Raises:
        ValueError: for anything else.
    """
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", timeframe)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"timeframe {timeframe!r} is not like 1s, 5m, 1h")
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


class WindowIds:
    """The ``(time_ms, seq)`` ids of the ticks in one window, with no Python object per tick.

    A tick alone in its millisecond (``seq`` 0, nearly all of them) is kept as its time in
    a sorted int64 ``array``: ticks arrive in time order almost always, so it is appended
    with no arithmetic and no allocation, and a redelivered one is found by bisection.
    The rarer ``seq > 0`` ids go to a set of tuples. A set of tuples for every tick cost
    one object per tick: freeing one window's 500 took 30-40 us of every bar close (cold
    memory, ten symbols interleaved), and pickling three windows' took ~180 us of every
    symbol's recovery snapshot.
    """

    __slots__ = ("last_ms", "later_seqs", "start_ms", "times")

    def __init__(self, start_ms: int, ids: Iterable[tuple[int, int]] = ()) -> None:
        """Ids of the window starting at ``start_ms`` (``ids``: to begin with)."""
        self.start_ms = start_ms
        self.times = array("q")  # time_ms of the seq-0 ticks, sorted
        self.last_ms = -1  # times[-1], or -1: read on every tick, so kept unboxed from the array
        self.later_seqs: set[tuple[int, int]] | None = None  # ids with seq > 0
        for time_ms, seq in sorted(ids):
            self.add(time_ms, seq)

    def add(self, time_ms: int, seq: int) -> bool:
        """Add an id; return False when it was already there."""
        if seq:
            later = self.later_seqs if self.later_seqs is not None else set()
            self.later_seqs = later
            if (time_ms, seq) in later:
                return False
            later.add((time_ms, seq))
            return True
        times = self.times
        if time_ms > self.last_ms:
            times.append(time_ms)
            self.last_ms = time_ms
            return True
        index = bisect_left(times, time_ms)
        if index < len(times) and times[index] == time_ms:
            return False
        times.insert(index, time_ms)
        return True

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """The ids as ``(time_ms, seq)``: the seq-0 ones in time order, then the others in order."""
        for time_ms in self.times:
            yield time_ms, 0
        yield from sorted(self.later_seqs or ())

    def __len__(self) -> int:
        """How many ids."""
        return len(self.times) + len(self.later_seqs or ())

    def __eq__(self, other: object) -> bool:
        """Equal to another window's ids, or to a set of ``(time_ms, seq)``."""
        if isinstance(other, WindowIds):
            return self.start_ms == other.start_ms and set(self) == set(other)
        return isinstance(other, set | frozenset) and set(self) == other

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        """Like a set of ids."""
        return f"WindowIds({self.start_ms}, {set(self)!r})"

    def __getstate__(self) -> tuple[int, array[int], set[tuple[int, int]] | None]:
        """The start, the seq-0 times (pickled as one bytes object) and the other ids."""
        return self.start_ms, self.times, self.later_seqs

    def __setstate__(self, state: tuple[int, array[int], set[tuple[int, int]] | None]) -> None:
        """Restore from ``__getstate__``."""
        self.start_ms, self.times, self.later_seqs = state
        self.last_ms = self.times[-1] if self.times else -1


@dataclass
class _OpenBar:
    """The running aggregate of one window."""

    start_ms: int
    end_ms: int
    first_key: tuple[int, int]
    last_key: tuple[int, int]
    bid_open: float
    bid_high: float
    bid_low: float
    bid_close: float
    ask_open: float
    ask_high: float
    ask_low: float
    ask_close: float
    mid_high: float
    mid_low: float
    tick_count: int
    volume: float
    spread_sum: float
    spread_max: float

    @classmethod
    def first(cls, tick: Tick, start_ms: int, end_ms: int) -> _OpenBar:
        key = (tick.time_ms, tick.seq)
        spread = tick.ask - tick.bid
        mid = (tick.bid + tick.ask) / 2
        return cls(
            start_ms,
            end_ms,
            key,
            key,
            tick.bid,
            tick.bid,
            tick.bid,
            tick.bid,
            tick.ask,
            tick.ask,
            tick.ask,
            tick.ask,
            mid,
            mid,
            1,
            tick.volume,
            spread,
            spread,
        )

    def add(self, tick: Tick) -> None:
        key = (tick.time_ms, tick.seq)
        bid, ask = tick.bid, tick.ask
        if key < self.first_key:
            self.first_key, self.bid_open, self.ask_open = key, bid, ask
        if key > self.last_key:
            self.last_key, self.bid_close, self.ask_close = key, bid, ask
        if bid > self.bid_high:
            self.bid_high = bid
        if bid < self.bid_low:
            self.bid_low = bid
        if ask > self.ask_high:
            self.ask_high = ask
        if ask < self.ask_low:
            self.ask_low = ask
        mid = (bid + ask) / 2
        if mid > self.mid_high:
            self.mid_high = mid
        if mid < self.mid_low:
            self.mid_low = mid
        spread = ask - bid
        self.spread_sum += spread
        if spread > self.spread_max:
            self.spread_max = spread
        self.volume += tick.volume
        self.tick_count += 1

    def absorb(self, later: _OpenBar) -> None:
        """Fold in the aggregate of a later sub-window (coarse bars are built from fine ones)."""
        if later.first_key < self.first_key:
            self.first_key, self.bid_open, self.ask_open = later.first_key, later.bid_open, later.ask_open
        if later.last_key > self.last_key:
            self.last_key, self.bid_close, self.ask_close = later.last_key, later.bid_close, later.ask_close
        self.bid_high = max(self.bid_high, later.bid_high)
        self.bid_low = min(self.bid_low, later.bid_low)
        self.ask_high = max(self.ask_high, later.ask_high)
        self.ask_low = min(self.ask_low, later.ask_low)
        self.mid_high = max(self.mid_high, later.mid_high)
        self.mid_low = min(self.mid_low, later.mid_low)
        self.tick_count += later.tick_count
        self.volume += later.volume
        self.spread_sum += later.spread_sum
        self.spread_max = max(self.spread_max, later.spread_max)

    def to_bar(self, symbol: str, timeframe: str) -> Bar:
        return Bar(
            symbol=symbol,
            timeframe=timeframe,
            start_ms=self.start_ms,
            end_ms=self.end_ms,
            bid_open=self.bid_open,
            bid_high=self.bid_high,
            bid_low=self.bid_low,
            bid_close=self.bid_close,
            ask_open=self.ask_open,
            ask_high=self.ask_high,
            ask_low=self.ask_low,
            ask_close=self.ask_close,
            mid_open=(self.bid_open + self.ask_open) / 2,
            mid_high=self.mid_high,
            mid_low=self.mid_low,
            mid_close=(self.bid_close + self.ask_close) / 2,
            tick_count=self.tick_count,
            volume=self.volume,
            spread_mean=self.spread_sum / self.tick_count,
            spread_max=self.spread_max,
        )


@dataclass
class BarState:
    """Open windows, watermark and seen tick ids of one symbol.

    Ticks update only the finest timeframe's window; a coarser window (which the finest
    divides, all aligned to the epoch) is folded from the finest bars as they close, so
    per-tick work does not grow with the number of timeframes.
    """

    timeframes: tuple[str, ...]
    wait_ms: int
    alignment: SessionAlignment | None = None  # where H4 and D1 bars start (None: the epoch, like the others)
    open_bars: dict[str, dict[int, _OpenBar]] = field(default_factory=dict)
    newest_ms: int = -1
    # (time_ms, seq) of the ticks in each open finest window, by window start: dropped with
    # the window, instead of re-filtering one set of every recent tick at each close
    # (~170 us per close at 500 ticks/s per symbol, measured in the flow).
    seen: dict[int, WindowIds] = field(default_factory=dict)
    late_count: int = 0
    duplicate_count: int = 0
    next_close_ms: int = NEVER  # the earliest end among open windows

    def __post_init__(self) -> None:
        """Check the timeframes nest and order them finest first."""
        lengths = {timeframe: timeframe_ms(timeframe) for timeframe in self.timeframes}
        if not lengths:
            raise ValueError("at least one timeframe is needed")
        ordered = sorted(lengths, key=lengths.__getitem__)
        self._finest, self._finest_ms = ordered[0], lengths[ordered[0]]
        for timeframe in ordered[1:]:
            if lengths[timeframe] % self._finest_ms:
                raise ValueError(f"timeframe {timeframe} is not a multiple of the finest one, {self._finest}")
        self._coarser = [(timeframe, lengths[timeframe]) for timeframe in ordered[1:]]
        self._session_finest = self.alignment is not None and self._finest in SESSION_TIMEFRAMES
        if self.alignment is not None and not self._session_finest and SESSION_TIMEFRAMES & set(ordered):
            if not self.alignment.nests(self._finest_ms):
                raise ValueError(
                    f"{self._finest} bars would straddle the rollover that starts the H4/D1 bars: choose a rollover "
                    f"time and zone on the {self._finest} boundaries, or utc alignment"
                )
        for timeframe in ordered:
            self.open_bars.setdefault(timeframe, {})

    @property
    def watermark_ms(self) -> int:
        """Ticks older than this are late."""
        return self.newest_ms - self.wait_ms

    def on_tick(self, tick: Tick) -> tuple[list[Bar], TickStatus]:
        """Fold in a tick.

        Returns:
            The bars this tick closed, and what became of the tick: ``accepted`` (in
            its bars), ``late`` (rejected, to quarantine) or ``duplicate`` (already in).
        """
        time_ms = tick.time_ms
        if time_ms < self.newest_ms - self.wait_ms:
            self.late_count += 1
            return [], "late"
        if self._session_finest:
            start, end = window_of(self._finest, self._finest_ms, time_ms, self.alignment)
        else:
            start = time_ms - time_ms % self._finest_ms
            end = start + self._finest_ms
        seen = self.seen.get(start)
        if seen is None:
            seen = self.seen[start] = WindowIds(start)
        if time_ms > seen.last_ms and not tick.seq:
            # The usual case, in time order: ``WindowIds.add`` inlined (the call was ~4% of this method's instructions).
            seen.times.append(time_ms)
            seen.last_ms = time_ms
        elif not seen.add(time_ms, tick.seq):
            self.duplicate_count += 1
            return [], "duplicate"
        windows = self.open_bars[self._finest]
        window = windows.get(start)
        if window is None:
            windows[start] = _OpenBar.first(tick, start, end)
            if end < self.next_close_ms:
                self.next_close_ms = end
        else:
            window.add(tick)
        if time_ms > self.newest_ms:
            self.newest_ms = time_ms
            if time_ms - self.wait_ms >= self.next_close_ms:
                return self._close_through(time_ms - self.wait_ms, tick.symbol), "accepted"
        return [], "accepted"

    def advance_to(self, now_ms: int, symbol: str) -> list[Bar]:
        """Close windows as if a tick at ``now_ms`` had arrived (wall-clock closing)."""
        if now_ms <= self.newest_ms:
            return []
        self.newest_ms = now_ms
        return self._close_through(self.watermark_ms, symbol)

    def flush(self, symbol: str) -> list[Bar]:
        """Close every open window (end of a finite input)."""
        return self._close_through(NEVER, symbol)

    def _close_through(self, watermark_ms: int, symbol: str) -> list[Bar]:
        closed: list[Bar] = []
        finest = self.open_bars[self._finest]
        for start in sorted(start for start, window in finest.items() if window.end_ms <= watermark_ms):
            window = finest.pop(start)
            self.seen.pop(start, None)
            closed.append(window.to_bar(symbol, self._finest))
            for timeframe, length in self._coarser:
                coarse = self.open_bars[timeframe]
                # Most finest windows fall in a coarse window already open (H4/D1 bounds cost a zone lookup).
                holder = next((bar for bar in coarse.values() if bar.start_ms <= start < bar.end_ms), None)
                if holder is not None:
                    holder.absorb(window)
                else:
                    coarse_start, coarse_end = window_of(timeframe, length, start, self.alignment)
                    coarse[coarse_start] = replace(window, start_ms=coarse_start, end_ms=coarse_end)
        for timeframe, _length in self._coarser:
            coarse = self.open_bars[timeframe]
            for start in sorted(start for start, window in coarse.items() if window.end_ms <= watermark_ms):
                closed.append(coarse.pop(start).to_bar(symbol, timeframe))
        self.next_close_ms = min(
            (window.end_ms for windows in self.open_bars.values() for window in windows.values()), default=NEVER
        )
        return closed

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a pickled state; seen ids saved as sets (one, or one per window) become ``WindowIds``."""
        self.__dict__.update(state)
        self.__dict__.setdefault("_session_finest", False)  # saved before H4/D1 alignment existed
        seen: object = state.get("seen")
        if isinstance(seen, set):  # one set of every recent id (the first layout)
            by_window: dict[int, list[tuple[int, int]]] = {}
            for time_ms, seq in seen:
                by_window.setdefault(time_ms - time_ms % self._finest_ms, []).append((time_ms, seq))
            self.seen = {start: WindowIds(start, ids) for start, ids in by_window.items()}
        elif isinstance(seen, dict):  # a set per window (the second layout), or WindowIds already
            self.seen = {
                start: ids if isinstance(ids, WindowIds) else WindowIds(start, ids) for start, ids in seen.items()
            }
