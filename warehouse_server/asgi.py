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
single thread of its own, so its pure-Python work cannot crowd the writers out of the
GIL), then start it on the engine in the shared pool, pulling the first result bytes.
Whatever the response's fate, the query is closed and the slot released. A result
that completes within the response buffer is sent with Content-Length and an exact
``X-ClickHouse-Summary``; a larger one is streamed, compressed as one frame, and an
error after the first bytes is written ClickHouse's way (``X-ClickHouse-Exception-Tag``
markers) so clients notice. A debug line per request records its duration and rows.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from warehouse_server.accesslog import AccessLog, AccessRecord
from warehouse_server.auth import READ_ONLY, User, authenticate, presented_credentials
from warehouse_server.codecs import (
    Encoder,
    choose_encoding,
    decode_body,
    decode_native_blocks,
    form_fields,
    make_encoder,
)
from warehouse_server.dispatch import Executor, Running
from warehouse_server.limits import LoginGuard
from warehouse_server.planning import Plan, full_query, plan
from warehouse_server.protocol import (
    BAD_ARGUMENTS,
    NOT_IMPLEMENTED,
    QUERY_IS_TOO_LARGE,
    SERVER_DISPLAY_NAME,
    UNKNOWN_EXCEPTION,
    QueryError,
    Summary,
    content_type_for,
    error_text,
)

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
T = TypeVar("T")

_NO_HANDLER = (
    "There is no handle {path}\n\nUse / or /ping for health checks.\n\n"
    "Send queries from your program with POST method or GET /?query=...\n"
)
_TAG_ALPHABET = string.ascii_letters + string.digits
DISCARD_BYTES = 64 << 20  # how much of a refused body is read and dropped before answering
MAX_QUERY_ID_CHARS = 128
_QUERY_ID = re.compile(rf"[!-~](?:[ -~]{{0,{MAX_QUERY_ID_CHARS - 2}}}[!-~])?")


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


class _ClientGone(Exception):
    """The client disconnected before the request was read."""


@dataclass
class _Started:
    plan: Plan
    running: Running
    chunks: list[bytes]
    is_done: bool


def _is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false")


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
        self._sweeper: asyncio.Task[None] | None = None
        self._read_only_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warehouse-read-only")

    async def _in_worker(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)

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
            await self._send_plain(send, 200, b"Ok.\n")
            return
        if path != "/":
            await self._send_plain(send, 404, _NO_HANDLER.format(path=path).encode())
            return
        if method not in ("GET", "POST"):
            await self._send_plain(send, 405, f"Method {method} is not supported; use GET or POST\n".encode())
            return
        user: User | None = None
        presented = "-"
        echoed_id = ""  # a query id is echoed in headers only once it is known to be a valid header value
        address = _client_address(scope)
        reading_started = False  # from then on _read_body drains a refused body itself
        release_slot: Callable[[], None] = _nothing
        try:
            try:
                presented, password = presented_credentials(headers, params)
                user = self._authenticate(presented, password, address)
                echoed_id = checked_query_id(params, headers)
                if _is_true(params.get("compress")):
                    raise QueryError(
                        NOT_IMPLEMENTED, "compress=1 (ClickHouse block framing of responses) is not supported"
                    )
                # A read-only user's slot is taken before its body is read or decoded, so the
                # decoding work it can start at once is bounded by its slots too.
                release_slot = self.executor.admit(user)
                reading_started = True
                body = await self._read_body(receive, headers, self._body_limit(user))
                if user.readonly == READ_ONLY:
                    # Its decoding and planning run in a thread of their own: pure Python holds
                    # the GIL, and four of them at once slowed the writers' inserts 15x.
                    request_plan, used_params = await asyncio.get_running_loop().run_in_executor(
                        self._read_only_pool, self._prepare, method, params, headers, body, user
                    )
                    del body
                    begun = await self._in_worker(self._begin, request_plan, used_params, user, release_slot)
                else:  # one hand-off to a worker, as the pipeline's requests are latency-bound
                    begun = await self._in_worker(
                        self._prepare_and_begin, method, params, headers, body, user, release_slot
                    )
            except _ClientGone:
                return
            except QueryError as error:
                if not reading_started and headers.get("expect", "").lower() != "100-continue":
                    await _discard(receive, DISCARD_BYTES)  # let a client still sending read the refusal
                await self._send_error(send, error, echoed_id)
                self._log(_Outcome(started, method, presented, address, params), None, None, error)
                return
            except Exception as exc:  # the request's outer edge: answer ClickHouse-style, log the cause
                logger.exception("query_id=%s failed unexpectedly", echoed_id or "-")
                unexpected = QueryError(
                    UNKNOWN_EXCEPTION, f"Unexpected error in the warehouse service: {type(exc).__name__}"
                )
                await self._send_error(send, unexpected, echoed_id)
                return
            try:
                await self._respond(begun, headers, receive, send)
            finally:
                # Whatever happened while sending (a header the server refuses to write, the
                # client gone, a cancelled task), the query is closed and its handle released.
                await self._close(begun.running)
            self._log(
                _Outcome(started, method, user.name, address, params), begun.plan, begun.running.stream.summary, None
            )
        finally:
            release_slot()

    def _body_limit(self, user: User) -> int:
        if user.readonly == READ_ONLY:
            return min(self.limits.max_body_bytes, self.limits.read_only_max_body_bytes)
        return self.limits.max_body_bytes

    def _decoded_limit(self, user: User) -> int:
        if user.readonly == READ_ONLY:
            return min(self.limits.max_decoded_bytes, self.limits.read_only_max_decoded_bytes)
        return self.limits.max_decoded_bytes

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

    async def _read_body(self, receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            # A client waiting for 100-continue sends nothing more; any other is already sending.
            if headers.get("expect", "").lower() != "100-continue":
                await _discard(receive, DISCARD_BYTES)
            raise QueryError(
                QUERY_IS_TOO_LARGE, f"Request body of {declared} bytes is larger than the limit of {limit}"
            )
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                if message.get("more_body", False):
                    await _discard(receive, DISCARD_BYTES)
                raise QueryError(QUERY_IS_TOO_LARGE, f"Request body is larger than the limit of {limit} bytes")
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)

    def _prepare(
        self, method: str, params: Mapping[str, str], headers: Mapping[str, str], body: bytes, user: User
    ) -> tuple[Plan, Mapping[str, str]]:
        # Worker thread: decode the body and plan the request (Python work that holds the GIL).
        limit = self._decoded_limit(user)
        decoded = decode_body(body, headers.get("content-encoding", ""), limit)
        del body  # the compressed copy is not needed past here: a large body is not held twice
        if _is_true(params.get("decompress")):
            decoded = decode_native_blocks(decoded, limit)
        content_type = headers.get("content-type", "")
        if content_type.lower().startswith("multipart/form-data"):
            # Form fields are parameters (the query among them); the body is not SQL.
            params = {**params, **form_fields(decoded, content_type)}
            text = params.get("query", "").encode()
        else:
            text = full_query(params.get("query", ""), decoded)
        return plan(method=method, params=params, headers=headers, text=text, user=user), params

    def _prepare_and_begin(
        self,
        method: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        user: User,
        release_slot: Callable[[], None],
    ) -> _Started:
        request_plan, used_params = self._prepare(method, params, headers, body, user)
        del body
        return self._begin(request_plan, used_params, user, release_slot)

    def _begin(
        self, request_plan: Plan, params: Mapping[str, str], user: User, release_slot: Callable[[], None]
    ) -> _Started:
        # Worker thread: start the plan on the engine and pull up to one response buffer of output.
        try:
            running = self.executor.start(request_plan, user.name, release_slot)
        except QueryError as error:
            error.query_text = request_plan.sql
            raise
        try:
            wait_for_end = _is_true(params.get("wait_end_of_query")) or request_plan.http_flag(
                "http_wait_end_of_query", default=False
            )
            chunks, is_done = _pull(running, None if wait_for_end else self._buffer_bytes(params, request_plan))
        except BaseException:
            running.close()
            raise
        if is_done:
            running.close()
        return _Started(request_plan, running, chunks, is_done)

    def _buffer_bytes(self, params: Mapping[str, str], request_plan: Plan) -> int:
        requested = params.get("buffer_size") or request_plan.http_settings.get("http_response_buffer_size", "")
        return int(requested) if requested.isdigit() else self.limits.response_buffer_bytes

    def _response_headers(self, request_plan: Plan, summary: Summary) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", content_type_for(request_plan.output_format).encode()),
            (b"x-clickhouse-query-id", request_plan.query_id.encode()),
            (b"x-clickhouse-format", request_plan.output_format.encode()),
            (b"x-clickhouse-timezone", self.timezone.encode()),
            (b"x-clickhouse-server-display-name", SERVER_DISPLAY_NAME.encode()),
            (b"x-clickhouse-summary", summary.header().encode()),
            (b"keep-alive", f"timeout={self.limits.keep_alive_timeout_s}".encode()),
        ]

    async def _respond(self, begun: _Started, headers: Mapping[str, str], receive: Receive, send: Send) -> None:
        request_plan = begun.plan
        encoding = None
        if request_plan.http_flag("enable_http_compression", default=True):
            encoding = choose_encoding(headers.get("accept-encoding", ""))
        response_headers = self._response_headers(request_plan, begun.running.stream.summary)
        level = request_plan.http_settings.get("http_zlib_compression_level", "3")
        encoder = make_encoder(encoding, int(level) if level.isdigit() else 3) if encoding else None
        if begun.is_done:
            body = b"".join(begun.chunks)
            if encoder is not None and body:
                body = encoder.compress(body) + encoder.finish()
                response_headers.append((b"content-encoding", encoder.name.encode()))
            response_headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": response_headers})
            await send({"type": "http.response.body", "body": body})
            return
        tag = "".join(secrets.choice(_TAG_ALPHABET) for _ in range(16))
        response_headers.append((b"x-clickhouse-exception-tag", tag.encode()))
        if encoder is not None:
            response_headers.append((b"content-encoding", encoder.name.encode()))
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await self._stream(begun, encoder, tag, receive, send)

    async def _stream(self, begun: _Started, encoder: Encoder | None, tag: str, receive: Receive, send: Send) -> None:
        disconnected = asyncio.Event()

        async def watch() -> None:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected.set()

        watcher = asyncio.create_task(watch())
        pending: list[bytes] | None = begun.chunks
        try:
            while pending is not None and not disconnected.is_set():
                for chunk in pending:
                    await send({"type": "http.response.body", "body": _encode(encoder, chunk), "more_body": True})
                try:
                    next_chunk = await self._in_worker(begun.running.stream.next_chunk)
                except QueryError as error:
                    block = _exception_block(tag, error_text(error.code, error.message, self.version))
                    await send({"type": "http.response.body", "body": _encode(encoder, block), "more_body": True})
                    logger.warning("query_id=%s failed after streaming began: %s", begun.plan.query_id, error)
                    break
                pending = [next_chunk] if next_chunk is not None else None
            tail = encoder.finish() if encoder is not None else b""
            await send({"type": "http.response.body", "body": tail, "more_body": False})
        finally:
            watcher.cancel()

    async def _send_plain(self, send: Send, status: int, body: bytes) -> None:
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=UTF-8"), (b"content-length", str(len(body)).encode())],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    async def _send_error(self, send: Send, error: QueryError, query_id: str) -> None:
        body = error_text(error.code, error.message, self.version).encode()
        headers = [
            (b"content-type", b"text/plain; charset=UTF-8"),
            (b"x-clickhouse-exception-code", str(error.code).encode()),
            (b"x-clickhouse-server-display-name", SERVER_DISPLAY_NAME.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        if query_id:
            headers.append((b"x-clickhouse-query-id", query_id.encode()))
        if error.code == QUERY_IS_TOO_LARGE:
            headers.append((b"connection", b"close"))  # the rest of the body was never read
        await send({"type": "http.response.start", "status": error.http_status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _log(
        self, outcome: _Outcome, request_plan: Plan | None, summary: Summary | None, error: QueryError | None
    ) -> None:
        duration_ms = (time.perf_counter() - outcome.started) * 1000
        query_id = request_plan.query_id if request_plan else outcome.params.get("query_id", "")
        kind = (request_plan.keyword or "-") if request_plan else "-"
        summary = summary or Summary()
        if self.access_log is not None:
            self.access_log.record(
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
            "query_id=%s user=%s method=%s kind=%s status=%s read_rows=%d written_rows=%d result_rows=%d "
            "duration_ms=%.1f",
            query_id or "-", outcome.user, outcome.method, kind, f"error {error.code}" if error else "ok",
            summary.read_rows, summary.written_rows, summary.result_rows, duration_ms,
        )  # fmt: skip


@dataclass(frozen=True)
class _Outcome:
    """Who asked what, from where, when: what the access log needs besides the plan."""

    started: float
    method: str
    user: str
    address: str
    params: Mapping[str, str]


def checked_query_id(params: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """Return the query id a request names ("" for none), refusing one that is not a safe header value.

    The id is echoed in ``X-ClickHouse-Query-Id``; a control character in it made the HTTP
    server fail while writing the response headers, after the query had started.

    Raises:
        QueryError: BAD_ARGUMENTS for an id that is not 1 to 128 printable ASCII characters.
    """
    query_id = params.get("query_id") or headers.get("x-clickhouse-query-id") or ""
    if query_id and not _QUERY_ID.fullmatch(query_id):
        raise QueryError(
            BAD_ARGUMENTS,
            f"Invalid query_id: it must be 1 to {MAX_QUERY_ID_CHARS} printable ASCII characters, "
            f"without leading or trailing spaces",
        )
    return query_id


def _nothing() -> None:
    return None


def _client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


async def _discard(receive: Receive, budget: int) -> None:
    """Read and drop the rest of a refused body (up to ``budget`` bytes).

    A client still sending its body cannot read the error until the body is consumed;
    closing on it instead makes it see a connection reset rather than QUERY_IS_TOO_LARGE.
    """
    while budget > 0:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _pull(running: Running, limit: int | None) -> tuple[list[bytes], bool]:
    """Pull chunks until ``limit`` bytes are buffered (None: until the end); return them and whether done."""
    chunks: list[bytes] = []
    size = 0
    while limit is None or size <= limit:
        chunk = running.stream.next_chunk()
        if chunk is None:
            return chunks, True
        chunks.append(chunk)
        size += len(chunk)
    return chunks, False


def _encode(encoder: Encoder | None, chunk: bytes) -> bytes:
    return encoder.compress(chunk) if encoder is not None else chunk


def _exception_block(tag: str, message: str) -> bytes:
    """Return ClickHouse's in-stream error block (server 25.11+ layout)."""
    text = message.rstrip("\n")
    return f"__exception__\r\n{tag}\r\n{text}\n{len(text)} {tag}\r\n__exception__\r\n".encode()
