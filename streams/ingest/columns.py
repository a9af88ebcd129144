"""Pure parsing of tick files, one Arrow record batch at a time, into :class:`Candidates`.

Two layouts:

- **MT5 "Export ticks"** (tab-separated ``<DATE> <TIME> <BID> <ASK> <LAST> <VOLUME> <FLAGS>``,
  dates ``2024.03.04``, times ``09:00:00.017``, server clock): the terminal writes only the
  fields a tick changed, so an empty BID/ASK/LAST repeats the value of the latest earlier
  row that was readable and whose own value was plausible (within the symbol's
  :class:`~tickwave.instruments.TickBounds`; a LAST of 0 too): a refused value is never
  carried into the rows after it. An empty VOLUME or FLAGS is 0. One file holds one
  symbol (named by the file).
- **Mapped** (generic CSV or Parquet): a :class:`ColumnMap` names the columns; every row
  is complete on its own.

Every row ends up in exactly one place: a candidate (checked next by
:class:`~streams.ingest.logic.TickValidator`) or a :class:`Rejected` with an
``unparseable`` / ``missing_field`` reason and the row as read.

Values are converted column-wise with Arrow; a batch holding a malformed value falls
back to bisecting the column, so one bad row costs a few extra casts, never the batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from streams.ingest.batches import BoolArray, Candidates, FloatArray, IntArray, Rejected
from tickwave.instruments import UNLISTED_BOUNDS, TickBounds
from tickwave.timezones import WallClock
from tickwave.validation import reason

MT5_COLUMNS = ("<DATE>", "<TIME>", "<BID>", "<ASK>", "<LAST>", "<VOLUME>", "<FLAGS>")
TimeUnit = Literal["ms", "s", "us", "ns", "iso"]
_MS_PER_UNIT = {"s": 1000.0, "ms": 1.0, "us": 1e-3, "ns": 1e-6}

# "YYYY.MM.DD HH:MM:SS.mmm": positions of digits and of separators.
_MT5_STAMP = "1970.01.01 00:00:00.000"
_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22]
_SEPARATORS = {4: ord("."), 7: ord("."), 10: ord(" "), 13: ord(":"), 16: ord(":"), 19: ord(".")}
_DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def tolerant_cast(array: pa.Array, target: pa.DataType) -> tuple[pa.Array, BoolArray]:
    """Cast ``array`` to ``target``; values that cannot be cast become null.

    Returns:
        The cast array and a mask of the values that failed (nulls in the input do not fail).
    """
    try:
        return pc.cast(array, target), np.zeros(len(array), dtype=np.bool_)
    except pa.ArrowException:
        if len(array) == 1:
            return pa.nulls(1, target), np.ones(1, dtype=np.bool_)
    middle = len(array) // 2
    left, left_failed = tolerant_cast(array.slice(0, middle), target)
    right, right_failed = tolerant_cast(array.slice(middle), target)
    return pa.concat_arrays([left, right]), np.concatenate([left_failed, right_failed])


def _is_text(array: pa.Array) -> bool:
    return bool(pa.types.is_string(array.type) or pa.types.is_large_string(array.type))


def _plain(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array


def number_column(array: pa.Array, target: pa.DataType | None = None) -> tuple[npt.NDArray[Any], BoolArray, BoolArray]:
    """Return ``(values, present, unparseable)`` of a numeric or text column.

    Absent values (null) are NaN (floats) or 0 (integers) in ``values``.

    Raises:
        TypeError: for columns of any other type (lists, dates...).
    """
    array, target = _plain(array), target or pa.float64()
    if not (_is_text(array) or pa.types.is_integer(array.type) or pa.types.is_floating(array.type)):
        raise TypeError(f"a {array.type} column cannot hold tick numbers (expected numbers or text)")
    cast, failed = tolerant_cast(array, target) if _is_text(array) else (pc.cast(array, target), None)
    if failed is not None and pa.types.is_integer(target):
        # Arrow also reads "0x1F" as an integer; tick files write integers in decimal only.
        failed |= ~np.asarray(pc.fill_null(pc.match_substring_regex(array, r"^[+-]?\d+$"), True), dtype=np.bool_)
        cast = pc.if_else(pa.array(failed), pa.scalar(None, target), cast)
    present = np.asarray(cast.is_valid(), dtype=np.bool_)
    fill = np.nan if pa.types.is_floating(target) else 0
    values = np.asarray(cast.fill_null(fill).to_numpy(zero_copy_only=False))
    return values, present, failed if failed is not None else np.zeros(len(array), dtype=np.bool_)


def _int_values(array: pa.Array) -> IntArray:
    # Integers (or timestamps) as int64 numpy, nulls as 0.
    return np.asarray(pc.cast(array, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)


def _fixed_width_bytes(array: pa.Array, width: int) -> npt.NDArray[np.uint8]:
    # Every value of ``array`` is exactly ``width`` bytes: view them as an (n, width) matrix.
    binary = pc.cast(array, pa.binary())
    if isinstance(binary, pa.ChunkedArray):
        binary = binary.combine_chunks()
    count = len(binary)
    offsets = np.frombuffer(binary.buffers()[1], dtype=np.int32)[binary.offset : binary.offset + count + 1]
    data = np.frombuffer(binary.buffers()[2], dtype=np.uint8) if count else np.empty(0, np.uint8)
    return data[offsets[0] : offsets[0] + count * width].reshape(count, width)


def days_from_civil(year: IntArray, month: IntArray, day: IntArray) -> IntArray:
    """Return days since 1970-01-01 of proleptic Gregorian dates (vectorized)."""
    year = year - (month <= 2)
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    result: IntArray = era * 146_097 + day_of_era - 719_468
    return result


def parse_mt5_stamps(date: pa.Array, time: pa.Array) -> tuple[IntArray, BoolArray]:
    """Parse MT5 ``YYYY.MM.DD`` dates and ``HH:MM:SS[.mmm]`` times into wall-clock ms.

    Returns:
        Milliseconds since 1970-01-01 on the file's clock, and which rows were valid dates
        and times (invalid rows hold 0).
    """
    time = pc.if_else(pc.equal(pc.binary_length(time), 8), pc.binary_join_element_wise(time, ".000", ""), time)
    stamps = pc.binary_join_element_wise(date, time, " ")
    has_width = pc.fill_null(pc.equal(pc.binary_length(stamps), len(_MT5_STAMP)), False)
    matrix = _fixed_width_bytes(pc.if_else(has_width, stamps, _MT5_STAMP), len(_MT5_STAMP))
    ok = np.asarray(has_width, dtype=np.bool_).copy()
    digits = matrix[:, _DIGITS].astype(np.int64) - ord("0")
    ok &= ((digits >= 0) & (digits <= 9)).all(axis=1)
    for position, expected in _SEPARATORS.items():
        ok &= matrix[:, position] == expected
    digits = np.where(ok[:, None], digits, 0)
    weights = 10 ** np.arange(3, -1, -1)
    year = digits[:, 0:4] @ weights
    month, day = digits[:, 4] * 10 + digits[:, 5], digits[:, 6] * 10 + digits[:, 7]
    hour, minute = digits[:, 8] * 10 + digits[:, 9], digits[:, 10] * 10 + digits[:, 11]
    second = digits[:, 12] * 10 + digits[:, 13]
    millis = digits[:, 14] * 100 + digits[:, 15] * 10 + digits[:, 16]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_index = np.clip(month - 1, 0, 11)
    month_days = _DAYS_IN_MONTH[month_index] + ((month == 2) & leap)
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days) & (hour < 24) & (minute < 60) & (second < 60)
    days = days_from_civil(year, np.where(ok, month, 1), np.where(ok, day, 1))
    local_ms: IntArray = days * 86_400_000 + hour * 3_600_000 + minute * 60_000 + second * 1000 + millis
    return np.where(ok, local_ms, 0), ok


def forward_fill(values: FloatArray, present: BoolArray, feeds: BoolArray, carry: float) -> tuple[FloatArray, float]:
    """Fill absent values with the latest earlier value from a row in ``feeds`` (else ``carry``).

    Returns:
        The filled column (present values unchanged) and the carry for the next batch.
    """
    positions = np.where(feeds, np.arange(len(values)), -1)
    latest = np.maximum.accumulate(positions) if len(values) else positions
    filled = np.where(latest >= 0, values[np.maximum(latest, 0)], carry)
    next_carry = float(values[latest[-1]]) if len(values) and latest[-1] >= 0 else carry
    return np.where(present, values, filled), next_carry


Check = tuple[BoolArray, Callable[[int], str]]  # rows that fail, and the reason of one row


def _describe(code: str, label: str, array: pa.Array) -> Callable[[int], str]:
    return lambda row: reason(code, f"{label} {array[row].as_py()!r}")


def _always(text: str) -> Callable[[int], str]:
    return lambda _row: text


def _to_utc(clock: WallClock, local_ms: IntArray, valid: BoolArray) -> IntArray:
    # Convert only real readings: placeholders (0 = 1970) would defeat the zone's fast path.
    result = np.zeros(len(local_ms), dtype=np.int64)
    result[valid] = clock.to_utc_ms(local_ms[valid])
    return result


def _first_failure(checks: list[Check]) -> dict[int, str]:
    # Row -> reason of the first check it fails.
    reasons: dict[int, str] = {}
    for failed, describe in checks:
        for row in np.flatnonzero(failed).tolist():
            if row not in reasons:
                reasons[row] = describe(row)
    return reasons


def _candidates(
    symbols: tuple[str, ...],
    symbol_code: npt.NDArray[np.int32],
    time_ms: IntArray,
    values: dict[str, npt.NDArray[Any]],
    keep: BoolArray,
    raw: Callable[[int], str],
) -> Candidates:
    kept = np.flatnonzero(keep)
    return Candidates(
        symbols,
        symbol_code[kept],
        time_ms[kept],
        values["bid"][kept],
        values["ask"][kept],
        values["last"][kept],
        values["volume"][kept],
        values["flags"][kept].astype(np.int64),
        lambda i: raw(int(kept[i])),
    )


class Mt5ExportParser:
    """Parses one MT5 tick export (one symbol), batch after batch, carrying values between them.

    Args:
        symbol: the file's symbol.
        clock: the zone of the file's clock (the broker's server time).
        bounds: the symbol's plausibility bounds: only values within them are carried.
    """

    def __init__(self, symbol: str, clock: WallClock, bounds: TickBounds = UNLISTED_BOUNDS) -> None:
        self.symbol = symbol
        self.clock = clock
        self.bounds = bounds
        self._carry = {"bid": np.nan, "ask": np.nan, "last": 0.0}

    def parse(self, batch: pa.RecordBatch) -> tuple[Candidates, list[Rejected]]:
        """Return the batch's rows as candidates and the rows that cannot be read as rejects."""
        columns = [_plain(batch.column(i)) for i in range(len(MT5_COLUMNS))]
        count = batch.num_rows

        def raw(row: int) -> str:
            return "\t".join(value if value is not None else "" for value in (col[row].as_py() for col in columns))

        local_ms, stamp_ok = parse_mt5_stamps(columns[0], columns[1])
        parsed = {name: number_column(columns[i]) for i, name in enumerate(("bid", "ask", "last", "volume"), start=2)}
        flags, _present, flags_bad = number_column(columns[6], pa.int64())
        stamps = pc.binary_join_element_wise(columns[0], columns[1], " ")
        checks: list[Check] = [(~stamp_ok, _describe("unparseable", "<DATE> <TIME>", stamps))]
        for index, (_values, _present, bad) in enumerate(parsed.values(), start=2):
            checks.append((bad, _describe("unparseable", MT5_COLUMNS[index], columns[index])))
        checks.append((flags_bad, _describe("unparseable", "<FLAGS>", columns[6])))
        readable = ~np.logical_or.reduce([failed for failed, _describe in checks])
        values: dict[str, npt.NDArray[Any]] = {"flags": flags}
        low, high = self.bounds.price_min, self.bounds.price_max
        for name in ("bid", "ask", "last"):
            column, present, _bad = parsed[name]
            with np.errstate(invalid="ignore"):
                possible = (column >= low) & (column <= high)  # NaN is neither
                if name == "last":
                    possible |= column == 0  # no deal

            feeds = readable & present & possible
            values[name], self._carry[name] = forward_fill(column, present, feeds, self._carry[name])
        volume, volume_present, _bad = parsed["volume"]
        values["volume"] = np.where(volume_present, volume, 0.0)
        for name in ("bid", "ask"):
            never_given = readable & np.isnan(values[name]) & ~parsed[name][1]
            checks.append((never_given, _always(reason("missing_field", f"<{name.upper()}> empty, none earlier"))))
        failures = _first_failure(checks)
        keep = np.ones(count, dtype=np.bool_)
        keep[list(failures)] = False
        time_ms = _to_utc(self.clock, local_ms, keep)
        rejected = [Rejected(text, raw(row), self.symbol) for row, text in sorted(failures.items())]
        candidates = _candidates((self.symbol,), np.zeros(count, np.int32), time_ms, values, keep, raw)
        return candidates, rejected


@dataclass(frozen=True)
class ColumnMap:
    """Which columns of a generic CSV or Parquet file hold each tick field.

    ``symbol`` may be None when every row has the same symbol (given separately);
    ``last``, ``volume`` and ``flags`` are optional (0 when absent). ``time_unit`` reads
    numbers as epoch ``s``/``ms``/``us``/``ns``, or text as ``iso`` 8601; timestamps typed in
    the file (Parquet) need no unit.
    """

    time: str = "time_ms"
    bid: str = "bid"
    ask: str = "ask"
    symbol: str | None = "symbol"
    last: str | None = "last"
    volume: str | None = "volume"
    flags: str | None = "flags"
    time_unit: TimeUnit = "ms"

    @classmethod
    def parse(cls, text: str) -> ColumnMap:
        """Read ``"time=ts,bid=b,ask=a,symbol=sym,time_unit=s"``; unnamed fields keep their defaults.

        Raises:
            ValueError: naming an unknown field or a bad time unit.
        """
        values: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = item.partition("=")
            if not sep or key not in cls.__dataclass_fields__:
                fields = list(cls.__dataclass_fields__)
                raise ValueError(f"bad column mapping {item!r}: use field=column with fields {fields}")
            values[key] = value or None
        if values.get("time_unit", "ms") not in ("ms", "s", "us", "ns", "iso"):
            raise ValueError(f"time_unit must be one of ms, s, us, ns, iso; got {values['time_unit']!r}")
        return cls(**values)

    def columns(self) -> list[str]:
        """Return the file columns this mapping reads."""
        names = [self.time, self.bid, self.ask, self.symbol, self.last, self.volume, self.flags]
        return [name for name in names if name]


class MappedParser:
    """Parses generic CSV/Parquet batches through a :class:`ColumnMap`.

    Args:
        mapping: the column names.
        clock: the zone of naive times in the file (times with a zone or typed as UTC ignore it).
        symbol: the symbol of every row when the mapping has no symbol column.
    """

    def __init__(self, mapping: ColumnMap, clock: WallClock, symbol: str | None = None) -> None:
        if mapping.symbol is None and not symbol:
            raise ValueError("the column mapping has no symbol column: give the symbol")
        self.mapping = mapping
        self.clock = clock
        self.symbol = symbol

    def parse(self, batch: pa.RecordBatch) -> tuple[Candidates, list[Rejected]]:
        """Return the batch's rows as candidates and the rows that cannot be read as rejects."""
        mapping, count = self.mapping, batch.num_rows
        present_names = set(batch.schema.names)

        def column(name: str | None) -> pa.Array | None:
            return _plain(batch.column(name)) if name and name in present_names else None

        def raw(row: int) -> str:
            record = batch.slice(row, 1).select([n for n in mapping.columns() if n in present_names]).to_pylist()[0]
            return json.dumps(record, default=str, ensure_ascii=False)

        checks: list[Check] = []
        symbols, codes = self._symbols(column(mapping.symbol), count, checks)
        time_ms = self._times(column(mapping.time), checks)
        values: dict[str, npt.NDArray[Any]] = {}
        for name, required in (("bid", True), ("ask", True), ("last", False), ("volume", False), ("flags", False)):
            source = getattr(mapping, name)
            array = column(source)
            target = pa.int64() if name == "flags" else pa.float64()
            if array is None:
                if required:
                    raise ValueError(f"column {source!r} ({name}) is not in the file; columns: {batch.schema.names}")
                values[name] = np.zeros(count, dtype=np.int64 if name == "flags" else np.float64)
                continue
            parsed, present, bad = number_column(array, target)
            checks.append((bad, _describe("unparseable", source, array)))
            if required:
                checks.append((~present & ~bad, _describe("missing_field", source, array)))
            values[name] = parsed if required else np.where(present, parsed, 0)
        failures = _first_failure(checks)
        keep = np.ones(count, dtype=np.bool_)
        keep[list(failures)] = False
        rejected = [
            Rejected(text, raw(row), symbols[codes[row]] if codes[row] >= 0 else "")
            for row, text in sorted(failures.items())
        ]
        return _candidates(symbols, np.maximum(codes, 0).astype(np.int32), time_ms, values, keep, raw), rejected

    def _symbols(
        self, array: pa.Array | None, count: int, checks: list[Check]
    ) -> tuple[tuple[str, ...], npt.NDArray[np.int32]]:
        if array is None:
            if self.mapping.symbol is not None and not self.symbol:
                raise ValueError(f"column {self.mapping.symbol!r} (symbol) is not in the file")
            return (str(self.symbol),), np.zeros(count, dtype=np.int32)
        encoded = pc.cast(array, pa.string()).dictionary_encode()
        codes = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int32)
        checks.append((codes < 0, _describe("missing_field", str(self.mapping.symbol), array)))
        return tuple(encoded.dictionary.to_pylist()), codes

    def _times(self, array: pa.Array | None, checks: list[Check]) -> IntArray:
        name, unit = self.mapping.time, self.mapping.time_unit
        if array is None:
            raise ValueError(f"column {name!r} (time) is not in the file")
        present = np.asarray(array.is_valid(), dtype=np.bool_)
        if pa.types.is_timestamp(array.type):
            millis = _int_values(pc.cast(array, pa.timestamp("ms", tz=array.type.tz), safe=False))
            checks.append((~present, _describe("missing_field", name, array)))
            return millis if array.type.tz else _to_utc(self.clock, millis, present)
        if unit == "iso":
            return self._iso_times(array, present, checks)
        values, present, bad = number_column(array, pa.float64() if unit == "s" else pa.int64())
        checks.append((bad, _describe("unparseable", name, array)))
        checks.append((~present & ~bad, _describe("missing_field", name, array)))
        local = np.floor(values * _MS_PER_UNIT[unit]) if unit != "ms" else values
        return _to_utc(self.clock, np.nan_to_num(local).astype(np.int64), present)

    def _iso_times(self, array: pa.Array, present: BoolArray, checks: list[Check]) -> IntArray:
        name = self.mapping.time
        text = pc.cast(array, pa.string())
        naive, naive_failed = tolerant_cast(text, pa.timestamp("ms"))
        aware, aware_failed = tolerant_cast(text, pa.timestamp("ms", tz="UTC"))
        checks.append((naive_failed & aware_failed, _describe("unparseable", name, array)))
        checks.append((~present, _describe("missing_field", name, array)))
        local = _to_utc(self.clock, _int_values(naive), present & ~naive_failed)
        return np.where(naive_failed, _int_values(aware), local)
