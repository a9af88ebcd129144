"""Run a plan on the engine: pick the handle, check read-only rules, apply, execute, clean up.

Runs in the server's worker threads (every call blocks). A request without a session
gets a fresh handle at its readonly level, closed afterwards. A request in a session
uses the session's handle; its per-query ``database`` and settings are undone after
the query, since in ClickHouse they apply to that query only, while ``SET``/``USE``
statements and temporary tables stay with the session.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from tickwave.warehouse.sqltext import quote_identifier
from warehouse_server.protocol import (
    BAD_ARGUMENTS,
    DATABASE_ACCESS_DENIED,
    READONLY,
    SYNTAX_ERROR,
    TOO_MANY_ROWS_OR_BYTES,
    QueryError,
    Summary,
    one_line_type,
)
from warehouse_server.query.engine import Classification, Engine, Handle, ResultStream, WholeResult, empty_query_error
from warehouse_server.query.nativeframe import (
    MIN_REVISION_WITH_BLOCK_INFO,
    NativeFramer,
)
from warehouse_server.query.planning import Plan
from warehouse_server.query.routing import SESSION_KEYWORDS, leaves_session_state, removes_database, without_format
from warehouse_server.query.sessions import (
    ConnectionSession,
    Overlay,
    Session,
    SessionStore,
    parse_session_timeout,
)
from warehouse_server.security.auth import READ_ONLY, User
from warehouse_server.security.limits import AnalystLimits, ConcurrencyLimit, analyst_handle_settings
from warehouse_server.security.policy import ReadOnlyPolicy, Request

logger = logging.getLogger(__name__)

STREAMED_KEYWORDS = frozenset({"SELECT", "WITH"})
ENGINE_DATABASE = "default"  # chdb's working database: every handle opens in it, and cannot without it
# Statements that may create, drop or rename a database: the read-only policy's catalog is stale after one.
CATALOG_STATEMENTS = frozenset({"CREATE", "DROP", "RENAME", "ATTACH", "DETACH", "EXCHANGE"})


@dataclass(frozen=True)
class SessionLimits:
    """Default and maximum session timeouts, in seconds."""

    default_timeout_s: float
    max_timeout_s: float


class Running:
    """A started request: its result stream and the clean-up to run when it is done.

    ``has_result`` is whether the statement produces a result (a query) rather than only
    a summary (DDL, INSERT, SET...): ClickHouse names an output format only for a result,
    and clients tell the two apart by that header.
    """

    def __init__(self, stream: ResultStream, cleanup: Callable[[], None], has_result: bool = True) -> None:
        """Hold ``stream`` until :meth:`close` runs ``cleanup`` (once)."""
        self.stream = stream
        self.has_result = has_result
        self._cleanup: Callable[[], None] | None = cleanup

    def add_cleanup(self, cleanup: Callable[[], None]) -> None:
        """Run ``cleanup`` too when the request is closed (after the handle is released)."""
        first = self._cleanup
        assert first is not None, "the request is already closed"
        self._cleanup = _both(first, cleanup)

    def close(self) -> None:
        """Cancel what is left of the stream and release the handle or session."""
        cleanup, self._cleanup = self._cleanup, None
        if cleanup is None:
            return
        try:
            self.stream.cancel()
        finally:
            cleanup()


class SentBytesCap(ResultStream):
    """A result stream refused once the bytes it has handed out would pass ``limit``.

    ``max_result_bytes`` as the engine applies it counts a block's memory, in which a
    constant column is held once however many rows repeat it: ``SELECT repeat('x', 500000)
    FROM numbers(200)`` passed a 1 MB limit and sent 100 MB. This counts the formatted bytes
    actually handed to the client, so the limit holds for what is sent; the chunk that
    would cross it is not sent.
    """

    def __init__(self, inner: ResultStream, limit: int) -> None:
        """Pass ``inner``'s chunks on while their total stays within ``limit`` bytes."""
        self._inner = inner
        self._limit = limit
        self._sent = 0

    @property
    def summary(self) -> Summary:
        """The inner stream's counters."""
        return self._inner.summary

    def next_chunk(self) -> bytes | None:
        """Return the next chunk, or refuse the result with TOO_MANY_ROWS_OR_BYTES past the limit."""
        chunk = self._inner.next_chunk()
        if chunk is None:
            return None
        self._sent += len(chunk)
        if self._sent > self._limit:
            self._inner.cancel()
            raise QueryError(
                TOO_MANY_ROWS_OR_BYTES,
                f"Limit for result exceeded, max bytes: {self._limit}, current bytes: at least {self._sent}",
            )
        return chunk

    def cancel(self) -> None:
        """Cancel the inner stream."""
        self._inner.cancel()


class FramedNative(ResultStream):
    """A streamed Native result framed block by block for the client's protocol revision.

    The engine hands out one block per chunk (seen for every streamed query, down to blocks of
    ten rows), so each chunk is framed as it comes: nothing is held beyond the block being
    framed. When the first block shows a column whose zone the client expects, the stream is
    cancelled before anything is sent, the engine describes the query (a handle runs one
    statement at a time: another one ends its open stream) and the query starts again. Only
    such queries run twice; every other one runs once with nothing asked.
    """

    def __init__(
        self, start: Callable[[], ResultStream], framer: NativeFramer, describe: Callable[[], list[str] | None]
    ) -> None:
        """Stream what ``start`` starts, framed by ``framer``; ``describe`` gives the column types when needed."""
        self._start = start
        self._framer = framer
        self._describe = describe
        self._inner = start()
        self._first = True

    @property
    def summary(self) -> Summary:
        """The inner stream's counters."""
        return self._inner.summary

    def next_chunk(self) -> bytes | None:
        """Return the next block, framed."""
        chunk = self._inner.next_chunk()
        if self._first and chunk is not None:
            self._first = False
            if self._framer.wants_types(chunk):
                self._inner.cancel()
                self._framer.use_types(self._describe())
                self._inner = self._start()
                chunk = self._inner.next_chunk()
        return None if chunk is None else self._framer.frame(chunk, one_block=True)

    def cancel(self) -> None:
        """Cancel the inner stream."""
        self._inner.cancel()


def _result_types(handle: Handle, plan: Plan) -> list[str] | None:
    """The full type of each column of the plan's result, as the engine describes the query (None if it cannot).

    Native for a revision-0 client names a top-level ``DateTime('zone')`` column ``DateTime``;
    the engine's description keeps the zone. It runs on the query's own handle (settings,
    database, session tables) while no stream is open on it, on the statement already
    checked, and executes nothing.
    """
    try:
        body, _ = handle.execute(f"DESCRIBE TABLE ({without_format(plan.sql)}\n)", "JSONEachRow", plan.query_params)
    except QueryError as exc:
        logger.debug("no column types for the Native framing: %s", exc)
        return None
    return [one_line_type(str(json.loads(line)["type"])) for line in body.splitlines() if line.strip()]


def _check(plan: Plan, handle: Handle, policy: ReadOnlyPolicy) -> Classification:
    if plan.insert_format is None and not plan.sql.strip():
        raise empty_query_error()
    if plan.insert_format is not None and plan.readonly:
        raise QueryError(READONLY, "Cannot execute query in readonly mode")
    if removes_database(plan.sql, ENGINE_DATABASE):
        # Once gone, no handle opens again (not even to create it anew) until the server restarts.
        raise QueryError(
            DATABASE_ACCESS_DENIED,
            f"Database {ENGINE_DATABASE} is the engine's own and cannot be dropped, detached or renamed",
        )
    classification = handle.classify(plan.sql, plan.database or "")
    if classification.statement_count > 1:
        raise QueryError(SYNTAX_ERROR, "Syntax error: Multi-statements are not allowed")
    if plan.readonly:
        request = Request(plan.is_analyst, plan.database or "", plan.output_format)
        policy.check(plan.sql, plan.query_params, request, lambda sql: handle.explain_ast(sql, plan.query_params))
    return classification


def _is_read(plan: Plan, handle: Handle, policy: ReadOnlyPolicy, is_vetted: bool) -> bool:
    # A vetted plan carries the engine's answer from the check that ran in the user's own thread.
    if is_vetted and plan.vetted_is_read is not None:
        return plan.vetted_is_read
    return _check(plan, handle, policy).is_read_only


def _has_result(plan: Plan, is_read: bool) -> bool:
    # The engine's parser says whether the statement only reads: those (SELECT, SHOW, DESCRIBE,
    # EXISTS, EXPLAIN...) answer with a result; writes, DDL and SET/USE/SYSTEM with a summary.
    return plan.insert_format is None and is_read


def _load_external(handle: Handle, plan: Plan) -> None:
    # External data: each file becomes a temporary table of this handle before the query runs.
    for table in plan.external_tables:
        create = f"CREATE TEMPORARY TABLE {quote_identifier(table.name)} ({table.structure}) ENGINE = Memory"
        if handle.classify(create, "").statement_count != 1:
            raise QueryError(BAD_ARGUMENTS, f"Invalid structure of external table {table.name}: {table.structure}")
        handle.execute(create, "TabSeparated", {})
        if table.data:
            handle.insert(f"INSERT INTO {quote_identifier(table.name)}", table.input_format, memoryview(table.data))


def _drop_external(session: Session, plan: Plan) -> None:
    # A session keeps its temporary tables; external data lives for one query only.
    for table in plan.external_tables:
        try:
            session.handle.execute(f"DROP TEMPORARY TABLE IF EXISTS {quote_identifier(table.name)}", "TabSeparated", {})
        except QueryError:
            session.is_broken = True
            logger.warning(
                "session=%s could not drop external table %s; it will be closed", session.session_id, table.name
            )


def _apply(handle: Handle, plan: Plan) -> None:
    if plan.database:
        handle.use(plan.database)
    handle.apply_settings(plan.engine_settings)


def _undo(handle: Handle, overlay: Overlay) -> None:
    handle.restore_settings(overlay.changed, overlay.defaults)
    if overlay.previous_database is not None:
        handle.use(overlay.previous_database)


def _undo_in(session: Session, overlay: Overlay) -> None:
    try:
        _undo(session.handle, overlay)
    except QueryError:
        session.is_broken = True
        logger.warning("session=%s could not undo per-query settings; it will be closed", session.session_id)
        raise


def _overlay(handle: Handle, plan: Plan) -> Overlay:
    """Apply the plan's per-query database and settings to a session handle, remembering the old state."""
    changed, defaults = handle.settings_snapshot(list(plan.engine_settings))
    previous_database = handle.current_database() if plan.database else None
    overlay = Overlay(plan.database, dict(plan.engine_settings), changed, defaults, previous_database)
    try:
        _apply(handle, plan)
    except QueryError:
        _undo(handle, overlay)
        raise
    return overlay


def _prepare_session(session: Session, plan: Plan) -> None:
    """Bring the session handle to this query's per-query database and settings.

    ``SET``/``USE`` change the session itself, so they run on the session's own state:
    any per-query overlay is undone first and none is applied to them.
    """
    wanted = (plan.database, plan.engine_settings)
    current = session.overlay
    changes_session = plan.keyword in SESSION_KEYWORDS
    if current is not None and not changes_session and (current.database, current.settings) == wanted:
        return
    if current is not None:
        session.overlay = None
        _undo_in(session, current)
    if changes_session or not (plan.database or plan.engine_settings):
        return
    session.overlay = _overlay(session.handle, plan)


def _run(handle: Handle, plan: Plan) -> ResultStream:
    if plan.insert_format is not None:
        return WholeResult(b"", handle.insert(plan.sql, plan.insert_format, plan.data, plan.query_params))
    if plan.client_revision >= MIN_REVISION_WITH_BLOCK_INFO and plan.output_format.lower() == "native":
        # clickhouse-connect (54405) and clickhouse-go (54460) decode Native for the revision they announce.
        if plan.keyword in STREAMED_KEYWORDS:
            return FramedNative(
                lambda: handle.stream(plan.sql, plan.output_format, plan.query_params),
                NativeFramer(plan.client_revision, lambda: None),
                lambda: _result_types(handle, plan),
            )
        body, summary = handle.execute(plan.sql, plan.output_format, plan.query_params)
        return WholeResult(NativeFramer(plan.client_revision, lambda: _result_types(handle, plan)).frame(body), summary)
    if plan.keyword in STREAMED_KEYWORDS:
        return handle.stream(plan.sql, plan.output_format, plan.query_params)
    # DDL, SET, SHOW... have small results and chdb streams only SELECTs.
    return WholeResult(*handle.execute(plan.sql, plan.output_format, plan.query_params))


ENGINE_USER = "default"  # the engine's local user, who runs every query


class Executor:
    """Starts plans on one engine, with its sessions, the read-only policy and the analyst's limits."""

    def __init__(
        self,
        engine: Engine,
        sessions: SessionStore,
        limits: SessionLimits,
        policy: ReadOnlyPolicy,
        analyst_limits: AnalystLimits,
        analyst_database: str = "",
    ) -> None:
        """Use ``engine`` for fresh handles and ``sessions`` for session requests.

        A read-only user's unqualified names resolve in ``analyst_database`` unless the request
        names a database: never in the engine's default database, whose tables are host files.
        """
        self.engine = engine
        self.sessions = sessions
        self.limits = limits
        self.policy = policy
        self.analyst_limits = analyst_limits
        self.analyst_database = analyst_database
        self.concurrency = ConcurrencyLimit(analyst_limits.max_concurrent_queries)

    def _in_database(self, plan: Plan) -> Plan:
        if plan.is_analyst and not plan.database and self.analyst_database:
            return replace(plan, database=self.analyst_database)
        return plan

    def vet(self, plan: Plan) -> Plan:
        """Check a read-only plan against the policy on a handle of its own; return the plan to start.

        The HTTP layer runs this in the read-only user's own thread: the policy's work (the engine's
        parse, then Python over its tree) never takes a thread of the pool the writers share.

        Raises:
            QueryError: for a refused or invalid request.
        """
        plan = self._in_database(plan)
        handle = self.engine.open(plan.readonly)
        try:
            classification = _check(plan, handle, self.policy)
        finally:
            handle.close()
        return replace(plan, vetted_is_read=classification.is_read_only)

    def admit(self, user: User) -> Callable[[], None]:
        """Take one of a read-only user's query slots; return its release (idempotent).

        The HTTP layer calls this before it reads or decodes a body, so the work a
        read-only user can start at once (decoding included) is bounded by its slots.

        Raises:
            QueryError: TOO_MANY_SIMULTANEOUS_QUERIES when the user's slots are all taken.
        """
        return self.concurrency.acquire(user.name) if user.readonly == READ_ONLY else _nothing

    def start(
        self,
        plan: Plan,
        user: str,
        slot: Callable[[], None] | None = None,
        *,
        is_vetted: bool = False,
        connection: ConnectionSession | None = None,
    ) -> Running:
        """Start ``plan`` for ``user``: on return the first chunk can be pulled.

        Args:
            plan: the request's plan.
            user: the user's name.
            slot: the release of a slot :meth:`admit` took; without one, an analyst's plan takes its own.
            is_vetted: ``plan`` came from :meth:`vet`, so the policy need not run again.
            connection: the session of the native connection the plan came on (a read-write user's).

        Raises:
            QueryError: for refused, invalid or failing requests; nothing is left open, the slot released.
        """
        release = slot if slot is not None else self.concurrency.acquire(user) if plan.is_analyst else _nothing
        try:
            running = self._start(self._in_database(plan), user, is_vetted, connection)
        except QueryError as error:
            release()
            raise _naming_the_user(error, user) from None
        except BaseException:
            release()
            raise
        finally:
            if not plan.readonly and plan.keyword in CATALOG_STATEMENTS:
                self.policy.databases.invalidate()
        running.add_cleanup(release)
        return running

    def _start(self, plan: Plan, user: str, is_vetted: bool, connection: ConnectionSession | None) -> Running:
        if plan.session is not None:
            return self._start_in_session(plan, user, is_vetted)
        if connection is not None and not plan.is_analyst:
            session = connection.take(opens=leaves_session_state(plan.sql, plan.keyword))
            if session is not None:
                return self._start_on(session, plan, is_vetted, lambda: connection.give_back(session))
        limits = None
        if plan.is_analyst:
            limits = analyst_handle_settings(plan.engine_settings, self.analyst_limits)
            plan = replace(plan, engine_settings={})
        handle = self.engine.open(plan.readonly, limits)
        try:
            is_read = _is_read(plan, handle, self.policy, is_vetted)
            _apply(handle, plan)
            _load_external(handle, plan)
            stream = _run(handle, plan)
            if limits is not None:
                stream = SentBytesCap(stream, int(limits["max_result_bytes"]))
            return Running(stream, handle.close, _has_result(plan, is_read))
        except BaseException:
            handle.close()
            raise

    def _start_in_session(self, plan: Plan, user: str, is_vetted: bool) -> Running:
        request = plan.session
        assert request is not None
        if plan.is_analyst and plan.engine_settings:
            name = next(iter(plan.engine_settings))
            raise QueryError(READONLY, f"Cannot modify '{name}' setting in readonly mode: the session is read-only")
        timeout_s = parse_session_timeout(request.timeout, self.limits.default_timeout_s, self.limits.max_timeout_s)
        # The session's handle carries the user's own level; a GET's level 2 is checked per query.
        session = self.sessions.acquire(
            user, request.session_id, 1 if plan.is_analyst else 0, timeout_s, request.must_exist
        )
        return self._start_on(session, plan, is_vetted, lambda: self.sessions.release(session, close=request.close))

    def _start_on(self, session: Session, plan: Plan, is_vetted: bool, give_back: Callable[[], None]) -> Running:
        """Start ``plan`` on the taken ``session``; ``give_back`` releases it once the query is done."""

        def release() -> None:
            try:
                _drop_external(session, plan)
            finally:
                give_back()

        try:
            is_read = _is_read(plan, session.handle, self.policy, is_vetted)
            _prepare_session(session, plan)
            _load_external(session.handle, plan)
            stream = _run(session.handle, plan)
            if plan.is_analyst:
                stream = SentBytesCap(stream, self.analyst_limits.max_result_bytes)
        except BaseException:
            release()
            raise
        return Running(stream, release, _has_result(plan, is_read))

    def describe(self, plan: Plan, sql: str, connection: ConnectionSession | None = None) -> bytes:
        """Run ``sql`` (a DESCRIBE) as JSONEachRow in the plan's database and parameters.

        On the connection's session when it holds one (its temporary tables, its ``SET``), on a
        fresh handle at the plan's read-only level otherwise.
        """
        session = connection.take(opens=False) if connection is not None and not plan.is_analyst else None
        if session is None:
            handle = self.engine.open(plan.readonly)
            try:
                if plan.database:
                    handle.use(plan.database)
                return handle.execute(sql, "JSONEachRow", plan.query_params)[0]
            finally:
                handle.close()
        assert connection is not None
        try:
            _prepare_session(session, plan)
            return session.handle.execute(sql, "JSONEachRow", plan.query_params)[0]
        finally:
            connection.give_back(session)


def _nothing() -> None:
    return None


def _naming_the_user(error: QueryError, user: str) -> QueryError:
    """Name the HTTP user where the engine names its own: every query runs as the engine's ``default``."""
    prefix = f"{ENGINE_USER}: "  # "default: Not enough privileges. To execute this query, ..."
    if user == ENGINE_USER or not error.message.startswith(prefix):
        return error
    named = QueryError(error.code, f"{user}: {error.message.removeprefix(prefix)}")
    named.query_text = error.query_text
    return named


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        try:
            first()
        finally:
            second()

    return run


def next_chunk_or_close(running: Running) -> bytes | None:
    """Return the next chunk of ``running``'s result (a worker thread's call), closing it once it ends or fails.

    A result is closed (handle and slot given back) as soon as it ends or fails, before the
    client reads its last bytes and sends its next query.
    """
    try:
        chunk = running.stream.next_chunk()
    except BaseException:
        running.close()
        raise
    if chunk is None:
        running.close()
    return chunk
