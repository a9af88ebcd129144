"""The chdb engine behind the HTTP service: one database directory, one handle per request.

chdb hosts one engine per process, bound to one directory; any number of handles
(``chdb.connect`` connections) to it run queries in parallel, each with its own ``USE``,
``SET`` and temporary tables. The service therefore opens a fresh handle for every
request without a session (about 0.3 ms here), so nothing one request sets leaks into
the next, and keeps one handle per HTTP session. An anchor handle stays open for the
life of the process so the engine is not restarted between requests.

Every call here blocks (chdb releases the GIL while it works); the HTTP layer runs them
in a bounded worker pool.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from tickwave.errors import ConfigurationError
from tickwave.warehouse.sqltext import quote_identifier, quote_literal
from warehouse_server.protocol import (
    BAD_ARGUMENTS,
    NOT_ENOUGH_SPACE,
    SYNTAX_ERROR,
    QueryError,
    Summary,
    engine_error,
)
from warehouse_server.query.priority import ServerPriority

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Query-level settings every handle starts with. chdb's Python() table function reads
# objects of the calling Python process; nothing served over HTTP may reach those.
HANDLE_SETTINGS = {"allow_python_table_function": "0"}
INSERT_SLICE_BYTES = 16 * 1024 * 1024
# The least the engine reserves on disk for a new part ("Cannot reserve 1.00 MiB"). A streamed
# insert whose reservation fails is acknowledged by chdb with its rows counted as written and
# no part made: the rows are gone. So the free space is checked here first, against this
# reserve plus the insert's own size, and a full disk is refused as the engine would.
INSERT_RESERVE_BYTES = 1024 * 1024
# A handle option goes into chdb's connection string (``path?name=value&...``): names and
# values are checked whole, so no value can add an option of its own.
_OPTION = re.compile(r"[A-Za-z0-9_.\-/]{1,128}")
# chdb raises UnicodeDecodeError, not RuntimeError, for an error whose text is not UTF-8
# (one quoting a binary literal of the query): both are the engine refusing the query.
_ENGINE_FAILURES = (RuntimeError, UnicodeDecodeError)

# Output formats whose streamed chunks concatenate into a valid result as they are.
_CONCATENABLE = frozenset(
    {
        "native",
        "rowbinary",
        "tabseparated",
        "tsv",
        "tabseparatedraw",
        "tsvraw",
        "csv",
        "jsoneachrow",
        "jsonstringseachrow",
        "jsoncompacteachrow",
        "jsoncompactstringseachrow",
        "jsonlines",
        "ndjson",
        "values",
        "rawblob",
        "null",
    }
)
# Formats that repeat a header in every chunk: how many lines to drop from later chunks.
_HEADER_LINES = {
    "tabseparatedwithnames": 1,
    "tsvwithnames": 1,
    "tabseparatedrawwithnames": 1,
    "tsvrawwithnames": 1,
    "tabseparatedwithnamesandtypes": 2,
    "tsvwithnamesandtypes": 2,
    "tabseparatedrawwithnamesandtypes": 2,
    "tsvrawwithnamesandtypes": 2,
    "csvwithnames": 1,
    "csvwithnamesandtypes": 2,
    "jsoncompacteachrowwithnames": 1,
    "jsoncompacteachrowwithnamesandtypes": 2,
}


def _chdb_module() -> Any:
    # Imported lazily: loading the engine library costs ~0.3 s and the clients never need it.
    from chdb import _chdb

    return _chdb


def engine_text(sql: str | bytes) -> bytes:
    """Return the query as the engine gets it: the bytes the request carried.

    SQL is decoded with ``surrogateescape`` (:mod:`warehouse_server.query.planning`), so bytes that
    are not UTF-8 (a binary literal, a Latin-1 string) come back exactly as they were sent.
    """
    return sql if isinstance(sql, bytes) else sql.encode("utf-8", "surrogateescape")


def _failure(exc: Exception) -> QueryError:
    if isinstance(exc, UnicodeDecodeError) and isinstance(exc.object, bytes):
        return engine_error(exc.object.decode("utf-8", "replace"))
    return engine_error(str(exc))


def _summary_of(result: Any, elapsed_ns: int) -> Summary:
    return Summary(
        read_rows=int(result.storage_rows_read()),
        read_bytes=int(result.storage_bytes_read()),
        written_rows=int(result.rows_written()),
        written_bytes=int(result.bytes_written()),
        result_rows=int(result.rows_read()),
        result_bytes=int(result.bytes_read()),
        elapsed_ns=elapsed_ns,
    )


def _add(first: Summary, second: Summary) -> Summary:
    return Summary(
        read_rows=first.read_rows + second.read_rows,
        read_bytes=first.read_bytes + second.read_bytes,
        written_rows=first.written_rows + second.written_rows,
        written_bytes=first.written_bytes + second.written_bytes,
        result_rows=first.result_rows + second.result_rows,
        result_bytes=first.result_bytes + second.result_bytes,
        elapsed_ns=max(first.elapsed_ns, second.elapsed_ns),
    )


@dataclass(frozen=True)
class Classification:
    """What the engine's parser says a statement does, without running it."""

    statement_count: int
    is_read_only: bool


class Handle:
    """One chdb connection: its own current database, settings and temporary tables."""

    def __init__(
        self, connection: Any, readonly: int, volume: Path | None = None, priority: ServerPriority | None = None
    ) -> None:
        """Wrap an open chdb connection created at ``readonly`` level; ``volume`` holds the engine's data.

        The calls the lowest-priority thread makes (run, classify, close) go through ``priority``.
        """
        self._connection = connection
        self.readonly = readonly
        self._volume = volume
        self._priority = priority

    def _at_server_priority(self, function: Callable[[], T]) -> T:
        return function() if self._priority is None else self._priority.call(function)

    def _run(
        self, sql: str | bytes, output_format: str = "TabSeparated", params: Mapping[str, str] | None = None
    ) -> Any:
        text, options = engine_text(sql), dict(params or {})
        try:
            return self._at_server_priority(lambda: self._connection.query(text, output_format, params=options))
        except _ENGINE_FAILURES as exc:
            raise _failure(exc) from exc

    def classify(self, sql: str, database: str) -> Classification:
        """Ask the engine's parser how many statements ``sql`` holds and whether it only reads."""
        text = engine_text(sql)
        report = self._at_server_priority(lambda: self._connection.classify_query(text, database))
        is_read_only = report["query_class"] == _chdb_module().query_class.READ_ONLY
        return Classification(int(report["statement_count"]), bool(is_read_only))

    def explain_ast(self, sql: str, params: Mapping[str, str]) -> str:
        """Return the engine's parse tree of ``sql`` (``EXPLAIN AST``, parameters substituted); nothing runs."""
        return str(self._run("EXPLAIN AST " + sql, "TabSeparatedRaw", params).bytes().decode("utf-8", "replace"))

    def use(self, database: str) -> None:
        """Make ``database`` current (UNKNOWN_DATABASE if it does not exist)."""
        self._run(f"USE {quote_identifier(database)}")

    def current_database(self) -> str:
        """Return the current database of this handle."""
        return str(self._run("SELECT currentDatabase()").bytes().decode().strip())

    def apply_settings(self, settings: Mapping[str, str]) -> None:
        """Apply settings with one SET (the engine rejects unknown names and readonly violations)."""
        if settings:
            assignments = ", ".join(f"{name} = {quote_literal(value)}" for name, value in settings.items())
            self._run(f"SET {assignments}")

    def settings_snapshot(self, names: list[str]) -> tuple[dict[str, str], list[str]]:
        """Return (changed settings with their values, names still at their defaults) among ``names``."""
        if not names:
            return {}, []
        listed = ", ".join(quote_literal(name) for name in names)
        query = f"SELECT name, value, changed FROM system.settings WHERE name IN ({listed})"  # noqa: S608 - quoted
        rows = self._run(query, "JSONCompact")
        data = json.loads(rows.bytes())["data"]
        changed = {str(name): str(value) for name, value, is_changed in data if int(is_changed)}
        defaults = [str(name) for name, _value, is_changed in data if not int(is_changed)]
        return changed, defaults

    def restore_settings(self, changed: Mapping[str, str], defaults: list[str]) -> None:
        """Put settings back as :meth:`settings_snapshot` found them."""
        self.apply_settings(changed)
        if defaults:
            self._run("SET " + ", ".join(f"{name} = DEFAULT" for name in defaults))

    def insert(
        self, statement: str, input_format: str, data: memoryview, params: Mapping[str, str] | None = None
    ) -> Summary:
        """Stream ``data`` into ``INSERT ... FORMAT input_format`` and commit it.

        With query ``params``, ``VALUES`` rows are sent with the statement as one query:
        ClickHouse substitutes parameters in VALUES rows (``({s:String})``), and chdb's
        streamed insert takes none.

        Raises:
            QueryError: with the engine's code (NOT_ENOUGH_SPACE when the data's volume cannot
                hold it); nothing is committed on failure.
        """
        self._check_space(len(data))
        started = time.perf_counter_ns()
        if params and input_format.lower() == "values":
            result = self._run(engine_text(statement) + b" VALUES " + bytes(data), "TabSeparated", params)
            return _summary_of(result, time.perf_counter_ns() - started)
        try:
            inserter = self._connection.send_insert(engine_text(statement), input_format)
        except _ENGINE_FAILURES as exc:
            raise _failure(exc) from exc
        try:
            for offset in range(0, len(data), INSERT_SLICE_BYTES):
                self._connection.insert_append(inserter, bytes(data[offset : offset + INSERT_SLICE_BYTES]))
            result = self._connection.insert_done(inserter)
        except _ENGINE_FAILURES as exc:
            self._cancel_insert(inserter)
            raise _failure(exc) from exc
        return _summary_of(result, time.perf_counter_ns() - started)

    def _check_space(self, size: int) -> None:
        if self._volume is None:
            return
        free = shutil.disk_usage(self._volume).free
        if free < INSERT_RESERVE_BYTES + size:
            raise QueryError(
                NOT_ENOUGH_SPACE,
                f"Cannot reserve {(INSERT_RESERVE_BYTES + size) / 2**20:.2f} MiB, not enough space on the "
                f"warehouse's disk ({free} bytes free)",
            )

    def _cancel_insert(self, inserter: Any) -> None:
        try:
            self._connection.insert_cancel(inserter)
        except RuntimeError:
            logger.debug("insert already ended before cancel")

    def execute(self, sql: str, output_format: str, params: Mapping[str, str]) -> tuple[bytes, Summary]:
        """Run ``sql`` to completion; return the whole output and the counters."""
        started = time.perf_counter_ns()
        result = self._run(sql, output_format, params)
        return bytes(result.bytes()), _summary_of(result, time.perf_counter_ns() - started)

    def stream(self, sql: str, output_format: str, params: Mapping[str, str]) -> ResultStream:
        """Start ``sql`` and return its output as pull-based chunks."""
        if output_format.lower() not in _CONCATENABLE and output_format.lower() not in _HEADER_LINES:
            if output_format.lower() == "arrowstream":
                return _ArrowStreamReframer(self._start(sql, output_format, params))
            return WholeResult(*self.execute(sql, output_format, params))
        raw = self._start(sql, output_format, params)
        lines = _HEADER_LINES.get(output_format.lower(), 0)
        return _HeaderStripper(raw, lines) if lines else raw

    def _start(self, sql: str, output_format: str, params: Mapping[str, str]) -> _EngineStream:
        try:
            streaming = self._connection.send_query(engine_text(sql), output_format, params=dict(params))
        except _ENGINE_FAILURES as exc:
            raise _failure(exc) from exc
        return _EngineStream(self._connection, streaming)

    def close(self) -> None:
        """Close the connection (the engine stays up while the anchor is open)."""
        self._at_server_priority(self._connection.close)


class ResultStream(ABC):
    """A query's output, pulled chunk by chunk; the summary grows as chunks arrive."""

    @property
    @abstractmethod
    def summary(self) -> Summary:
        """The counters so far (complete once :meth:`next_chunk` returned None)."""

    @abstractmethod
    def next_chunk(self) -> bytes | None:
        """Return the next piece of output, or None when the result is complete."""

    def cancel(self) -> None:  # noqa: B027 - optional hook
        """Stop the query early (idempotent)."""


class WholeResult(ResultStream):
    """A result produced in one go: commands, inserts, and formats whose chunks do not concatenate."""

    def __init__(self, body: bytes, summary: Summary) -> None:
        """Hold the whole output and its counters."""
        self._body: bytes | None = body
        self._summary = summary

    @property
    def summary(self) -> Summary:
        """The counters of the finished statement."""
        return self._summary

    def next_chunk(self) -> bytes | None:
        """Return the whole output once, then None."""
        body, self._body = self._body, None
        return body


class _EngineStream(ResultStream):
    # The summary adds up chdb's per-chunk progress: the result counts are exact, but the
    # rows and bytes read can fall short when chdb has not reported all of its reading by
    # the last chunk (seen rarely): for a streamed result they are a lower bound.
    def __init__(self, connection: Any, streaming: Any) -> None:
        self._connection = connection
        self._streaming = streaming
        self._done = False
        self._started = time.perf_counter_ns()
        self._summary = Summary()

    @property
    def summary(self) -> Summary:
        return self._summary

    def next_chunk(self) -> bytes | None:
        if self._done:
            return None
        try:
            result = self._connection.streaming_fetch_result(self._streaming)
        except _ENGINE_FAILURES as exc:
            self._done = True
            raise _failure(exc) from exc
        data = bytes(result.bytes()) if result is not None else b""
        if result is not None:
            self._summary = _add(self._summary, _summary_of(result, time.perf_counter_ns() - self._started))
        if not data:
            self._done = True
            return None
        return data

    def cancel(self) -> None:
        if not self._done:
            self._done = True
            try:
                self._connection.streaming_cancel_query(self._streaming)
            except RuntimeError:
                logger.debug("stream already ended before cancel")


class _HeaderStripper(ResultStream):
    # chdb writes the header lines of *WithNames formats into every chunk; keep the first.
    def __init__(self, inner: _EngineStream, lines: int) -> None:
        self._inner = inner
        self._lines = lines
        self._is_first = True

    @property
    def summary(self) -> Summary:
        return self._inner.summary

    def next_chunk(self) -> bytes | None:
        chunk = self._inner.next_chunk()
        if chunk is None or self._is_first:
            self._is_first = False
            return chunk
        position = 0
        for _ in range(self._lines):
            position = chunk.index(b"\n", position) + 1
        return chunk[position:]

    def cancel(self) -> None:
        self._inner.cancel()


class _ArrowStreamReframer(ResultStream):
    # chdb writes a complete Arrow IPC stream (schema ... end marker) per chunk; clients
    # read one stream, so the batches are re-written through a single stream writer.
    def __init__(self, inner: _EngineStream) -> None:
        self._inner = inner
        self._buffer = io.BytesIO()
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._closed = False

    @property
    def summary(self) -> Summary:
        return self._inner.summary

    def _take(self) -> bytes:
        data = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return data

    def next_chunk(self) -> bytes | None:
        if self._closed:
            return None
        chunk = self._inner.next_chunk()
        if chunk is None:
            self._closed = True
            if self._writer is None:
                return None
            self._writer.close()
            return self._take()
        reader = pa.ipc.open_stream(chunk)
        if self._writer is None:
            self._writer = pa.ipc.new_stream(self._buffer, reader.schema)
        for batch in reader:
            self._writer.write_batch(batch)
        return self._take()

    def cancel(self) -> None:
        self._inner.cancel()


class Engine:
    """One chdb engine bound to one directory, kept up by an anchor handle."""

    def __init__(
        self, path: Path, sandbox: Path | None = None, server_settings: Mapping[str, str] | None = None
    ) -> None:
        """Start the engine on ``path`` (created if missing), every file root of the engine in ``sandbox``.

        ``server_settings`` (memory cap, cache sizes) join the file roots on the anchor handle.

        Raises:
            QueryError: if chdb cannot open the directory (e.g. another process owns it).
            ConfigurationError: for a path chdb would misread.
        """
        if "?" in str(path):
            raise ConfigurationError(f"the warehouse directory {path} must not contain '?' (chdb reads it as options)")
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        module = _chdb_module()
        roots = sandbox_roots(sandbox) if sandbox is not None else {}
        for root in roots.values():
            Path(root).mkdir(parents=True, exist_ok=True)
        for name, value in (server_settings or {}).items():
            if not _OPTION.fullmatch(name) or not _OPTION.fullmatch(value):
                raise ConfigurationError(f"invalid engine option {name}={value}")
        options = {**roots, **(server_settings or {})}
        anchor = f"{path}?" + "&".join(f"{name}={value}" for name, value in options.items()) if options else str(path)
        try:
            self._anchor = module.connect(anchor)
        except RuntimeError as exc:
            raise engine_error(str(exc)) from exc
        version, timezone = self._anchor.query("SELECT version(), timezone()", "TabSeparated").bytes().decode().split()
        self.version: str = version
        self.timezone: str = timezone
        self.priority = ServerPriority()

    def open(self, readonly: int, limits: Mapping[str, str] | None = None) -> Handle:
        """Open a handle at ``readonly`` level (0, 1 or 2), with the handle settings and ``limits`` applied.

        At ``readonly=1`` the query cannot change any of them (the engine refuses it).
        """
        options = {**HANDLE_SETTINGS, **(limits or {})}
        if readonly:
            options["readonly"] = str(readonly)
        for name, value in options.items():
            if not _OPTION.fullmatch(name) or not _OPTION.fullmatch(value):
                raise QueryError(BAD_ARGUMENTS, f"Invalid value for setting {name}")
        connection_string = f"{self.path}?" + "&".join(f"{name}={value}" for name, value in options.items())
        try:
            connection = self.priority.call(lambda: _chdb_module().connect(connection_string))
        except RuntimeError as exc:
            raise engine_error(str(exc)) from exc
        return Handle(connection, readonly, self.path, self.priority)

    def run_admin(self, sql: str) -> bytes:
        """Run one statement on the anchor handle (start-up checks and catalog reads, never user SQL)."""
        try:
            return bytes(self.priority.call(lambda: self._anchor.query(sql, "TabSeparated").bytes()))
        except RuntimeError as exc:
            raise engine_error(str(exc)) from exc

    def close(self) -> None:
        """Close the anchor; the engine stops once every handle is closed."""
        self._anchor.close()
        self.priority.close()


def sandbox_roots(sandbox: Path) -> dict[str, str]:
    """Every file root the engine honours, inside ``sandbox`` (server settings of the anchor handle)."""
    return {
        "user_files_path": str(sandbox / "user_files"),
        "format_schema_path": str(sandbox / "format_schemas"),
        "google_protos_path": str(sandbox / "format_schemas"),
        "user_scripts_path": str(sandbox / "user_scripts"),
        "dictionaries_lib_path": str(sandbox / "dictionaries_lib"),
        "dynamic_user_defined_executable_functions_path": str(sandbox / "user_scripts"),
        "top_level_domains_path": str(sandbox / "top_level_domains"),
        "tmp_path": str(sandbox / "tmp"),
    }


def empty_query_error() -> QueryError:
    """ClickHouse's answer to a request without SQL."""
    return QueryError(SYNTAX_ERROR, "Empty query")
