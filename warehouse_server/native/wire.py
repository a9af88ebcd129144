"""ClickHouse's native TCP protocol as bytes: the packets, their fields per revision, a bounded reader.

Read from ClickHouse's ``src/Core/Protocol.h`` and ``ProtocolDefines.h`` and the official
clients (clickhouse-go's ``lib/proto``, clickhouse-driver's ``connection.py``): integers are
unsigned LEB128 varints, strings a varint length then bytes, fixed-width numbers little
endian. Both sides announce a revision in their Hello and speak the lower one; every field
added after revision 0 is written or read only from its revision on. The server announces
:data:`SERVER_REVISION` (54460: query parameters, server query time in progress), which is
what clickhouse-go speaks and below what clickhouse-driver and ``clickhouse client`` speak,
so no packet of a later revision (chunked packets, password rules, nonces) is ever due.

:class:`PacketReader` reads from an asyncio stream into its own buffer with the bounds of
the connection: a packet's first byte may be waited for ``idle_timeout_s``, the rest of a
packet must arrive within ``receive_timeout_s`` of its first byte (a client trickling a
packet a byte at a time is cut), and every string is checked against the packet's byte
budget before it is read, so no length a client writes allocates more than the budget.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field

from warehouse_server.compression import compress_block
from warehouse_server.protocol import (
    NETWORK_ERROR,
    QUERY_IS_TOO_LARGE,
    UNKNOWN_PACKET_FROM_CLIENT,
    QueryError,
    error_text,
)
from warehouse_server.query.nativeframe import BLOCK_INFO, native_string, varuint

# Revisions (DBMS_MIN_REVISION_WITH_* / DBMS_MIN_PROTOCOL_VERSION_WITH_* in ClickHouse's ProtocolDefines.h).
TEMPORARY_TABLES = 50264
TOTAL_ROWS_IN_PROGRESS = 51554
CLIENT_INFO = 54032
SERVER_TIMEZONE = 54058
QUOTA_KEY_IN_CLIENT_INFO = 54060
SERVER_DISPLAY_NAME = 54372
VERSION_PATCH = 54401
CLIENT_WRITE_INFO = 54420
SETTINGS_SERIALIZED_AS_STRINGS = 54429
INTERSERVER_SECRET = 54441
OPENTELEMETRY = 54442
DISTRIBUTED_DEPTH = 54448
INITIAL_QUERY_START_TIME = 54449
PARALLEL_REPLICAS = 54453
PROFILE_EVENTS_IN_INSERT = 54456
ADDENDUM_QUOTA_KEY = 54458
PARAMETERS = 54459
SERVER_QUERY_TIME_IN_PROGRESS = 54460
SERVER_REVISION = SERVER_QUERY_TIME_IN_PROGRESS

# Client packets (Protocol::Client).
CLIENT_HELLO = 0
CLIENT_QUERY = 1
CLIENT_DATA = 2
CLIENT_CANCEL = 3
CLIENT_PING = 4
CLIENT_TABLES_STATUS_REQUEST = 5
CLIENT_KEEP_ALIVE = 6

# Server packets (Protocol::Server).
SERVER_HELLO = 0
SERVER_DATA = 1
SERVER_EXCEPTION = 2
SERVER_PROGRESS = 3
SERVER_PONG = 4
SERVER_END_OF_STREAM = 5
SERVER_PROFILE_INFO = 6
SERVER_PROFILE_EVENTS = 14

QUERY_KIND_NONE = 0
STAGE_COMPLETE = 2
SETTING_FLAG_CUSTOM = 0x02


# An HTTP request's first byte, read as a packet type: GET and POST (a client pointed at the wrong port).
HTTP_REQUEST_STARTS = (ord("G"), ord("P"))


def wrong_port_answer(native_port: int, http_port: int) -> bytes:
    """Return what a ClickHouse server answers an HTTP request on its native port: a 400 naming the right port."""
    return (
        f"HTTP/1.0 400 Bad Request\r\n\r\nPort {native_port} is for clickhouse-client program\r\n"
        f"You must use port {http_port} for HTTP.\r\n"
    ).encode()


def string(text: str | bytes) -> bytes:
    """Return ``text`` as the protocol writes a string: its length, then its UTF-8 bytes."""
    return native_string(text)


@dataclass(frozen=True)
class ServerIdentity:
    """What the server's Hello says of it."""

    name: str
    version: str  # major.minor[.patch...]
    timezone: str
    display_name: str

    def version_numbers(self) -> tuple[int, int, int]:
        """The version's major, minor and patch numbers (0 where it has none)."""
        parts = [int(part) if part.isdigit() else 0 for part in self.version.split(".")[:3]]
        major, minor, patch = (*parts, 0, 0, 0)[:3]
        return major, minor, patch


def hello(identity: ServerIdentity, revision: int) -> bytes:
    """Return the server's Hello for a client speaking ``revision`` (the lower of the two)."""
    major, minor, patch = identity.version_numbers()
    out = varuint(SERVER_HELLO) + string(identity.name) + varuint(major) + varuint(minor) + varuint(SERVER_REVISION)
    if revision >= SERVER_TIMEZONE:
        out += string(identity.timezone)
    if revision >= SERVER_DISPLAY_NAME:
        out += string(identity.display_name)
    if revision >= VERSION_PATCH:
        out += varuint(patch)
    return out


def exception(error: QueryError, version: str) -> bytes:
    """Return an Exception packet: code, name, message, stack trace, no nested exception."""
    message = error_text(error.code, error.message, version).rstrip("\n")
    message = message.removeprefix(f"Code: {error.code}. ")
    return (
        varuint(SERVER_EXCEPTION)
        + struct.pack("<i", error.code)
        + string("DB::Exception")
        + string(message)
        + string("")
        + b"\x00"
    )


@dataclass
class Progress:
    """The counters of a Progress packet (increments since the last one)."""

    read_rows: int = 0
    read_bytes: int = 0
    total_rows: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    elapsed_ns: int = 0

    def packet(self, revision: int) -> bytes:
        """Return the Progress packet for ``revision``."""
        out = varuint(SERVER_PROGRESS) + varuint(self.read_rows) + varuint(self.read_bytes)
        if revision >= TOTAL_ROWS_IN_PROGRESS:
            out += varuint(self.total_rows)
        if revision >= CLIENT_WRITE_INFO:
            out += varuint(self.written_rows) + varuint(self.written_bytes)
        if revision >= SERVER_QUERY_TIME_IN_PROGRESS:
            out += varuint(self.elapsed_ns)
        return out


def profile_info(rows: int, blocks: int, result_bytes: int) -> bytes:
    """Return a ProfileInfo packet (rows, blocks, bytes; no limit applied)."""
    return varuint(SERVER_PROFILE_INFO) + varuint(rows) + varuint(blocks) + varuint(result_bytes) + b"\x00\x00\x00"


MAX_COMPRESS_BLOCK_BYTES = 1 << 20  # max_compress_block_size: a block goes out in frames of at most this much


def data(block: bytes, revision: int, compression: str | None = None) -> bytes:
    """Return a Data packet around one framed block of the main table, in ClickHouse frames with ``compression``."""
    if compression is not None:
        block = b"".join(
            compress_block(block[start : start + MAX_COMPRESS_BLOCK_BYTES], compression)
            for start in range(0, len(block), MAX_COMPRESS_BLOCK_BYTES)
        )
    return varuint(SERVER_DATA) + (string("") if revision >= TEMPORARY_TABLES else b"") + block


def profile_events(revision: int) -> bytes:
    """Return the ProfileEvents packet a client of ``revision`` waits for after each inserted block (none: empty).

    An empty block: the clients read its rows into their profile, and no counters are kept per thread here.
    """
    if revision < PROFILE_EVENTS_IN_INSERT:
        return b""
    return varuint(SERVER_PROFILE_EVENTS) + string("") + BLOCK_INFO + varuint(0) + varuint(0)


PONG = varuint(SERVER_PONG)
END_OF_STREAM = varuint(SERVER_END_OF_STREAM)


class ClientClosed(Exception):
    """The client closed the connection (or timed out) between or inside packets."""


@dataclass(frozen=True)
class ReadBounds:
    """How long and how much a client may take to send."""

    idle_timeout_s: float  # the longest wait for a packet's first byte
    receive_timeout_s: float  # the longest a packet may take from its first byte (or a block may pause)
    max_string_bytes: int  # the largest single string of a Hello or Query packet
    max_packet_bytes: int  # everything of one Hello or Query packet together


@dataclass
class PacketReader:
    """Reads a client's packets from ``stream`` within ``bounds``; one packet at a time."""

    stream: asyncio.StreamReader
    bounds: ReadBounds
    buffer: bytearray = field(default_factory=bytearray)
    position: int = 0
    _deadline: float | None = None
    _budget: int = 0

    def begin(self, budget: int | None = None, deadline_s: float | None = None) -> None:
        """Start counting a packet: at most ``budget`` bytes, due within ``deadline_s`` from now."""
        if self.position:
            del self.buffer[: self.position]
            self.position = 0
        self._budget = self.bounds.max_packet_bytes if budget is None else budget
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + (self.bounds.receive_timeout_s if deadline_s is None else deadline_s)

    async def _fill(self, size: int) -> None:
        # Read until ``size`` unread bytes are buffered, within the packet's deadline.
        while len(self.buffer) - self.position < size:
            loop = asyncio.get_running_loop()
            timeout_s = None if self._deadline is None else self._deadline - loop.time()
            if timeout_s is not None and timeout_s <= 0:
                raise ClientClosed("packet not received in time")
            try:
                chunk = await asyncio.wait_for(self.stream.read(1 << 16), timeout_s)
            except TimeoutError as exc:
                raise ClientClosed("packet not received in time") from exc
            except (ConnectionError, OSError) as exc:
                raise ClientClosed(str(exc)) from exc
            if not chunk:
                raise ClientClosed("the client closed the connection")
            self.buffer += chunk

    async def wait_packet(self) -> int:
        """Wait (up to the idle timeout) for the next packet and return its type."""
        if self.position:
            del self.buffer[: self.position]
            self.position = 0
        self._deadline = None
        if len(self.buffer) == 0:
            try:
                await asyncio.wait_for(self._fill(1), self.bounds.idle_timeout_s)
            except TimeoutError as exc:
                raise ClientClosed("idle past the idle connection timeout") from exc
        self.begin()
        return await self.varuint()

    def has_buffered(self) -> bool:
        """Whether bytes past the current packet are already buffered."""
        return len(self.buffer) > self.position

    async def raw(self, size: int) -> bytes:
        """Read ``size`` bytes of the packet."""
        if size > self._budget:
            raise QueryError(QUERY_IS_TOO_LARGE, f"Packet is larger than the limit of {self.bounds.max_packet_bytes}")
        self._budget -= size
        await self._fill(size)
        chunk = bytes(self.buffer[self.position : self.position + size])
        self.position += size
        return chunk

    async def varuint(self) -> int:
        """Read a varint (at most ten bytes)."""
        value = shift = 0
        for _ in range(10):
            byte = (await self.raw(1))[0]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
        raise QueryError(UNKNOWN_PACKET_FROM_CLIENT, "Malformed varint in a packet")

    async def string(self, limit: int | None = None) -> str:
        """Read a string of at most ``limit`` bytes (default: the bounds' string size)."""
        size = await self.varuint()
        bound = self.bounds.max_string_bytes if limit is None else limit
        if size > bound:
            raise QueryError(QUERY_IS_TOO_LARGE, f"A string of {size} bytes in a packet (at most {bound})")
        return (await self.raw(size)).decode("utf-8", errors="surrogateescape")

    async def uint8(self) -> int:
        """Read one byte."""
        return (await self.raw(1))[0]

    async def skip(self, size: int) -> None:
        """Read and drop ``size`` bytes."""
        await self.raw(size)

    def unread(self) -> bytes:
        """The buffered bytes not read yet."""
        return bytes(self.buffer[self.position :])

    def is_more_waiting(self) -> bool:
        """Whether more of the client's bytes have arrived than are buffered here."""
        return bool(getattr(self.stream, "_buffer", b""))

    async def exact(self, size: int) -> bytes:
        """Read ``size`` bytes outside the packet budget (a frame the codec checked), pausing as a block may."""
        while len(self.buffer) - self.position < size:
            await self.more()
        chunk = bytes(self.buffer[self.position : self.position + size])
        self.position += size
        return chunk

    async def more(self) -> None:
        """Read what arrives next; a block may pause at most the receive timeout between its reads."""
        try:
            chunk = await asyncio.wait_for(self.stream.read(1 << 20), self.bounds.receive_timeout_s)
        except TimeoutError as exc:
            raise ClientClosed("a block paused past the receive timeout") from exc
        except (ConnectionError, OSError) as exc:
            raise ClientClosed(str(exc)) from exc
        if not chunk:
            raise ClientClosed("the client closed the connection inside a block")
        self.buffer += chunk

    def consume(self, size: int) -> None:
        """Mark ``size`` buffered bytes as read."""
        self.position += size


def network_error(message: str) -> QueryError:
    """An error that ends the connection: the exchange cannot be resumed."""
    return QueryError(NETWORK_ERROR, message)
