"""ClickHouse's native TCP interface (``clickhouse.native_port``), on the HTTP server's event loop.

One connection: the client's Hello (within the receive timeout of the connection's opening,
its strings bounded before any is read), the user authenticated as over HTTP (the same
users, the same lock-out and back-off), the server's Hello, the addendum (quota key); then
packets until the client leaves or idles past the idle timeout: Ping is answered Pong, a
Query is read whole (within the receive timeout and the user's packet bound), with the
external-data blocks that follow it, and run through :mod:`warehouse_server.query` as
the HTTP interface runs a request: the same plan (settings, parameters, query id,
database), the same policy and slots for the analyst (planned and checked in a thread of
its own at the lowest CPU priority), the same engine and access log. A result goes out as
Data packets, one block each, framed for the client's revision, each followed by a
Progress packet, then the counters and EndOfStream; an error at any point is an Exception
packet, after which the connection takes the next query. A Cancel while the result
streams ends it with EndOfStream. An INSERT without rows is answered with its header
block; the client's Data blocks are walked by type (never decoded), bounded by the
user's size, and inserted together as Native when the empty block ends them.

Every connection counts in the connection budget the HTTP interface uses
(:mod:`warehouse_server.security.budget`): one over budget closes the least active spare
connection, the service user's are never closed, the analyst's engaged ones only after
their query. A response that stalls in a full socket past the send timeout cuts the
connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

from tickwave.warehouse.sqltext import quote_identifier
from warehouse_server.compression import CHECKSUM_BYTES, FRAME_OVERHEAD, HEADER_BYTES, METHOD_BYTES, FrameReader
from warehouse_server.native import wire
from warehouse_server.native.inserts import describe_insert, header_columns
from warehouse_server.native.wire import ClientClosed, PacketReader, ReadBounds
from warehouse_server.protocol import (
    BAD_ARGUMENTS,
    NOT_IMPLEMENTED,
    QUERY_IS_TOO_LARGE,
    READONLY,
    TOO_MANY_SIMULTANEOUS_QUERIES,
    UNEXPECTED_PACKET_FROM_CLIENT,
    UNKNOWN_COMPRESSION_METHOD,
    UNKNOWN_EXCEPTION,
    UNKNOWN_PACKET_FROM_CLIENT,
    QueryError,
    Summary,
    is_setting_param,
    valid_query_id,
)
from warehouse_server.query.accesslog import AccessLog, RequestOutcome, log_request
from warehouse_server.query.dispatch import STREAMED_KEYWORDS, Executor, next_chunk_or_close
from warehouse_server.query.nativeframe import (
    NativeFramer,
    TruncatedBlockError,
    block_rows,
    empty_block,
    unframe_block,
)
from warehouse_server.query.planning import Plan, plan
from warehouse_server.query.priority import lowest_thread_priority
from warehouse_server.query.routing import without_format
from warehouse_server.query.sessions import ConnectionSession
from warehouse_server.security.auth import DEFAULT_USER, READ_ONLY, READ_WRITE, User, authenticate
from warehouse_server.security.budget import Connection, ConnectionBudget
from warehouse_server.security.limits import LoginGuard, QueryIds

logger = logging.getLogger(__name__)

T = TypeVar("T")
ACCESS_LOG_METHOD = "TCP"  # the access log's http_method of a native query
MAX_SETTINGS = 1000  # settings or parameters in one Query packet (http_max_fields)
MAX_NAME_BYTES = 1024  # a setting's or parameter's name (http_max_field_name_size)
HELLO_BYTES = 16 << 10  # everything a Hello and its addendum may hold, before the user is known


@dataclass(frozen=True)
class NativeBounds:
    """The bounds of one native connection (ClickHouse's setting names in the comments)."""

    receive_timeout_s: float  # receive_timeout: the Hello, each packet, each pause inside a block
    send_timeout_s: float  # send_timeout: the longest a packet may stall in a full socket
    idle_timeout_s: float = 3600.0  # idle_connection_timeout: the longest wait between packets
    max_string_bytes: int = 128 << 10  # one setting's value, one parameter's (http_max_field_value_size)
    max_packet_bytes: int = 512 << 20  # the service user's Query packet and its blocks (max_request_mb)
    read_only_max_packet_bytes: int = 1 << 20  # the read-only user's Query packet and its blocks

    def packet_bytes_for(self, user: User) -> int:
        """The most a Query packet (or the data of one INSERT) of ``user`` may hold."""
        if user.readonly == READ_ONLY:
            return min(self.max_packet_bytes, self.read_only_max_packet_bytes)
        return self.max_packet_bytes


@dataclass
class _Query:
    """One Query packet as read."""

    query_id: str
    settings: dict[str, str]
    parameters: dict[str, str]
    is_compressed: bool
    text: str


@dataclass
class _ExternalData:
    """One external table as its blocks arrive: its columns and its blocks (revision-0 Native)."""

    columns: list[tuple[str, str]]
    blocks: list[bytes] = field(default_factory=list)

    def structure(self) -> str:
        """Its columns as ``name Type, ...``: the structure of the temporary table it becomes."""
        return ", ".join(f"{quote_identifier(name)} {kind}" for name, kind in self.columns)


class _Cancelled(Exception):
    """The client sent Cancel while its result streamed."""


class NativeServer:
    """Serves the native protocol with the HTTP interface's executor, users, guards and budget."""

    def __init__(
        self,
        executor: Executor,
        users: Mapping[str, User],
        login_guard: LoginGuard,
        query_ids: QueryIds,
        budget: ConnectionBudget,
        pool: ThreadPoolExecutor,
        bounds: NativeBounds,
        identity: wire.ServerIdentity,
        access_log: AccessLog | None = None,
        http_port: int = 0,
    ) -> None:
        """Serve queries on ``executor`` in ``pool``, counting connections in ``budget``.

        ``http_port`` is named to an HTTP client that reaches the native port instead.
        """
        self.executor = executor
        self.users = users
        self.login_guard = login_guard
        self.query_ids = query_ids
        self.budget = budget
        self.pool = pool
        self.bounds = bounds
        self.identity = identity
        self.access_log = access_log
        self.http_port = http_port
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._clients: dict[asyncio.Task[None], _Client] = {}
        self._read_only_pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="warehouse-native-read-only", initializer=lowest_thread_priority
        )

    async def start(self, sock: socket.socket, context: ssl.SSLContext | None) -> None:
        """Accept connections on the bound, listening ``sock`` (TLS with ``context``)."""
        self.port = int(sock.getsockname()[1])
        self._server = await asyncio.start_server(self._serve, sock=sock, ssl=context, limit=1 << 20)

    async def close(self, timeout_s: float) -> None:
        """Stop accepting, close idle connections, let running queries end (up to ``timeout_s``)."""
        if self._server is not None:
            self._server.close()
        for client in list(self._clients.values()):
            client.is_closing = True
            if not client.is_busy:
                client.abort()
        tasks = list(self._clients)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout_s)
            for task in pending:
                task.cancel()
        self._read_only_pool.shutdown(wait=False)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if peer else "-"
        transport = writer.transport
        connection = Connection(address, transport.abort)
        if not self.budget.admit(connection):
            logger.debug("native connection from %s refused: %d connections open", address, len(self.budget))
            transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        client = _Client(self, PacketReader(reader, self._read_bounds()), writer, connection, address)
        self._clients[task] = client
        try:
            await client.run()
        except ClientClosed as exc:
            logger.debug("native connection from %s closed: %s", address, exc)
        except (ConnectionError, OSError) as exc:
            logger.debug("native connection from %s lost: %s", address, exc)
        finally:
            self._clients.pop(task, None)
            self.budget.release(connection)
            if not transport.is_closing():
                transport.close()

    def _read_bounds(self) -> ReadBounds:
        return ReadBounds(
            idle_timeout_s=self.bounds.idle_timeout_s,
            receive_timeout_s=self.bounds.receive_timeout_s,
            max_string_bytes=self.bounds.max_string_bytes,
            max_packet_bytes=HELLO_BYTES,
        )


class _Client:
    """One native connection's exchange."""

    def __init__(
        self,
        server: NativeServer,
        reader: PacketReader,
        writer: asyncio.StreamWriter,
        connection: Connection,
        address: str,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.connection = connection
        self.address = address
        self.revision = 0
        self.database = ""
        self.user: User | None = None
        self.is_busy = False
        self.is_closing = False
        self.compression: str | None = None  # the current query's, when its client asked for it
        # A read-write user's connection is its session (SET, USE and temporary tables carry to the next
        # query); none before the user is known, and none for a read-only user (see the README).
        self.session: ConnectionSession | None = None

    def abort(self) -> None:
        self.writer.transport.abort()

    async def _send(self, data: bytes) -> None:
        self.writer.write(data)
        try:
            await asyncio.wait_for(self.writer.drain(), self.server.bounds.send_timeout_s)
        except TimeoutError as exc:
            self.abort()
            raise ClientClosed("a packet stalled past the send timeout") from exc

    async def _in_worker(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.server.pool, function, *args)

    async def run(self) -> None:
        """Shake hands, then answer packets until the client leaves; its session ends with it."""
        try:
            await self._exchange()
        finally:
            session, self.session = self.session, None
            if session is not None:
                await self._end(session)

    async def _end(self, session: ConnectionSession) -> None:
        # Closing a handle is an engine call: in a worker, unless there is no handle or no worker left.
        if not session.is_open:
            session.close()
            return
        try:
            await self._in_worker(session.close)
        except RuntimeError:  # the workers are gone (shutdown)
            session.close()

    async def _exchange(self) -> None:
        try:
            user = await self._handshake()
        except QueryError as error:  # a Hello past its bounds: refused, and the connection closed
            await self._refuse(error)
            return
        if user is None:
            return
        self.user = user
        if user.readonly == READ_WRITE:
            engine = self.server.executor.engine
            self.session = ConnectionSession(partial(engine.open, READ_WRITE), f"a native connection of {user.name}")
        packet_bytes = self.server.bounds.packet_bytes_for(user)
        while not self.is_closing:
            packet = await self.reader.wait_packet()
            self.server.budget.touch(self.connection)
            if packet == wire.CLIENT_PING:
                await self._send(wire.PONG)
            elif packet == wire.CLIENT_QUERY:
                self.is_busy = True
                try:
                    self.reader.begin(budget=packet_bytes)
                    await self._query(user)
                finally:
                    self.is_busy = False
                    self.connection.is_engaged = False
            elif packet == wire.CLIENT_CANCEL:
                continue  # nothing runs: a late cancel
            else:
                # A stray Data block or an unknown packet: the stream cannot be followed past it.
                await self._send(
                    wire.exception(
                        QueryError(UNEXPECTED_PACKET_FROM_CLIENT, f"Unexpected packet {packet} from the client"),
                        self.server.identity.version,
                    )
                )
                return

    async def _handshake(self) -> User | None:
        reader = self.reader
        packet = await asyncio.wait_for(reader.wait_packet(), self.server.bounds.receive_timeout_s)
        if (
            packet in wire.HTTP_REQUEST_STARTS
        ):  # an HTTP client at the wrong port: told the right one, as ClickHouse does
            await self._send(wire.wrong_port_answer(self.server.port, self.server.http_port))
            return None
        if packet != wire.CLIENT_HELLO:
            await self._refuse(QueryError(UNEXPECTED_PACKET_FROM_CLIENT, f"Unexpected packet {packet}: Hello expected"))
            return None
        await reader.string()  # client name
        await reader.varuint()  # version major
        await reader.varuint()  # version minor
        client_revision = await reader.varuint()
        database = await reader.string()
        name = (await reader.string()) or DEFAULT_USER
        password = await reader.string()
        try:
            user = self._authenticate(name, password)
        except QueryError as error:
            delay_s = self.server.login_guard.delay_s(name)
            if delay_s:
                await asyncio.sleep(delay_s)  # a timer: a guess flood costs no CPU meanwhile
            await self._refuse(error)
            log_request(
                self.server.access_log,
                RequestOutcome(time.perf_counter(), "TCP", name, self.address, {}),
                None,
                None,
                error,
            )
            return None
        # The service user's connections are never closed to make room; one admitted past its address's
        # share is kept only as the service user's.
        if not self.connection.authenticated(user.readonly == READ_WRITE):
            await self._refuse(
                QueryError(TOO_MANY_SIMULTANEOUS_QUERIES, f"Too many connections from {self.address} (max_connections)")
            )
            return None
        self.revision = min(client_revision, wire.SERVER_REVISION)
        self.database = database
        await self._send(wire.hello(self.server.identity, self.revision))
        if self.revision >= wire.ADDENDUM_QUOTA_KEY:
            reader.begin()
            await reader.string()  # quota key: quotas are not kept; the user's limits apply
        return user

    async def _refuse(self, error: QueryError) -> None:
        await self._send(wire.exception(error, self.server.identity.version))

    def _authenticate(self, name: str, password: str) -> User:
        guard = self.server.login_guard
        guard.check(name, self.address)
        try:
            user = authenticate(self.server.users, name, password)
        except QueryError:
            guard.failed(name, self.address)
            raise
        guard.succeeded(name, self.address)
        return user

    async def _read_query(self) -> _Query:
        reader = self.reader
        revision = self.revision
        query_id = await reader.string()
        if revision >= wire.CLIENT_INFO and await reader.uint8() != wire.QUERY_KIND_NONE:
            for _ in range(3):  # initial user, query id, address
                await reader.string()
            if revision >= wire.INITIAL_QUERY_START_TIME:
                await reader.skip(8)
            await reader.uint8()  # interface
            for _ in range(3):  # os user, host name, client name
                await reader.string()
            for _ in range(3):  # client version major, minor, revision
                await reader.varuint()
            if revision >= wire.QUOTA_KEY_IN_CLIENT_INFO:
                await reader.string()
            if revision >= wire.DISTRIBUTED_DEPTH:
                await reader.varuint()
            if revision >= wire.VERSION_PATCH:
                await reader.varuint()
            if revision >= wire.OPENTELEMETRY and await reader.uint8():
                await reader.skip(24)  # trace id, span id
                await reader.string()  # trace state
                await reader.skip(1)  # trace flags
            if revision >= wire.PARALLEL_REPLICAS:
                for _ in range(3):
                    await reader.varuint()
        if revision < wire.SETTINGS_SERIALIZED_AS_STRINGS:
            raise QueryError(
                NOT_IMPLEMENTED, f"Client revision {revision} sends settings in binary; upgrade the client"
            )
        settings = await self._read_fields()
        if revision >= wire.INTERSERVER_SECRET and await reader.string():
            raise QueryError(NOT_IMPLEMENTED, "Inter-server queries are not served")
        await reader.varuint()  # stage: always Complete from a client
        is_compressed = bool(await reader.varuint())
        text = await reader.string(limit=self.server.bounds.packet_bytes_for(self._user()))
        parameters = await self._read_fields() if revision >= wire.PARAMETERS else {}
        values = {name: unquoted_parameter(value) for name, value in parameters.items()}
        return _Query(query_id, settings, values, is_compressed, text)

    async def _read_fields(self) -> dict[str, str]:
        # Settings or parameters as strings: name, flags, value; an empty name ends them.
        fields: dict[str, str] = {}
        while name := await self.reader.string(limit=MAX_NAME_BYTES):
            await self.reader.varuint()  # flags (important, custom)
            fields[name] = await self.reader.string()
            if len(fields) > MAX_SETTINGS:
                raise QueryError(QUERY_IS_TOO_LARGE, f"More than {MAX_SETTINGS} settings or parameters in a query")
        return fields

    def _user(self) -> User:
        assert self.user is not None
        return self.user

    async def _read_block(self, limit: int) -> tuple[bytes, int]:
        """Read one Data packet's block (after its type); return it as revision-0 Native and its rows."""
        _, block, rows, _ = await self._read_table_block(limit)
        return block, rows

    async def _read_table_block(self, limit: int) -> tuple[str, bytes, int, list[tuple[str, str]]]:
        """Read one Data packet (after its type): its table's name (empty for the main table), block, rows, columns."""
        name = await self.reader.string(limit=MAX_NAME_BYTES) if self.revision >= wire.TEMPORARY_TABLES else ""
        block, rows, columns = await self._read_unframed(limit)
        return name, block, rows, columns

    async def _read_unframed(self, limit: int) -> tuple[bytes, int, list[tuple[str, str]]]:
        if self.compression is not None:
            return await self._read_compressed_block(limit)
        tried = 0
        while True:
            available = self.reader.unread()
            if len(available) >= 2 * tried or not self.reader.is_more_waiting():
                try:
                    unframed = unframe_block(available, self.revision)
                except TruncatedBlockError:
                    tried = len(available)
                else:
                    self.reader.consume(unframed.end)
                    return unframed.block, unframed.rows, unframed.columns
            if len(available) > limit:
                raise QueryError(QUERY_IS_TOO_LARGE, f"Data block is larger than the limit of {limit} bytes")
            await self.reader.more()

    async def _read_compressed_block(self, limit: int) -> tuple[bytes, int, list[tuple[str, str]]]:
        # The block is the payloads of its frames joined; the client ends a frame with the block, so
        # frames are read one at a time (each checked from its header by the codec) until it parses.
        frames = FrameReader(limit, max_frame_bytes=limit + HEADER_BYTES, what="a Data block")
        decoded = bytearray()
        while True:
            header = await self.reader.exact(FRAME_OVERHEAD)
            list(frames.feed(header))  # checks the declared sizes against the bounds before the payload is read
            compressed_size = struct.unpack_from("<I", header, CHECKSUM_BYTES + 1)[0]
            for payload in frames.feed(await self.reader.exact(CHECKSUM_BYTES + compressed_size - FRAME_OVERHEAD)):
                decoded += payload
            try:
                unframed = unframe_block(bytes(decoded), self.revision)
            except TruncatedBlockError:
                continue
            if unframed.end != len(decoded):
                raise QueryError(UNEXPECTED_PACKET_FROM_CLIENT, "A compressed Data block does not end with its frame")
            return unframed.block, unframed.rows, unframed.columns

    async def _external_tables(self, limit: int) -> dict[str, _ExternalData]:
        """Read the external tables that follow a Query, up to the empty block that ends them.

        Each table's blocks are joined, all of them within the user's bound; they become the plan's
        external data, as the files of an HTTP form do (:func:`warehouse_server.query.planning.plan`).
        """
        tables: dict[str, _ExternalData] = {}
        size = 0
        while True:
            packet = await self.reader.wait_packet()
            if packet != wire.CLIENT_DATA:
                raise QueryError(UNEXPECTED_PACKET_FROM_CLIENT, f"Unexpected packet {packet}: Data expected")
            name, block, rows, columns = await self._read_table_block(limit - size)
            if rows == 0 and not columns:
                return tables
            if not name:
                raise QueryError(BAD_ARGUMENTS, "An external table without a name")
            table = tables.get(name)
            if table is None:
                if len(tables) >= MAX_SETTINGS:
                    raise QueryError(QUERY_IS_TOO_LARGE, f"More than {MAX_SETTINGS} external tables in a query")
                table = tables[name] = _ExternalData(columns)
            elif table.columns != columns:
                raise QueryError(BAD_ARGUMENTS, f"The blocks of external table {name[:64]} differ in their columns")
            table.blocks.append(block)
            size += len(block)

    async def _query(self, user: User) -> None:
        started = time.perf_counter()
        params: dict[str, str] = {}
        request_plan: Plan | None = None
        summary: Summary | None = None
        release_slot: Callable[[], None] = _nothing
        limit = self.server.bounds.packet_bytes_for(user)
        try:
            try:
                query = await self._read_query()
                self.compression = _compression(query) if query.is_compressed else None
                external = await self._external_tables(limit)
                params = self._params(query)
                self.server.query_ids.claim(query.query_id, user.name, user.readonly == READ_ONLY)
                release_slot = self.server.executor.admit(user)
                self.connection.engage()
                request_plan = await self._plan(query, params, user, external)
                self.server.query_ids.claim(request_plan.query_id, user.name, is_read_only=False)
                if request_plan.insert_format is not None and not request_plan.data:
                    summary = await self._insert(request_plan, user, release_slot, limit)
                else:
                    summary = await self._select(request_plan, user, release_slot)
            finally:
                release_slot()
        except QueryError as error:
            if request_plan is not None:
                error.query_text = request_plan.sql
            await self._refuse(error)
            log_request(
                self.server.access_log,
                RequestOutcome(started, ACCESS_LOG_METHOD, user.name, self.address, params),
                request_plan,
                None,
                error,
            )
            if error.code in (QUERY_IS_TOO_LARGE, UNEXPECTED_PACKET_FROM_CLIENT, UNKNOWN_PACKET_FROM_CLIENT):
                raise ClientClosed(f"refused a packet it cannot read past: {error.message}") from error
            return
        except (ClientClosed, _Cancelled):
            raise
        except Exception as exc:  # the query's outer edge: answer ClickHouse-style, log the cause
            logger.exception("native query from %s failed unexpectedly", self.address)
            await self._refuse(
                QueryError(UNKNOWN_EXCEPTION, f"Unexpected error in the warehouse service: {type(exc).__name__}")
            )
            return
        log_request(
            self.server.access_log,
            RequestOutcome(started, ACCESS_LOG_METHOD, user.name, self.address, params),
            request_plan,
            summary,
            None,
        )

    def _params(self, query: _Query) -> dict[str, str]:
        # The plan reads HTTP's parameters: settings by name, param_<name> for parameters.
        params: dict[str, str] = {}
        for name, value in query.settings.items():
            if not name.isidentifier() or not is_setting_param(name):
                raise QueryError(BAD_ARGUMENTS, f"Setting {name[:64]!r} cannot be sent over the native port")
            params[name] = value
        for name, value in query.parameters.items():
            if not name.isidentifier():
                raise QueryError(BAD_ARGUMENTS, f"Invalid query parameter name {name[:64]!r}")
            params[f"param_{name}"] = value
        params["query_id"] = valid_query_id(query.query_id)
        if self.database:
            params["database"] = self.database
        params["client_protocol_version"] = str(self.revision)
        params["default_format"] = "Native"
        return params

    async def _plan(
        self, query: _Query, params: dict[str, str], user: User, external: Mapping[str, _ExternalData]
    ) -> Plan:
        text = query.text.encode("utf-8", "surrogateescape")
        # External tables reach the plan as an HTTP form's files do, with their structure and format as parameters.
        files = {name: b"".join(table.blocks) for name, table in external.items()}
        table_params = {f"{name}_structure": table.structure() for name, table in external.items()}
        table_params.update({f"{name}_format": "Native" for name in external})

        def make() -> Plan:
            made = plan(method="POST", params={**params, **table_params}, headers={}, text=text, user=user, files=files)
            if made.insert_format is None:  # results are Data blocks, whatever FORMAT the SQL names
                made = replace(made, sql=without_format(made.sql), output_format="Native")
            return made

        if user.readonly != READ_ONLY:
            return await self._in_worker(make)

        def make_and_vet() -> Plan:
            made = make()
            try:
                return self.server.executor.vet(made)
            except QueryError as error:
                error.query_text = made.sql
                raise

        # The read-only user's planning and policy check run in its own thread at the lowest CPU priority.
        return await asyncio.get_running_loop().run_in_executor(self.server._read_only_pool, make_and_vet)

    async def _select(self, request_plan: Plan, user: User, release_slot: Callable[[], None]) -> Summary:
        is_vetted = request_plan.vetted_is_read is not None
        try:
            running = await self._in_worker(
                partial(self.server.executor.start, is_vetted=is_vetted, connection=self.session),
                request_plan,
                user.name,
                release_slot,
            )
        except QueryError:
            await self._send_header(request_plan)  # failed before its first block (below): the header first
            raise
        watcher = asyncio.ensure_future(self.reader.wait_packet())
        blocks = rows = sent = 0
        # A streamed result hands out one block per chunk (query/dispatch.py); a whole one may hold several.
        is_one_block_a_chunk = request_plan.keyword in STREAMED_KEYWORDS
        try:
            while True:
                chunk_future = asyncio.ensure_future(self._in_worker(next_chunk_or_close, running))
                await asyncio.wait({chunk_future, watcher}, return_when=asyncio.FIRST_COMPLETED)
                if watcher.done():
                    await asyncio.wait({chunk_future})
                    self._watched(watcher)
                chunk = chunk_future.result()
                if chunk is None:
                    break
                if is_one_block_a_chunk and blocks:  # a streamed result's later blocks: only their row count is read
                    pieces: list[tuple[bytes, int, list[tuple[str, str]]]] = [
                        (chunk, block_rows(chunk, self.revision), [])
                    ]
                else:
                    pieces = _blocks(chunk, self.revision)
                for block, rows_in_block, columns in pieces:
                    if (
                        blocks == 0 and rows_in_block
                    ):  # a header first, as a server sends it: clients take types from it
                        header = NativeFramer(self.revision, lambda: None).frame(empty_block(columns))
                        await self._send(wire.data(header, self.revision, self.compression))
                    await self._send(wire.data(block, self.revision, self.compression))
                    await self._send(
                        wire.Progress(read_rows=rows_in_block, read_bytes=len(block)).packet(self.revision)
                    )
                    blocks, rows, sent = blocks + 1, rows + rows_in_block, sent + len(block)
        except _Cancelled:
            await self._in_worker(running.close)
            await self._send(wire.END_OF_STREAM)
            return running.stream.summary
        except QueryError:
            if not blocks:  # failed before its first block: the header still comes first, as a server sends it
                await self._send_header(request_plan)
            raise
        finally:
            if not watcher.done():
                watcher.cancel()
            await self._in_worker(running.close)
        if not blocks:  # an empty result: its header alone, so the client learns its columns
            await self._send_header(request_plan)
        summary = running.stream.summary
        progress = wire.Progress(
            written_rows=summary.written_rows, written_bytes=summary.written_bytes, elapsed_ns=summary.elapsed_ns
        )
        await self._send(wire.profile_info(rows, blocks, sent) + progress.packet(self.revision) + wire.END_OF_STREAM)
        return summary

    def _watched(self, watcher: asyncio.Future[int]) -> None:
        # What the client sent while its result streamed: Cancel ends it; anything else is out of turn.
        packet = watcher.result()  # ClientClosed propagates: the client is gone
        if packet == wire.CLIENT_CANCEL:
            raise _Cancelled
        raise QueryError(UNEXPECTED_PACKET_FROM_CLIENT, f"Unexpected packet {packet} while a result streams")

    async def _insert(self, request_plan: Plan, user: User, release_slot: Callable[[], None], limit: int) -> Summary:
        if request_plan.readonly:  # the analyst: refused as over HTTP, before any block is asked for
            raise QueryError(READONLY, "Cannot execute query in readonly mode")
        header = await self._in_worker(self._describe_insert, request_plan)
        framed = NativeFramer(self.revision, lambda: None).frame(header)
        await self._send(wire.data(framed, self.revision, self.compression))
        blocks: list[bytes] = []
        size = 0
        while True:
            packet = await self.reader.wait_packet()
            if packet == wire.CLIENT_CANCEL:
                await self._send(wire.END_OF_STREAM)
                return Summary()
            if packet != wire.CLIENT_DATA:
                raise QueryError(UNEXPECTED_PACKET_FROM_CLIENT, f"Unexpected packet {packet}: Data expected")
            block, rows = await self._read_block(limit - size)
            if rows == 0:
                break
            blocks.append(block)
            size += len(block)
            await self._send(wire.profile_events(self.revision))
        data = memoryview(b"".join(blocks))
        del blocks
        running = await self._in_worker(
            partial(self.server.executor.start, connection=self.session),
            replace(request_plan, insert_format="Native", data=data),
            user.name,
            release_slot,
        )
        await self._in_worker(running.close)
        summary = running.stream.summary
        progress = wire.Progress(
            written_rows=summary.written_rows, written_bytes=summary.written_bytes, elapsed_ns=summary.elapsed_ns
        )
        await self._send(progress.packet(self.revision) + wire.profile_events(self.revision) + wire.END_OF_STREAM)
        return summary

    def _describe_insert(self, request_plan: Plan) -> bytes:
        # Worker thread: the target's columns.
        return describe_insert(request_plan.sql, partial(self._on_own_handle, request_plan))

    async def _send_header(self, request_plan: Plan) -> None:
        # The result's columns as the engine describes the statement; nothing where it cannot (the statement
        # failed in its analysis, where a server sends no header either).
        describe = f"DESCRIBE TABLE ({without_format(request_plan.sql)}\n)"
        try:
            description = await self._in_worker(self._on_own_handle, request_plan, describe)
        except QueryError:
            return
        header = NativeFramer(self.revision, lambda: None).frame(empty_block(header_columns(description, [])))
        await self._send(wire.data(header, self.revision, self.compression))

    def _on_own_handle(self, request_plan: Plan, sql: str) -> bytes:
        # Worker thread: ``sql`` as JSONEachRow in the connection's session, or on a handle of the statement's
        # user, database and parameters.
        return self.server.executor.describe(request_plan, sql, self.session)


def _blocks(chunk: bytes, revision: int) -> list[tuple[bytes, int, list[tuple[str, str]]]]:
    """Split a framed chunk of the result into its blocks (a streamed chunk is one already), with rows and columns."""
    found = []
    offset = 0
    while offset < len(chunk):
        unframed = unframe_block(chunk[offset:], revision)
        found.append((chunk[offset : offset + unframed.end], unframed.rows, unframed.columns))
        offset += unframed.end
    return found


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "f": "\f"}


def _compression(query: _Query) -> str:
    # The server compresses with network_compression_method (LZ4 by default); a client reads any method.
    method = query.settings.pop("network_compression_method", "lz4").strip().lower()
    if method not in METHOD_BYTES:
        raise QueryError(UNKNOWN_COMPRESSION_METHOD, f"Unknown compression method: {method[:64]}")
    return method


def unquoted_parameter(value: str) -> str:
    """Return a query parameter's text: it comes as a quoted literal (a Field's dump), 'text' with escapes."""
    if len(value) >= 2 and value[0] == value[-1] == "'":
        inner = value[1:-1]
        out, index = [], 0
        while index < len(inner):
            char = inner[index]
            if char == "\\" and index + 1 < len(inner):
                index += 1
                char = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "f": "\f"}.get(
                    inner[index], inner[index]
                )
            out.append(char)
            index += 1
        return "".join(out)
    return value


def _nothing() -> None:
    return None
