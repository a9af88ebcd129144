"""Replay: stream tick files (MT5 exports, generic CSV, Parquet) with constant memory.

Files are read in record batches (pyarrow's streaming CSV reader, ``ParquetFile.iter_batches``),
parsed by :mod:`streams.ingest.columns`, checked by
:class:`~streams.ingest.logic.TickValidator`, interleaved by time across files, filtered to
``[from, to)``, and released at ``speed`` times real time (or as fast as possible).

Text files may be UTF-8 (with or without BOM) or UTF-16 with a BOM (as some terminals
write); bytes that are not valid UTF-8 are read as U+FFFD, so a damaged line reaches the
dead-letter topic instead of stopping the replay. Blank lines are skipped.
"""

from __future__ import annotations

import codecs
import dataclasses
import io
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from streams.ingest.batches import Candidates, Rejected, SourceBatch, TickBatch
from streams.ingest.columns import MT5_COLUMNS, ColumnMap, MappedParser, Mt5ExportParser
from streams.ingest.logic import Pacer, TickValidator, merge_by_time, within
from tickwave.clock import Clock
from tickwave.config import SymbolSpec
from tickwave.errors import ConfigurationError
from tickwave.instruments import UNLISTED_BOUNDS
from tickwave.timezones import WallClock
from tickwave.validation import reason

logger = logging.getLogger(__name__)

FileFormat = Literal["mt5", "csv", "parquet"]
_BYTES_PER_ROW = 48  # a typical tick line; sizes CSV blocks from the batch row count
_CHUNK = 1 << 20
# A line longer than a block stops the reader (pyarrow cannot split it): keep blocks well above any tick line.
_MIN_BLOCK_BYTES = 4096


class Utf8Reader(io.RawIOBase):
    """A binary file read as UTF-8: UTF-16 (by BOM) is transcoded, invalid bytes become U+FFFD."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        head = self._file.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            self._encoding = "utf-16"
            self._file.seek(0)
        else:
            self._encoding = "utf-8"
            self._file.seek(len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0)
        self._decoder = codecs.getincrementaldecoder(self._encoding)(errors="replace")
        self._pending = memoryview(b"")
        self._is_done = False

    def readable(self) -> bool:
        """Return True (this stream is read-only)."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with the next UTF-8 bytes; return how many (0 at the end)."""
        while not self._pending and not self._is_done:
            chunk = self._file.read(_CHUNK)
            if not chunk:
                self._is_done = True
                self._pending = memoryview(self._decoder.decode(b"", final=True).encode())
            elif self._encoding == "utf-8" and chunk.isascii() and not self._decoder.getstate()[0]:
                self._pending = memoryview(chunk)  # the common case: nothing to transcode
            else:
                self._pending = memoryview(self._decoder.decode(chunk).encode())
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def close(self) -> None:
        """Close the underlying file."""
        self._file.close()
        super().close()

    @property
    def position(self) -> int:
        """Bytes of the file consumed so far."""
        return self._file.tell()


def first_line(path: Path) -> str:
    """Return the file's first line, decoded as :class:`Utf8Reader` would."""
    with Utf8Reader(path) as reader:
        head = reader.read(4096).decode(errors="replace")  # a read may end inside a character
        return head.splitlines()[0] if head else ""


def detect_format(path: Path) -> FileFormat:
    """Return ``parquet`` (by extension), ``mt5`` (by the export header), or ``csv``."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    header = [name.strip().strip("<>").upper() for name in first_line(path).split("\t")]
    return "mt5" if header[: len(MT5_COLUMNS)] == [name.strip("<>") for name in MT5_COLUMNS] else "csv"


def symbol_from_name(path: Path) -> str:
    """Return the symbol an MT5 export is named after (``EURUSD_202403040900_....csv`` -> ``EURUSD``)."""
    return path.stem.split("_")[0]


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay: parsing, time window and speed.

    Attributes:
        mapping: columns of generic CSV/Parquet files.
        symbol: the symbol of files that do not name it (overrides MT5 file names).
        clock: the zone of times in the files (MT5 exports: the broker's server clock).
        from_ms / to_ms: only ticks with ``from_ms <= time_ms < to_ms`` are sent.
        speed: 1 = real time, 10 = ten times faster, None = as fast as possible.
        batch_ticks: rows per read batch.
    """

    mapping: ColumnMap = dataclasses.field(default_factory=ColumnMap)
    symbol: str | None = None
    clock: WallClock = dataclasses.field(default_factory=lambda: WallClock("UTC"))
    from_ms: int | None = None
    to_ms: int | None = None
    speed: float | None = None
    batch_ticks: int = 65_536


class _FileStream:
    """One file: record batches -> parsed -> validated, with progress in bytes."""

    def __init__(self, path: Path, options: ReplayOptions, validator: TickValidator) -> None:
        self.path = path
        self.size = max(path.stat().st_size, 1)
        self.format = detect_format(path)
        self.validator = validator
        self.options = options
        self.consumed = 0
        self._invalid_rows: list[Rejected] = []
        self._reader: Utf8Reader | None = None

    def batches(self) -> Iterator[SourceBatch]:
        options = self.options
        parser: Mt5ExportParser | MappedParser
        if self.format == "parquet":
            parquet = pq.ParquetFile(self.path)
            parser = self._mapped_parser(parquet.schema_arrow.names)
            total_rows = max(parquet.metadata.num_rows, 1)
            columns = [name for name in options.mapping.columns() if name in parquet.schema_arrow.names]
            rows = 0
            for record_batch in parquet.iter_batches(batch_size=options.batch_ticks, columns=columns):
                rows += record_batch.num_rows
                self.consumed = int(self.size * rows / total_rows)
                yield self._checked(*self._parse(parser, record_batch))
            return
        self._reader = Utf8Reader(self.path)
        if self.format == "mt5":
            symbol = options.symbol or symbol_from_name(self.path)
            parser = Mt5ExportParser(symbol, options.clock, self.validator.bounds.get(symbol, UNLISTED_BOUNDS))
            names, delimiter, symbol_label = list(MT5_COLUMNS), "\t", symbol
        else:
            header = first_line(self.path)
            delimiter = max((",", ";", "\t"), key=header.count)
            names = [name.strip().strip('"') for name in header.split(delimiter)]
            parser, symbol_label = self._mapped_parser(names), options.symbol or ""
        expected = len(names)

        def invalid_row(row: Any) -> str:
            detail = f"expected {expected} fields, got {row.actual_columns}"
            self._invalid_rows.append(Rejected(reason("wrong_column_count", detail), row.text, symbol_label))
            return "skip"

        reader = pa_csv.open_csv(
            self._reader,
            read_options=pa_csv.ReadOptions(
                column_names=names,
                skip_rows=1,
                use_threads=False,
                block_size=max(options.batch_ticks * _BYTES_PER_ROW, _MIN_BLOCK_BYTES),
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter,
                quote_char=False if self.format == "mt5" else '"',
                escape_char=False,
                invalid_row_handler=invalid_row,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                check_utf8=False,
                null_values=[""],
                strings_can_be_null=True,
            ),
        )
        for record_batch in reader:
            self.consumed = self._reader.position
            yield self._checked(*self._parse(parser, record_batch))
        self.consumed = self.size
        if self._invalid_rows:
            yield self._checked(None, [])

    def _parse(
        self, parser: Mt5ExportParser | MappedParser, batch: pa.RecordBatch
    ) -> tuple[Candidates, list[Rejected]]:
        try:
            return parser.parse(batch)
        except TypeError as exc:  # a mapped column of a type that cannot hold ticks: fix the mapping
            raise ConfigurationError(f"{self.path.name}: {exc}; check --columns") from exc

    def _mapped_parser(self, names: list[str]) -> MappedParser:
        mapping, symbol = self.options.mapping, self.options.symbol
        missing = [name for name in (mapping.time, mapping.bid, mapping.ask) if name not in names]
        if missing:
            raise ConfigurationError(
                f"{self.path.name}: columns {missing} not found (columns: {names}); map them with "
                f"--columns time=...,bid=...,ask=...[,symbol=...,time_unit=ms|s|us|ns|iso]"
            )
        if mapping.symbol is not None and mapping.symbol not in names:
            if not symbol:
                raise ConfigurationError(
                    f"{self.path.name}: no {mapping.symbol!r} column; name the symbol with --symbols or --columns"
                )
            mapping = dataclasses.replace(mapping, symbol=None)
        return MappedParser(mapping, self.options.clock, symbol)

    def _checked(self, candidates: Candidates | None, rejected: list[Rejected]) -> SourceBatch:
        # Validate parsed rows; attach parse rejects and rows with a wrong number of fields.
        result = self.validator.validate(candidates) if candidates is not None else SourceBatch(TickBatch.empty(""))
        origin = f"replay:{self.path.name}"
        everything = (*rejected, *self._invalid_rows, *result.rejected)
        self._invalid_rows.clear()
        return SourceBatch(result.ticks, tuple(dataclasses.replace(item, origin=origin) for item in everything))

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


class ReplaySource:
    """Replays tick files into the pipeline (see the module docstring).

    Args:
        paths: the files (one symbol each for MT5 exports; several are interleaved by time).
        options: parsing, window and speed.
        registry: the known symbols.
        max_future_ms: see ``ingest.max_source_clock_lead_ms``.
        stop: set to end the replay early (SIGTERM).
        clock: the wall clock (the future-timestamp check).
        monotonic: seconds for pacing (injected by tests).
    """

    name = "replay"

    def __init__(
        self,
        paths: list[Path],
        options: ReplayOptions,
        registry: Mapping[str, SymbolSpec],
        max_future_ms: int,
        stop: threading.Event,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        missing = [str(path) for path in paths if not path.is_file()]
        if not paths or missing:
            raise ConfigurationError(f"replay needs tick files; not found: {missing or '(none given)'}")
        self.options = options
        self.stop = stop
        self._streams = [
            _FileStream(path, options, TickValidator(registry, self.name, max_future_ms, clock)) for path in paths
        ]
        self._check_named_symbols(registry)
        self.pacer = Pacer(options.speed, monotonic, stop.wait)

    def _check_named_symbols(self, registry: Mapping[str, SymbolSpec]) -> None:
        # A whole file of an unknown symbol is a configuration problem, not a data problem.
        for stream in self._streams:
            if stream.format == "mt5":
                symbol = self.options.symbol or symbol_from_name(stream.path)
                if symbol not in registry:
                    raise ConfigurationError(
                        f"{stream.path.name}: symbol {symbol!r} (from the file name) is not in the symbol "
                        f"registry; add [symbols.{symbol}] digits/tick_size, or name it with --symbols"
                    )

    def batches(self) -> Iterator[SourceBatch]:
        """Yield the files' ticks in time order, paced, with every reject."""
        merged = merge_by_time([stream.batches() for stream in self._streams])
        for batch in merged:
            if batch.rejected:
                yield SourceBatch(batch.ticks.take(slice(0, 0)), batch.rejected)
            ticks = within(batch.ticks, self.options.from_ms, self.options.to_ms)
            for part in self.pacer.pace(ticks):
                if len(part):
                    yield SourceBatch(part)
            if self.stop.is_set():
                return

    def clock_ms(self) -> int | None:
        """Return where the replayed clock stands (None at full speed)."""
        return self.pacer.virtual_now_ms()

    def progress(self) -> float:
        """Return the fraction of the files' bytes read (0..1)."""
        total = sum(stream.size for stream in self._streams)
        return min(1.0, sum(stream.consumed for stream in self._streams) / total)

    def close(self) -> None:
        """Close the files."""
        for stream in self._streams:
            stream.close()


def mt5_export_lines(ticks: TickBatch, digits: int, clock: WallClock) -> Iterator[str]:
    """Yield an MT5 "Export ticks" file for one symbol: header, then one line per tick.

    As the terminal does, a price is written only when ``flags`` says it changed
    (``TICK_FLAG_BID`` 2, ``TICK_FLAG_ASK`` 4); LAST and VOLUME stay empty when zero.
    """
    yield "\t".join(MT5_COLUMNS)
    for _code, time_ms, _seq, bid, ask, last, volume, flags in ticks.rows():
        local = datetime.fromtimestamp(clock.local_ms(time_ms) / 1000, tz=UTC)
        stamp = f"{local:%Y.%m.%d}\t{local:%H:%M:%S}.{local.microsecond // 1000:03d}"
        fields = (
            f"{bid:.{digits}f}" if flags & 2 else "",
            f"{ask:.{digits}f}" if flags & 4 else "",
            f"{last:.{digits}f}" if last else "",
            f"{volume:g}" if volume else "",
        )
        yield f"{stamp}\t{chr(9).join(fields)}\t{flags}"


def write_mt5_export(path: Path, ticks: TickBatch, digits: int, clock: WallClock) -> None:
    """Write ``ticks`` (one symbol) as an MT5 tick export (UTF-8, CRLF line ends, as Windows writes)."""
    with path.open("w", encoding="utf-8", newline="\r\n") as handle:
        for line in mt5_export_lines(ticks, digits, clock):
            handle.write(line + "\n")
