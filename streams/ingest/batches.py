"""The shapes ticks travel in between a source and Kafka: column arrays, not objects.

A source reads thousands of rows at a time (an Arrow record batch, a terminal's tick
array, a simulator step); keeping them as numpy columns until the moment each one is
serialized is what lets replay run at hundreds of thousands of ticks per second.

- :class:`Candidates`: rows parsed from a source, not yet checked.
- :class:`TickBatch`: rows that passed every check, with their ``seq``; each row is a
  :class:`tickwave.contracts.Tick`.
- :class:`Rejected`: one input that failed, with the reason and the raw input.
- :class:`SourceBatch`: what a source yields: good ticks and rejects, side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from tickwave.contracts import Tick

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
CodeArray = npt.NDArray[np.int32]
BoolArray = npt.NDArray[np.bool_]


def _wire_struct() -> type[msgspec.Struct]:
    # Tick's twin without __post_init__: same fields, tag and encoding, built from Tick itself
    # so the two cannot drift apart. Rows reach it only after the vectorized checks in
    # logic.py, which apply Tick's rules to whole columns (and tests prove the two agree).
    config = Tick.__struct_config__
    fields = [
        (info.name, info.type) if info.default is msgspec.NODEFAULT else (info.name, info.type, info.default)
        for info in msgspec.structs.fields(Tick)
    ]
    # gc=False: scalar-only structs cannot form cycles; untracked, they are cheaper to create.
    return msgspec.defstruct("TickWire", fields, tag=config.tag, tag_field=config.tag_field, frozen=True, gc=False)


_TickWire = _wire_struct()
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Rejected:
    """One input that cannot become a tick.

    Attributes:
        reason: ``"<code>: <detail>"``, e.g. ``"ask_below_bid: ask 1.1 < bid 1.2"``.
        raw: the input as read (a file line, or JSON of a record).
        symbol: the symbol, when it is known.
    """

    reason: str
    raw: str
    symbol: str = ""
    origin: str = ""  # where the input came from, e.g. a file name (the sink's source label if empty)


@dataclass(frozen=True)
class Candidates:
    """Parsed rows, one array per field, times already in UTC milliseconds.

    ``symbol_code[i]`` indexes ``symbols``; ``raw(i)`` rebuilds row ``i``'s input for a
    dead letter (called only for rows that are rejected).
    """

    symbols: tuple[str, ...]
    symbol_code: CodeArray
    time_ms: IntArray
    bid: FloatArray
    ask: FloatArray
    last: FloatArray
    volume: FloatArray
    flags: IntArray
    raw: Callable[[int], str]

    def __len__(self) -> int:
        return len(self.time_ms)


@dataclass(frozen=True)
class TickBatch:
    """Validated ticks in columns; row ``i`` is ``Tick(symbols[symbol_code[i]], time_ms[i], seq[i], ...)``."""

    symbols: tuple[str, ...]
    symbol_code: CodeArray
    time_ms: IntArray
    seq: IntArray
    bid: FloatArray
    ask: FloatArray
    last: FloatArray
    volume: FloatArray
    flags: IntArray
    source: str

    def __len__(self) -> int:
        return len(self.time_ms)

    @classmethod
    def empty(cls, source: str) -> TickBatch:
        """Return a batch without rows."""
        ints, floats = np.empty(0, np.int64), np.empty(0, np.float64)
        return cls((), np.empty(0, np.int32), ints, ints, floats, floats, floats, floats, ints, source)

    def take(self, rows: slice | npt.NDArray[np.intp] | BoolArray) -> TickBatch:
        """Return the rows selected by a slice, an index array or a boolean mask."""
        return TickBatch(
            self.symbols,
            self.symbol_code[rows],
            self.time_ms[rows],
            self.seq[rows],
            self.bid[rows],
            self.ask[rows],
            self.last[rows],
            self.volume[rows],
            self.flags[rows],
            self.source,
        )

    @classmethod
    def concat(cls, batches: Sequence[TickBatch]) -> TickBatch:
        """Join batches (their symbol tables are merged); the first batch's source labels the result."""
        batches = [batch for batch in batches if len(batch)]
        if not batches:
            return cls.empty("")
        if len(batches) == 1:
            return batches[0]
        names: dict[str, int] = {}
        codes = []
        for batch in batches:
            remap = np.array([names.setdefault(name, len(names)) for name in batch.symbols], dtype=np.int32)
            codes.append(remap[batch.symbol_code])

        def joined(name: str) -> npt.NDArray[Any]:
            return np.concatenate([getattr(batch, name) for batch in batches])

        return cls(
            tuple(names),
            np.concatenate(codes),
            joined("time_ms"),
            joined("seq"),
            joined("bid"),
            joined("ask"),
            joined("last"),
            joined("volume"),
            joined("flags"),
            batches[0].source,
        )

    def rows(self) -> Iterator[tuple[int, int, int, float, float, float, float, int]]:
        """Yield each row as Python values: ``(symbol_code, time_ms, seq, bid, ask, last, volume, flags)``."""
        columns = (self.symbol_code, self.time_ms, self.seq, self.bid, self.ask, self.last, self.volume, self.flags)
        return zip(*(column.tolist() for column in columns), strict=True)

    def encoded(self) -> tuple[list[bytes], list[bytes]]:
        """Return the Kafka keys (symbols) and values (the JSON of each tick, as ``tickwave.contracts``)."""
        # One list comprehension, no per-row generator: this is the hot loop of every replay.
        wire, encode, symbols, source = _TickWire, _encode, self.symbols, self.source
        values = [
            encode(wire(symbols[code], time_ms, seq, bid, ask, last, volume, flags, source))
            for code, time_ms, seq, bid, ask, last, volume, flags in self.rows()
        ]
        keys_by_code = [name.encode() for name in symbols]
        return [keys_by_code[code] for code in self.symbol_code.tolist()], values

    def ticks(self) -> list[Tick]:
        """Return the rows as Tick messages (validated again by Tick itself)."""
        return [Tick(self.symbols[row[0]], *row[1:], source=self.source) for row in self.rows()]


@dataclass(frozen=True)
class SourceBatch:
    """What a source yields: the ticks that passed and the inputs that did not."""

    ticks: TickBatch
    rejected: tuple[Rejected, ...] = field(default=())
