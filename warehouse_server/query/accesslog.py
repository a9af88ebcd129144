"""The access log: one ``query_log`` row per HTTP request, batched off the request path.

The request path only appends a small dict to a bounded queue; a thread of its own
inserts the queued rows every ``flush_interval_s`` (or at ``batch_rows``) through a
handle of the engine, as JSONEachRow. The raw query text goes into the table's
EPHEMERAL ``query`` column, from which the engine derives ``normalized_query`` (literals
replaced by ``?``) and its hash; the raw text itself is never stored. A failed request's
error text, which quotes the query, goes the same way: into the EPHEMERAL ``exception_text``,
stored as ``exception`` with its literals masked by the engine's ``normalizeQuery``. Until the table
exists (migrations run after the service starts) rows wait: a batch the engine refused is kept as
the JSON lines it was sent as, so a retry sends them again and never encodes them again (encoding
3,900 queued rows every second kept a quarter of a core busy for as long as the table was
missing); the rows queued meanwhile are encoded once, at their first try. Past ``max_queued``
rows, queued or refused, the oldest are dropped and counted. A failed flush waits twice as long as the one
before it, up to ``RETRY_MAX_S``, and is said once, when the failures start and when they end.
``close()`` flushes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from tickwave.warehouse.sqltext import quote_identifier
from warehouse_server.metrics import observe_request
from warehouse_server.protocol import QueryError, Summary
from warehouse_server.query.engine import Handle
from warehouse_server.query.planning import Plan

logger = logging.getLogger(__name__)

TABLE = "query_log"
MAX_QUERY_CHARS = 65_536
MAX_EXCEPTION_CHARS = 2_000
EXCEPTION_INPUT = "exception_text"  # EPHEMERAL: the table keeps normalizeQuery(exception_text)
RETRY_MAX_S = 8.0  # the longest wait between two flushes while the engine refuses them


@dataclass(frozen=True)
class AccessRecord:
    """One request as the access log keeps it."""

    event_time_ms: int
    query_id: str
    user: str
    client_address: str
    http_method: str
    query_kind: str
    query: str
    duration_ms: float
    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    result_rows: int = 0
    result_bytes: int = 0
    exception_code: int = 0
    exception: str = ""

    def json_line(self) -> bytes:
        """The record as one JSONEachRow line (time as text, query and error text truncated, as table inputs)."""
        row = asdict(self)
        row["event_time_ms"] = datetime.fromtimestamp(self.event_time_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[
            :-3
        ]
        row["query"] = self.query[:MAX_QUERY_CHARS]
        del row["exception"]
        row[EXCEPTION_INPUT] = self.exception[:MAX_EXCEPTION_CHARS]  # the table stores it masked
        # A query's bytes that are not UTF-8 (kept as surrogates) are logged as "?".
        return json.dumps(row, ensure_ascii=False).encode("utf-8", "replace") + b"\n"


class AccessLog:
    """Queues access records and inserts them in batches from a background thread."""

    def __init__(
        self,
        open_handle: Callable[[], Handle],
        database: str,
        flush_interval_s: float = 1.0,
        batch_rows: int = 5_000,
        max_queued: int = 100_000,
    ) -> None:
        """Insert into ``database.query_log`` through handles from ``open_handle``."""
        self._open_handle = open_handle
        self._statement = f"INSERT INTO {quote_identifier(database)}.{TABLE} ({', '.join(_COLUMNS)})"
        self.flush_interval_s = flush_interval_s
        self.batch_rows = batch_rows
        self._queue: deque[AccessRecord] = deque(maxlen=max_queued)
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self.written = 0
        self.dropped = 0
        self.failures = 0  # flushes refused in a row
        self._unsent = b""  # the JSON lines of the rows refused so far, oldest first
        self._unsent_rows = 0
        self._thread = threading.Thread(target=self._run, name="warehouse-access-log", daemon=True)
        self._thread.start()

    def record(self, record: AccessRecord) -> None:
        """Queue one record (never blocks; the oldest is dropped when the queue is full)."""
        with self._lock:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append(record)
            if len(self._queue) >= self.batch_rows and not self.failures:
                self._wake.set()

    def _take(self) -> list[AccessRecord]:
        with self._lock:
            batch = list(self._queue)
            self._queue.clear()
            return batch

    def _keep(self, payload: bytes, rows: int) -> None:
        # The refused rows wait as they were encoded, the newest max_queued of them.
        excess = rows - (self._queue.maxlen or rows)
        if excess > 0:
            payload = payload.split(b"\n", excess)[excess]
            rows -= excess
            with self._lock:  # record() counts its drops under it too
                self.dropped += excess
        self._unsent, self._unsent_rows = payload, rows

    def wait_s(self) -> float:
        """The wait before the next flush: the interval, doubled after each refused flush up to RETRY_MAX_S."""
        return min(self.flush_interval_s * 2.0 ** min(self.failures, 16), max(RETRY_MAX_S, self.flush_interval_s))

    def flush(self) -> int:
        """Insert what waits now; return how many rows were written."""
        batch = self._take()
        if not batch and not self._unsent_rows:
            return 0
        payload = self._unsent + b"".join(r.json_line() for r in batch)
        rows = self._unsent_rows + len(batch)
        handle = self._open_handle()
        try:
            handle.insert(self._statement, "JSONEachRow", memoryview(payload))
        except QueryError as exc:
            self._keep(payload, rows)
            self.failures += 1
            if self.failures == 1:
                logger.warning("access log: %d rows wait for %s (%s); retried until it takes them", rows, TABLE, exc)
            return 0
        finally:
            handle.close()
        if self.failures:
            logger.info("access log: %d rows written after %d refused flushes", rows, self.failures)
        self._unsent, self._unsent_rows, self.failures = b"", 0, 0
        self.written += rows
        return rows

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.wait_s())
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the log must never take the service down
                logger.exception("access log flush failed")

    def close(self) -> None:
        """Stop the thread and flush what is left."""
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self.flush()


_COLUMNS = tuple(EXCEPTION_INPUT if name == "exception" else name for name in AccessRecord.__dataclass_fields__)


@dataclass(frozen=True)
class RequestOutcome:
    """Who asked what, from where, when: what the access log needs besides the plan."""

    started: float  # time.perf_counter() when the request arrived
    method: str
    user: str
    address: str
    params: Mapping[str, str]


def log_request(
    access_log: AccessLog | None,
    outcome: RequestOutcome,
    request_plan: Plan | None,
    summary: Summary | None,
    error: QueryError | None,
) -> None:
    """Record a finished request in ``access_log`` (when there is one) and in a debug line."""
    duration_ms = (time.perf_counter() - outcome.started) * 1000
    observe_request(outcome.user, error is not None, duration_ms / 1000)
    query_id = request_plan.query_id if request_plan else outcome.params.get("query_id", "")
    kind = (request_plan.keyword or "-") if request_plan else "-"
    summary = summary or Summary()
    if access_log is not None:
        access_log.record(
            AccessRecord(
                event_time_ms=int(time.time() * 1000),
                query_id=query_id,
                user=outcome.user,
                client_address=outcome.address,
                http_method=outcome.method,
                query_kind=kind,
                query=request_plan.sql if request_plan else (error.query_text if error else ""),
                duration_ms=duration_ms,
                read_rows=summary.read_rows,
                read_bytes=summary.read_bytes,
                written_rows=summary.written_rows,
                written_bytes=summary.written_bytes,
                result_rows=summary.result_rows,
                result_bytes=summary.result_bytes,
                exception_code=error.code if error else 0,
                exception=error.message if error else "",
            )
        )
    if not logger.isEnabledFor(logging.DEBUG):
        return
    logger.debug(
        "query_id=%s user=%s method=%s kind=%s status=%s read_rows=%d written_rows=%d result_rows=%d duration_ms=%.1f",
        query_id or "-",
        outcome.user,
        outcome.method,
        kind,
        f"error {error.code}" if error else "ok",
        summary.read_rows,
        summary.written_rows,
        summary.result_rows,
        duration_ms,
    )
