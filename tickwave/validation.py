"""Tick validation, the one definition: the dataflow, the execution process and ingest all check ticks by it.

The stateless rules are one table, :func:`tick_rules`, in the order they are checked (a
tick's reason is the first rule it breaks):

====================  ==========================================================
reason code           rule
====================  ==========================================================
``unknown_symbol``    the symbol is not in the known symbols (``[symbols]``)
``non_finite``        bid, ask, last or volume is NaN or infinite
``non_positive``      bid or ask is zero or negative
``ask_below_bid``     ask < bid
``negative``          last or volume is negative
``bad_flags``         flags outside 0..2^32-1 (MT5 flags are uint32)
``implausible``       bid, ask or a non-zero last outside the symbol's price bounds, or
                      volume above its ``tick_volume_max``
                      (:class:`tickwave.instruments.TickBounds`)
``before_min_time``   time before ``min_time_ms`` (2000-01-01 by default)
``future_timestamp``  time later than now + ``max_tick_lead_ms``
====================  ==========================================================

The value rules are :class:`tickwave.contracts.Tick`'s own, so a tick that keeps every
rule is a valid ``Tick``. Each rule reads columns (:class:`TickColumns`): ingest applies
the table to whole batches of rows at once (``streams.ingest.logic.TickValidator``);
:func:`check_raw` decodes one message and, when it fails, applies the same table to that
one row, so both name the same rule with the same detail. What the table does not cover
(malformed JSON, a missing field, a symbol the contract cannot hold) is a ``contract``
rejection.

The bounds come from each symbol's instrument (the ``symbols`` settings, else the grid:
:mod:`tickwave.instruments`); a symbol without one (a dataflow that accepts every
symbol) gets :data:`tickwave.instruments.UNLISTED_BOUNDS`. Every value past this table is
finite and bounded, so no sum, square or ratio the dataflow makes of it overflows.

The stateful spike filter (``SpikeFilter``, one per symbol, the one rule of the dataflow
and of the execution process's prices) then rejects a mid price that jumps more than
``threshold_bps`` away from a slow reference. A move is believed as a level shift (a gap,
not bad ticks) only when it holds in time and size: ``confirm_after`` consecutive ticks on
the same side, in event time no earlier than the last tick believed at the old level,
spanning at least ``confirm_ms``, all within ``tolerance_bps`` of one another, and, once
the reference has held for ``confirm_after`` ticks, within ``max_factor`` of it. Then the
reference jumps to the new level; a burst of absurd ticks never moves it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, Protocol, get_args, get_origin, overload

import msgspec
import numpy as np
import numpy.typing as npt
import tickwave_core

from tickwave.config.streams import MAX_TICK_LEAD_MS, StreamsSettings
from tickwave.contracts import DeadLetter, Tick, decode, encode
from tickwave.errors import ContractError
from tickwave.instruments import UNLISTED_BOUNDS, TickBounds, tick_bounds

if TYPE_CHECKING:
    from tickwave.config import SymbolSpec

UINT32_MAX = 2**32 - 1
MIN_TIME_MS = 946_684_800_000  # 2000-01-01T00:00:00Z: earlier stamps are unit mistakes (seconds read as ms)
CONTRACT = "contract"
STEP_FAILED = "step_failed"  # the reason code of a record a dataflow step raised on (streams.flow)

BoolArray = npt.NDArray[np.bool_]


class TickColumns(Protocol):
    """Tick fields as columns, one entry per row (``symbol_code[i]`` indexes ``symbols``)."""

    @property
    def symbols(self) -> tuple[str, ...]: ...  # noqa: D102
    @property
    def symbol_code(self) -> npt.NDArray[np.int32]: ...  # noqa: D102
    @property
    def time_ms(self) -> npt.NDArray[np.int64]: ...  # noqa: D102
    @property
    def bid(self) -> npt.NDArray[np.float64]: ...  # noqa: D102
    @property
    def ask(self) -> npt.NDArray[np.float64]: ...  # noqa: D102
    @property
    def last(self) -> npt.NDArray[np.float64]: ...  # noqa: D102
    @property
    def volume(self) -> npt.NDArray[np.float64]: ...  # noqa: D102
    @property
    def flags(self) -> npt.NDArray[np.int64]: ...  # noqa: D102


@dataclass(frozen=True)
class TickRule:
    """One rule a tick must keep: its reason code, the rows that break it, and why row ``i`` does.

    ``broken`` sees NaN as "not broken" except in the rule about NaN, so each row is
    named by the first rule it really breaks.
    """

    code: str
    broken: Callable[[TickColumns], BoolArray]
    detail: Callable[[TickColumns, int], str]


def reason(code: str, detail: str) -> str:
    """Return a dead-letter reason: a stable code, then the specifics."""
    return f"{code}: {detail}"


def _fmt(value: Any) -> str:
    return repr(float(value)) if isinstance(value, float | np.floating) else str(value)


def _non_finite(c: TickColumns, i: int) -> str:
    values = {"bid": c.bid[i], "ask": c.ask[i], "last": c.last[i], "volume": c.volume[i]}
    return ", ".join(f"{name} {_fmt(value)}" for name, value in values.items() if not np.isfinite(value))


_VALUE_RULES = (
    TickRule(
        "non_finite",
        lambda c: ~(np.isfinite(c.bid) & np.isfinite(c.ask) & np.isfinite(c.last) & np.isfinite(c.volume)),
        _non_finite,
    ),
    TickRule(
        "non_positive",
        lambda c: (c.bid <= 0) | (c.ask <= 0),
        lambda c, i: f"bid {_fmt(c.bid[i])}, ask {_fmt(c.ask[i])}",
    ),
    TickRule("ask_below_bid", lambda c: c.ask < c.bid, lambda c, i: f"ask {_fmt(c.ask[i])} < bid {_fmt(c.bid[i])}"),
    TickRule(
        "negative",
        lambda c: (c.last < 0) | (c.volume < 0),
        lambda c, i: f"last {_fmt(c.last[i])}, volume {_fmt(c.volume[i])}",
    ),
    TickRule("bad_flags", lambda c: (c.flags < 0) | (c.flags > UINT32_MAX), lambda c, i: f"flags {c.flags[i]}"),
)


def _bounds_of(c: TickColumns, bounds: Mapping[str, TickBounds] | None) -> tuple[TickBounds, ...]:
    # Each symbol's bounds, indexed like ``c.symbols``, with a last entry for a row without a symbol (code -1).
    found = (bounds or {}).get
    return (*(found(name, UNLISTED_BOUNDS) for name in c.symbols), UNLISTED_BOUNDS)


def _implausible_rule(bounds: Mapping[str, TickBounds] | None) -> TickRule:
    def broken(c: TickColumns) -> BoolArray:
        table = _bounds_of(c, bounds)
        low = np.array([b.price_min for b in table], dtype=np.float64)[c.symbol_code]
        high = np.array([b.price_max for b in table], dtype=np.float64)[c.symbol_code]
        volume_max = np.array([b.tick_volume_max for b in table], dtype=np.float64)[c.symbol_code]
        prices = (c.bid < low) | (c.bid > high) | (c.ask < low) | (c.ask > high)
        last = (c.last != 0) & ((c.last < low) | (c.last > high))
        result: BoolArray = prices | last | (c.volume > volume_max)
        return result

    def detail(c: TickColumns, i: int) -> str:
        limits = _bounds_of(c, bounds)[c.symbol_code[i]]
        values = [("bid", float(c.bid[i])), ("ask", float(c.ask[i]))]
        values += [("last", float(c.last[i]))] if c.last[i] != 0 else []
        problems = [problem for name, value in values if (problem := limits.price_problem(name, value))]
        if c.volume[i] > limits.tick_volume_max:
            problems.append(f"volume {_fmt(c.volume[i])} > tick_volume_max {limits.tick_volume_max!r}")
        return "; ".join(problems)

    return TickRule("implausible", broken, detail)


def tick_rules(
    known_symbols: Container[str] | None,
    min_time_ms: int,
    horizon_ms: int | npt.NDArray[np.int64],
    bounds: Mapping[str, TickBounds] | None = None,
) -> tuple[TickRule, ...]:
    """Return the stateless rules in the order they are checked.

    Args:
        known_symbols: the symbols accepted (None accepts every symbol).
        min_time_ms: the earliest ``time_ms`` accepted.
        horizon_ms: the latest ``time_ms`` accepted: now + ``max_tick_lead_ms`` (one per row
            where each row has its own now, as in a replay).
        bounds: each symbol's plausibility bounds (a symbol without: ``UNLISTED_BOUNDS``).
    """

    def horizon_of(i: int) -> int:
        return horizon_ms if isinstance(horizon_ms, int) else int(horizon_ms[i])

    def unknown_symbol(c: TickColumns) -> BoolArray:
        if known_symbols is None:
            return np.zeros(len(c.symbol_code), dtype=np.bool_)
        missing = np.array([name not in known_symbols for name in c.symbols] + [False], dtype=np.bool_)
        return missing[c.symbol_code]

    return (
        TickRule("unknown_symbol", unknown_symbol, lambda c, i: f"{c.symbols[c.symbol_code[i]]!r} is not in [symbols]"),
        *_VALUE_RULES,
        _implausible_rule(bounds),
        TickRule(
            "before_min_time", lambda c: c.time_ms < min_time_ms, lambda c, i: f"time_ms {c.time_ms[i]} < {min_time_ms}"
        ),
        TickRule(
            "future_timestamp",
            lambda c: c.time_ms > horizon_ms,
            lambda c, i: f"time_ms {c.time_ms[i]} > {horizon_of(i)}",
        ),
    )


def first_broken(rows: TickColumns, rules: tuple[TickRule, ...]) -> npt.NDArray[np.int16]:
    """Return, for each row, the index in ``rules`` of the first rule it breaks (-1: none)."""
    failed = np.full(len(rows.time_ms), -1, dtype=np.int16)
    for index, rule in enumerate(rules):
        failed[(failed < 0) & rule.broken(rows)] = index
    return failed


@dataclass(frozen=True)
class Rejection:
    """A message that failed validation, ready for the quarantine table and the DLQ.

    ``check`` is the rule's reason code (``"contract"``, a code of :func:`tick_rules`,
    ``"spike"``, ``"late"``); ``reason`` the specifics.
    """

    reason: str
    raw: bytes
    symbol: str = ""
    check: str = ""


@dataclass(frozen=True)
class ValidationRules:
    """Limits for the stateless checks."""

    known_symbols: frozenset[str] | None = None  # None accepts every symbol
    min_time_ms: int = MIN_TIME_MS
    max_tick_lead_ms: int = MAX_TICK_LEAD_MS
    bounds: Mapping[str, TickBounds] | None = None  # by symbol; a symbol without: UNLISTED_BOUNDS

    @classmethod
    def for_symbols(
        cls, symbols: Mapping[str, SymbolSpec], max_tick_lead_ms: int = MAX_TICK_LEAD_MS
    ) -> ValidationRules:
        """Accept the symbols of the settings' ``symbols`` table, each within its instrument's bounds."""
        return cls(frozenset(symbols), max_tick_lead_ms=max_tick_lead_ms, bounds=tick_bounds(symbols))


def _fields_struct() -> type[msgspec.Struct]:
    # Tick's fields with their plain types (no bounds, no __post_init__), built from Tick
    # itself: a message Tick refused still decodes, so the rule table can name the rule
    # it breaks.
    def plain(annotation: Any) -> Any:
        return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation

    fields = [
        (info.name, plain(info.type))
        if info.default is msgspec.NODEFAULT
        else (info.name, plain(info.type), info.default)
        for info in msgspec.structs.fields(Tick)
    ]
    config = Tick.__struct_config__
    return msgspec.defstruct(
        "TickFields", fields, tag=config.tag, tag_field=config.tag_field, frozen=True, forbid_unknown_fields=True
    )


def _column_struct() -> type[msgspec.Struct]:
    # Tick's fields with their contract types (bounds included), each a column of them but the
    # symbol (the distinct symbols) and the source (one for all): what a QuoteBatch's rows must
    # hold to decode as Ticks, built from Tick itself.
    columns = {"symbol": "symbols", "source": "source"}
    return msgspec.defstruct(
        "QuoteBatchFields",
        [
            (columns.get(info.name, info.name), info.type if info.name == "source" else list[info.type])  # type: ignore[name-defined]
            for info in msgspec.structs.fields(Tick)
        ],
        forbid_unknown_fields=True,
    )


class QuoteBatch(Sequence[Tick]):
    """Quotes of one source as columns (a backtest's ticks), each :class:`~tickwave.contracts.Tick` built when read.

    The rule table reads it as it is (a :class:`TickColumns`); the replay hands its columns to
    the execution core without a Python tick per row; anything else reads ``Tick``s. ``seq``,
    ``last``, ``volume`` and ``flags`` are zero. Every row is a tick the contract constructs:
    a row the value rules flag is built as a ``Tick`` on construction, which raises its error.
    """

    __slots__ = ("ask", "bid", "flags", "last", "seq", "source", "symbol_code", "symbols", "time_ms", "volume")

    def __init__(
        self,
        symbols: tuple[str, ...],
        symbol_code: npt.NDArray[np.int32],
        time_ms: npt.NDArray[np.int64],
        bid: npt.NDArray[np.float64],
        ask: npt.NDArray[np.float64],
        source: str = "",
    ) -> None:
        self.symbols, self.source = symbols, source
        self.symbol_code = np.ascontiguousarray(symbol_code, dtype=np.int32)
        self.time_ms = np.ascontiguousarray(time_ms, dtype=np.int64)
        self.bid = np.ascontiguousarray(bid, dtype=np.float64)
        self.ask = np.ascontiguousarray(ask, dtype=np.float64)
        if not len(self.symbol_code) == len(self.time_ms) == len(self.bid) == len(self.ask):
            raise ValueError("one symbol code, time, bid and ask per row")
        if len(self.symbol_code) and not 0 <= self.symbol_code.min() <= self.symbol_code.max() < len(symbols):
            raise ValueError("a symbol code outside the symbols")
        self.seq = self.flags = np.zeros(len(self.time_ms), dtype=np.int64)
        self.last = self.volume = np.zeros(len(self.time_ms), dtype=np.float64)
        for index in np.flatnonzero(first_broken(self, _VALUE_RULES) >= 0).tolist():
            self[index]  # the contract raises its own error

    @classmethod
    def of_quotes(cls, ticks: Sequence[Tick], source: str = "") -> QuoteBatch:
        """Return the quotes of ``ticks`` (symbol, time, bid, ask) as a batch from ``source``."""
        symbols = tuple(dict.fromkeys(tick.symbol for tick in ticks))
        code = {symbol: index for index, symbol in enumerate(symbols)}
        return cls(
            symbols,
            np.array([code[tick.symbol] for tick in ticks], dtype=np.int32),
            np.array([tick.time_ms for tick in ticks], dtype=np.int64),
            np.array([tick.bid for tick in ticks], dtype=np.float64),
            np.array([tick.ask for tick in ticks], dtype=np.float64),
            source,
        )

    def is_decodable(self) -> bool:
        """Whether every row holds what the wire carries (each field within its contract type, as ``decode`` reads it).

        A batch's message is its rows' messages: True when each would decode back to the same
        tick (the replay then takes the columns as the live process decodes them).
        """
        values = {name: getattr(self, name).tolist() for name in ("time_ms", "seq", "bid", "ask", "last", "volume")}
        try:
            msgspec.convert(
                {**values, "flags": self.flags.tolist(), "symbols": list(self.symbols), "source": self.source},
                _COLUMN_STRUCT,
            )
        except msgspec.ValidationError:
            return False
        return True

    def __len__(self) -> int:
        return len(self.time_ms)

    @overload
    def __getitem__(self, index: int) -> Tick: ...
    @overload
    def __getitem__(self, index: slice) -> list[Tick]: ...
    def __getitem__(self, index: int | slice) -> Tick | list[Tick]:
        if isinstance(index, slice):
            return [self[at] for at in range(*index.indices(len(self)))]
        return Tick(
            symbol=self.symbols[int(self.symbol_code[index])],
            time_ms=int(self.time_ms[index]),
            seq=0,
            bid=float(self.bid[index]),
            ask=float(self.ask[index]),
            source=self.source,
        )

    def __iter__(self) -> Iterator[Tick]:
        symbols, source = self.symbols, self.source
        for code, time_ms, bid, ask in zip(
            self.symbol_code.tolist(), self.time_ms.tolist(), self.bid.tolist(), self.ask.tolist(), strict=True
        ):
            yield Tick(symbol=symbols[code], time_ms=time_ms, seq=0, bid=bid, ask=ask, source=source)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(self) == len(other) and all(mine == theirs for mine, theirs in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # compared by content


@dataclass(frozen=True)
class _Columns:
    # Ticks' fields as columns (a TickColumns): one message's, or a replay's decoded ticks.
    symbols: tuple[str, ...]
    symbol_code: npt.NDArray[np.int32]
    time_ms: npt.NDArray[np.int64]
    bid: npt.NDArray[np.float64]
    ask: npt.NDArray[np.float64]
    last: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]
    flags: npt.NDArray[np.int64]

    @classmethod
    def of(cls, tick: Any) -> _Columns:  # a Tick, or the fields of one it refused
        def floats(value: float) -> npt.NDArray[np.float64]:
            return np.array([value], dtype=np.float64)

        def ints(value: int) -> npt.NDArray[np.int64]:
            # JSON integers are unbounded; past int64 they break the same rule as at its edge.
            return np.array([min(max(value, -(2**63)), 2**63 - 1)], dtype=np.int64)

        return cls(
            (tick.symbol,),
            np.zeros(1, dtype=np.int32),
            ints(tick.time_ms),
            floats(tick.bid),
            floats(tick.ask),
            floats(tick.last),
            floats(tick.volume),
            ints(tick.flags),
        )

    @classmethod
    def of_ticks(cls, ticks: Sequence[Tick]) -> _Columns:
        # Read in one pass by the execution core: a third less time than numpy's passes over each attribute.
        symbols, *columns = tickwave_core.tick_columns(list(ticks))
        types = (np.int32, np.int64, np.float64, np.float64, np.float64, np.float64, np.int64)
        return cls(
            tuple(symbols), *(np.frombuffer(column, dtype) for column, dtype in zip(columns, types, strict=True))
        )


_decode_fields = msgspec.json.Decoder(_fields_struct()).decode
_COLUMN_STRUCT: Final = _column_struct()


def _broken_rule(tick: Any, raw: bytes, rules: ValidationRules, now_ms: int) -> Rejection | None:
    # The rejection of the first rule of the table the message breaks, or None.
    row = _Columns.of(tick)
    table = tick_rules(rules.known_symbols, rules.min_time_ms, now_ms + rules.max_tick_lead_ms, rules.bounds)
    index = int(first_broken(row, table)[0])
    if index < 0:
        return None
    return Rejection(table[index].detail(row, 0), raw, tick.symbol, table[index].code)


def check_raw(raw: bytes, rules: ValidationRules, now_ms: int) -> Tick | Rejection:
    """Decode and check one message without any state (the rules of :func:`tick_rules`)."""
    try:
        tick = decode(raw, Tick)
    except ContractError as error:
        try:
            fields = _decode_fields(raw)
        except (msgspec.DecodeError, OverflowError):
            return Rejection(error.reason, raw, check=CONTRACT)
        return _broken_rule(fields, raw, rules, now_ms) or Rejection(error.reason, raw, check=CONTRACT)
    return check_decoded(tick, rules, now_ms, raw)


def check_decoded(tick: Tick, rules: ValidationRules, now_ms: int, raw: bytes | None = None) -> Tick | Rejection:
    """:func:`check_raw` after its decode (``raw``: the message; None: the tick's encoding, made for a rejection)."""
    # Tick itself kept the value rules; the rest, in one comparison on the hot path.
    limits = UNLISTED_BOUNDS if rules.bounds is None else rules.bounds.get(tick.symbol, UNLISTED_BOUNDS)
    if (
        (rules.known_symbols is None or tick.symbol in rules.known_symbols)
        and rules.min_time_ms <= tick.time_ms <= now_ms + rules.max_tick_lead_ms
        and 0 <= tick.flags <= UINT32_MAX
        and limits.price_min <= tick.bid
        and tick.ask <= limits.price_max
        and (tick.last == 0.0 or limits.price_min <= tick.last <= limits.price_max)
        and tick.volume <= limits.tick_volume_max
    ):
        return tick
    return _broken_rule(tick, encode(tick) if raw is None else raw, rules, now_ms) or tick


@dataclass(frozen=True)
class CheckedTicks:
    """Which of a sequence of ticks keep the stateless rules, and why the others do not."""

    passed: BoolArray  # one per tick
    rejections: dict[int, Rejection]  # by the tick's index: what check_decoded returns for it


def check_ticks(
    ticks: Sequence[Tick], rules: ValidationRules, now_ms: int | npt.NDArray[np.int64] | None = None
) -> CheckedTicks:
    """:func:`check_decoded` on a replay's decoded ticks in one pass of the rule table (:func:`first_broken`).

    ``now_ms``: the clock each tick is checked at, one for all or one per tick; None: each
    tick's own ``time_ms``, the replay's clock as it reaches the tick. A rejected tick's
    ``Rejection`` is the one :func:`check_decoded` makes of it (its raw bytes the tick's encoding).
    """
    rows = ticks if type(ticks) is QuoteBatch else _Columns.of_ticks(ticks)
    now = rows.time_ms if now_ms is None else np.broadcast_to(np.asarray(now_ms, dtype=np.int64), rows.time_ms.shape)
    table = tick_rules(rules.known_symbols, rules.min_time_ms, now + rules.max_tick_lead_ms, rules.bounds)
    failed = first_broken(rows, table)
    rejections: dict[int, Rejection] = {}
    for index in np.flatnonzero(failed >= 0).tolist():
        rule, tick = table[failed[index]], ticks[index]
        rejections[index] = Rejection(rule.detail(rows, index), encode(tick), tick.symbol, rule.code)
    return CheckedTicks(failed < 0, rejections)


class SpikeFilter(tickwave_core.SpikeFilter):
    """Rejects isolated price spikes of one symbol against a slow EMA reference; believes only held level shifts.

    The one rule of the dataflow's spike filter, of the execution process's prices and of a
    replay's, kept in the execution core (``spike.rs``); this class only adds
    :meth:`from_settings`. Constructed as the dataclass it replaced (the limits, then the state,
    by keyword); ``check(tick)`` returns a rejection reason or None and reads the tick's
    ``time_ms``, ``bid`` and ``ask``. Its state is pickled in the dataflow's recovery snapshots
    as that dataclass's field dict, so snapshots of either load into the other (fields added
    later read their defaults).
    """

    __slots__ = ()

    @classmethod
    def from_settings(cls, streams: StreamsSettings) -> SpikeFilter:
        """A new filter with the limits of ``streams.spike_*`` (the dataflow's and the execution process's)."""
        return cls(
            streams.spike_threshold_bps,
            confirm_after=streams.spike_confirm_ticks,
            confirm_ms=streams.spike_confirm_ms,
            tolerance_bps=streams.spike_tolerance_bps,
            max_factor=streams.spike_max_factor,
        )


def dead_letter(rejection: Rejection, received_at_ms: int, source: str = "streams") -> DeadLetter:
    """Return the quarantine record of a rejection (raw bytes as UTF-8, or base64 if binary)."""
    try:
        raw, encoding = rejection.raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        raw, encoding = base64.b64encode(rejection.raw).decode("ascii"), "base64"
    text = reason(rejection.check, rejection.reason) if rejection.check else rejection.reason
    return DeadLetter(
        source=source,
        reason=text,
        raw=raw,
        received_at_ms=received_at_ms,
        raw_encoding=encoding,  # type: ignore[arg-type]
        symbol=rejection.symbol,
    )
