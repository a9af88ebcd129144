"""The ClickHouse HTTP interface as a plain ASGI application (served by uvicorn).

Why ASGI on uvicorn rather than ``http.server``: uvicorn (already in the lock, through
dagster-webserver) parses HTTP/1.1 with httptools, handles chunked request bodies,
``Expect: 100-continue``, keep-alive and chunked responses, sets TCP_NODELAY on every
connection (asyncio's transports do), and shuts down gracefully: on SIGTERM it stops
accepting, closes idle keep-alive connections and waits for in-flight requests to send
their responses. No framework sits on top: the interface needs raw control over
headers, streaming and body limits, which the ASGI messages give directly.

One request: route, authenticate (before reading the body, so a wrong password never
uploads a large body), take a read-only user's query slot, read the body up to the
user's size bound, decode and plan it in a worker thread (a read-only user's in a
single thread of its own at the lowest CPU priority, so its work can crowd neither the
writers out of the GIL nor their threads off the CPU), then start it on the engine in
the shared pool, pulling the first result bytes. Whatever the response's fate, the
query is closed and the slot released. A result that completes within the response
buffer is sent with Content-Length and an exact ``X-ClickHouse-Summary``; a larger one
is streamed (compressed as one frame, or in ClickHouse's block framing for ``compress=1``),
and an error after the first bytes is written ClickHouse's way (``X-ClickHouse-Exception-Tag``
markers) so clients notice. A debug line per request records its duration and rows.

This module coordinates; reading a request is :mod:`warehouse_server.http.request`,
writing its response :mod:`warehouse_server.http.response`, and its access-log row
:func:`warehouse_server.query.accesslog.log_request`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from warehouse_server.http.codecs import frame_method
from warehouse_server.http.connections import connection_of
from warehouse_server.http.request import (
    DISCARD_BYTES,
    ClientGone,
    Receive,
    Scope,
    Send,
    checked_query_id,
    client_address,
    discard,
    is_true,
    prepare,
    read_body,
)
from warehouse_server.http.response import FLUSH_AFTER_S, Responder, Started, pull
from warehouse_server.protocol import (
    CANNOT_DECOMPRESS,
    NOT_ENOUGH_SPACE,
    QUERY_IS_TOO_LARGE,
    TOO_LARGE_SIZE_COMPRESSED,
    TOO_MANY_SIMULTANEOUS_QUERIES,
    UNKNOWN_EXCEPTION,
    QueryError,
)
from warehouse_server.query.accesslog import AccessLog, RequestOutcome, log_request
from warehouse_server.query.dispatch import Executor, Running
from warehouse_server.query.planning import Plan
from warehouse_server.query.priority import lowest_thread_priority
from warehouse_server.security.auth import READ_ONLY, READ_WRITE, User, authenticate, presented_credentials
from warehouse_server.security.limits import LoginGuard, QueryIds

logger = logging.getLogger(__name__)
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})  # errors that mean a full disk (or quota)
_UNDECODABLE = frozenset({CANNOT_DECOMPRESS, QUERY_IS_TOO_LARGE, TOO_LARGE_SIZE_COMPRESSED})  # a body's bombs

T = TypeVar("T")

_NO_HANDLER = (
    "There is no handle {path}\n\nUse / or /ping for health checks.\n\n"
    "Send queries from your program with POST method or GET /?query=...\n"
)


@dataclass(frozen=True)
class Limits:
    """Bounds of the HTTP layer."""

    max_body_bytes: int
    max_decoded_bytes: int
    response_buffer_bytes: int
    keep_alive_timeout_s: int
    session_sweep_s: float = 5.0
    # A read-only user sends queries, never data: its body and decoded body are capped lower.
    read_only_max_body_bytes: int = 1 << 20
    read_only_max_decoded_bytes: int = 8 << 20
    # A read-only user's body that cannot be decoded (a bomb) is answered this late, its slot held meanwhile.
    read_only_refused_body_delay_s: float = 1.0

    def body_bytes_for(self, user: User) -> int:
        """Return the largest request body ``user`` may send."""
        if user.readonly == READ_ONLY:
            return min(self.max_body_bytes, self.read_only_max_body_bytes)
        return self.max_body_bytes

    def decoded_bytes_for(self, user: User) -> int:
        """Return the largest decoded (decompressed) request body ``user`` may send."""
        if user.readonly == READ_ONLY:
            return min(self.max_decoded_bytes, self.read_only_max_decoded_bytes)
        return self.max_decoded_bytes


class WarehouseApp:
    """ASGI application serving the ClickHouse HTTP interface over one engine."""

    def __init__(
        self,
        executor: Executor,
        users: Mapping[str, User],
        limits: Limits,
        pool: ThreadPoolExecutor,
        on_shutdown: Callable[[], None],
        login_guard: LoginGuard,
        access_log: AccessLog | None = None,
    ) -> None:
        """Serve with ``executor`` running plans in ``pool``; call ``on_shutdown`` after the last request."""
        self.login_guard = login_guard
        self.access_log = access_log
        self.executor = executor
        self.users = users
        self.limits = limits
        self.pool = pool
        self.on_shutdown = on_shutdown
        self.version = executor.engine.version
        self.timezone = executor.engine.timezone
        self.responder = Responder(self.version, self.timezone, limits.keep_alive_timeout_s, self._next_chunk)
        self._sweeper: asyncio.Task[None] | None = None
        self.query_ids = QueryIds()
        # At the lowest CPU priority: however many analysts send work, the writers' threads run first.
        self._read_only_pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="warehouse-read-only", initializer=lowest_thread_priority
        )

    async def _in_worker(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)

    async def _next_chunk(self, running: Running) -> bytes | None:
        return await self._in_worker(_next_or_close, running)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope (lifespan or http)."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._sweeper = asyncio.create_task(self._sweep_sessions())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._sweeper is not None:
                    self._sweeper.cancel()
                # Runs after uvicorn has let every in-flight request finish.
                self._read_only_pool.shutdown(wait=False)
                await asyncio.get_running_loop().run_in_executor(None, self.on_shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _sweep_sessions(self) -> None:
        while True:
            await asyncio.sleep(self.limits.session_sweep_s)
            await self._in_worker(self.executor.sessions.expire)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method = scope["method"]
        path = scope["path"]
        params = dict(parse_qsl(scope["query_string"].decode("utf-8", errors="replace"), keep_blank_values=True))
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        if path in ("/ping", "/replicas_status") or (path == "/" and method == "GET" and "query" not in params):
            await self.responder.plain(send, 200, b"Ok.\n")
            return
        if path != "/":
            await self.responder.plain(send, 404, _NO_HANDLER.format(path=path).encode())
            return
        if method not in ("GET", "POST"):
            await self.responder.plain(send, 405, f"Method {method} is not supported; use GET or POST\n".encode())
            return
        user: User | None = None
        presented = "-"
        echoed_id = ""  # a query id is echoed in headers only once it is known to be a valid header value
        address = client_address(scope)
        reading_started = False  # from then on read_body drains a refused body itself
        release_slot: Callable[[], None] = _nothing
        try:
            try:
                presented, password = presented_credentials(headers, params)
                try:
                    user = self._authenticate(presented, password, address)
                except QueryError:
                    # A backed-off user's refusal waits on a timer: a guess flood costs the server no CPU meanwhile.
                    delay_s = self.login_guard.delay_s(presented)
                    if delay_s:
                        await asyncio.sleep(delay_s)
                    raise
                connection = connection_of(scope)
                # The service user's connections are never closed to make room; one admitted past its
                # address's share is kept only as the service user's.
                if connection is not None and not connection.authenticated(user.readonly == READ_WRITE):
                    raise QueryError(
                        TOO_MANY_SIMULTANEOUS_QUERIES, f"Too many connections from {address} (max_connections)"
                    )
                echoed_id = checked_query_id(params, headers)
                framing = frame_method(params)
                self.query_ids.claim(echoed_id, user.name, user.readonly == READ_ONLY)
                # A read-only user's slot is taken before its body is read or decoded, so the
                # decoding work it can start at once is bounded by its slots too.
                release_slot = self.executor.admit(user)
                if connection is not None:  # engaged while it holds the slot: not closed to make room
                    connection.engage()
                reading_started = True
                body = await read_body(receive, headers, self.limits.body_bytes_for(user))
                if user.readonly == READ_ONLY:
                    # Its decoding and planning run in a thread of their own: pure Python holds
                    # the GIL, and four of them at once slowed the writers' inserts 15x.
                    request_plan, used_params = await asyncio.get_running_loop().run_in_executor(
                        self._read_only_pool, self._prepare_and_vet, method, params, headers, body, user
                    )
                    del body
                    begun = await self._in_worker(self._begin, request_plan, used_params, user, release_slot, True)
                else:  # one hand-off to a worker, as the pipeline's requests are latency-bound
                    begun = await self._in_worker(
                        self._prepare_and_begin, method, params, headers, body, user, release_slot
                    )
            except ClientGone:
                return
            except QueryError as error:
                if user is not None and user.readonly == READ_ONLY and error.code in _UNDECODABLE:
                    # The slot stays taken on a timer (no CPU): a read-only user's slots bound the bombs it
                    # can have decoded per second, rather than the server's CPU.
                    await asyncio.sleep(self.limits.read_only_refused_body_delay_s)
                is_closing = False
                if not reading_started and headers.get("expect", "").lower() != "100-continue":
                    if user is not None and user.readonly == READ_ONLY:
                        # Refused before its body (no slot): answered and closed, never drained, so a
                        # trickled body holds no connection the service user may need.
                        is_closing = True
                    else:  # let a client still sending read the refusal; the service user's up to its bound
                        await discard(receive, DISCARD_BYTES if user is None else self.limits.body_bytes_for(user))
                await self.responder.error(send, error, echoed_id, close=is_closing)
                log_request(
                    self.access_log, RequestOutcome(started, method, presented, address, params), None, None, error
                )
                return
            except Exception as exc:  # the request's outer edge: answer ClickHouse-style, log the cause
                if isinstance(exc, OSError) and exc.errno in _NO_SPACE:  # the server's own files on a full disk
                    logger.error("query_id=%s refused: %s", echoed_id or "-", exc)
                    refusal = QueryError(NOT_ENOUGH_SPACE, f"Not enough space on the warehouse's disk: {exc.strerror}")
                else:
                    logger.exception("query_id=%s failed unexpectedly", echoed_id or "-")
                    refusal = QueryError(
                        UNKNOWN_EXCEPTION, f"Unexpected error in the warehouse service: {type(exc).__name__}"
                    )
                await self.responder.error(send, refusal, echoed_id)
                return
            # A generated id is the user's too, from before the client can read it in the answer.
            self.query_ids.claim(begun.plan.query_id, user.name, is_read_only=False)
            try:
                await self.responder.result(begun, headers, receive, send, framing=framing)
            finally:
                # Whatever happened while sending (a header the server refuses to write, the
                # client gone, a cancelled task), the query is closed and its handle released.
                await self._close(begun.running)
            outcome = RequestOutcome(started, method, user.name, address, params)
            log_request(self.access_log, outcome, begun.plan, begun.running.stream.summary, None)
        finally:
            release_slot()

    async def _close(self, running: Running) -> None:
        """Close ``running`` in a worker; it is closed even if this task is cancelled meanwhile."""
        await asyncio.shield(asyncio.wrap_future(self.pool.submit(running.close)))

    def _authenticate(self, name: str, password: str, address: str) -> User:
        self.login_guard.check(name, address)
        try:
            user = authenticate(self.users, name, password)
        except QueryError:
            self.login_guard.failed(name, address)
            raise
        self.login_guard.succeeded(name, address)
        return user

    def _prepare(
        self, method: str, params: Mapping[str, str], headers: Mapping[str, str], body: bytes, user: User
    ) -> tuple[Plan, Mapping[str, str]]:
        # Worker thread: decode the body and plan the request (Python work that holds the GIL).
        return prepare(method, params, headers, body, user, self.limits.decoded_bytes_for(user))

    def _prepare_and_vet(
        self, method: str, params: Mapping[str, str], headers: Mapping[str, str], body: bytes, user: User
    ) -> tuple[Plan, Mapping[str, str]]:
        # The read-only user's own thread: decode, plan and check it against the policy.
        request_plan, used_params = self._prepare(method, params, headers, body, user)
        try:
            return self.executor.vet(request_plan), used_params
        except QueryError as error:
            error.query_text = request_plan.sql
            raise

    def _prepare_and_begin(
        self,
        method: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        user: User,
        release_slot: Callable[[], None],
    ) -> Started:
        request_plan, used_params = self._prepare(method, params, headers, body, user)
        del body
        return self._begin(request_plan, used_params, user, release_slot)

    def _begin(
        self,
        request_plan: Plan,
        params: Mapping[str, str],
        user: User,
        release_slot: Callable[[], None],
        is_vetted: bool = False,
    ) -> Started:
        # Worker thread: start the plan on the engine and pull up to one response buffer of output.
        try:
            running = self.executor.start(request_plan, user.name, release_slot, is_vetted=is_vetted)
        except QueryError as error:
            error.query_text = request_plan.sql
            raise
        try:
            wait_for_end = is_true(params.get("wait_end_of_query")) or request_plan.http_flag(
                "http_wait_end_of_query", default=False
            )
            limit = None if wait_for_end else self._buffer_bytes(params, request_plan)
            chunks, is_done = pull(running, limit, None if wait_for_end else FLUSH_AFTER_S)
        except BaseException:
            running.close()
            raise
        if is_done:
            running.close()
        return Started(request_plan, running, chunks, is_done)

    def _buffer_bytes(self, params: Mapping[str, str], request_plan: Plan) -> int:
        requested = params.get("buffer_size") or request_plan.http_settings.get("http_response_buffer_size", "")
        return int(requested) if requested.isdigit() else self.limits.response_buffer_bytes


def _nothing() -> None:
    return None


def _next_or_close(running: Running) -> bytes | None:
    # Worker thread: a streamed result is closed (handle and slot given back) as soon as it
    # ends or fails, before the client reads its last bytes and sends its next query.
    try:
        chunk = running.stream.next_chunk()
    except BaseException:
        running.close()
        raise
    if chunk is None:
        running.close()
    return chunk
