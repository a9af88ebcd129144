"""Connection-level bounds of the HTTP service, as a ClickHouse server has them.

uvicorn on its own times out neither a connection that never sends a request nor one
that sends its head a byte at a time, and parses a request line or header block of any
size on the event loop (its URL is grown by concatenation: an 80 MiB URL held the loop
for seconds, and 30 MiB of small headers stayed in memory until the client left).
:class:`BoundedHttpProtocol` is uvicorn's httptools protocol with ClickHouse's bounds:

- ``http_receive_timeout``: a request's head (request line and headers) must arrive
  within the receive timeout of its first byte, or of the connection's opening; a body
  may pause at most that long. A connection past it is closed.
- ``keep_alive_timeout``: uvicorn closes a connection idle that long after a response.
- ``http_max_uri_size``, ``http_max_fields``, ``http_max_field_name_size``,
  ``http_max_field_value_size``: counted as the bytes arrive, before the parser sees
  them; past a bound the request is answered 414 or 431 at once and nothing more is read:
  the connection stops reading and closes :data:`REFUSED_LINGER_S` later (a client that
  sent its whole head reads the answer meanwhile; one still sending is reset). The rest of
  an 80 MiB URL or header costs the server nothing, where reading it to drop it cost the
  copy of every byte, and a client repeating it waits out the linger each time.
- ``http_send_timeout``: a response may make no progress into the socket (the client
  reads nothing while the buffers are full) for at most the send timeout; past it the
  connection is cut, so the query ends and its slot is given back.
- ``max_connections``, in total and per client address (:class:`ConnectionBudget`): a
  connection over budget makes room by closing the least recently active connection
  that is not the service user's and holds no query slot, so connections that idle,
  trickle, never authenticate or were refused a slot cannot keep the pipeline's writers
  out. A connection is engaged (never closed to make room) only while it holds one of
  its user's query slots, so a user's engaged connections are capped by its slots; one
  that authenticated as the service user is never closed to make room. A connection
  over its address's share with nothing of that address to close is admitted on
  probation and kept only if it authenticates as the service user: the share is checked
  once the user is known.

The ASGI application learns its connection from the request scope
(:func:`connection_of`) and marks it once the request's user is known. Closing a
connection is logged at debug level only (an attacker reopening connections would
otherwise fill the log); the budget counts what it closed and refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from warehouse_server.security.budget import Connection, ConnectionBudget

logger = logging.getLogger(__name__)

CONNECTION_KEY = "warehouse.connection"  # where a request's scope["state"] holds its connection
REFUSED_LINGER_S = 1.0  # a refused head's connection reads nothing more and closes this much later
_REASONS = {408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large"}


@dataclass(frozen=True)
class HttpBounds:
    """The bounds of one connection (ClickHouse's setting names in the comments)."""

    receive_timeout_s: float = 30.0  # http_receive_timeout
    # http_max_uri_size (ClickHouse: 1 MiB); httptools' URL parser refuses more than 65,535 bytes anyway.
    max_uri_bytes: int = 65_535
    max_fields: int = 1000  # http_max_fields
    max_field_name_bytes: int = 1024  # http_max_field_name_size
    max_field_value_bytes: int = 128 << 10  # http_max_field_value_size
    max_header_bytes: int = 256 << 10  # every header of one request together
    send_timeout_s: float = 10.0  # http_send_timeout: the longest a response may stall in a full socket

    @property
    def max_head_bytes(self) -> int:
        """The most a request line and its headers may take, with the line breaks."""
        return self.max_uri_bytes + self.max_header_bytes + 64 * 1024


class _Refused(Exception):
    """A request head over a bound; raised from a parser callback to stop parsing."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def connection_of(scope: MutableMapping[str, Any]) -> Connection | None:
    """Return the connection a request arrived on (None when not served by :class:`BoundedHttpProtocol`)."""
    state = scope.get("state")
    connection = state.get(CONNECTION_KEY) if isinstance(state, dict) else None
    return connection if isinstance(connection, Connection) else None


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the receive timeout, head size bounds and the connection budget.

    The bounds and the budget are class attributes: uvicorn builds a protocol per
    connection from the class alone (:func:`bounded_protocol` makes one per server).
    """

    bounds: ClassVar[HttpBounds] = HttpBounds()
    budget: ClassVar[ConnectionBudget] = ConnectionBudget(1024, 256)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection in (or close it when over budget) and start its receive timeout."""
        super().connection_made(transport)
        self._head_bytes = 0
        self._url_bytes = 0
        self._field_count = 0
        self._header_bytes = 0
        self._in_head = True
        self._is_refused = False  # a head over a bound was answered: nothing more is read
        self._last_data_at = self.loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        client = self.client[0] if self.client else "-"
        self._connection = Connection(client, self._close_now)
        if not self.budget.admit(self._connection):
            logger.debug("connection from %s refused: %d connections open", client, len(self.budget))
            transport.abort()
            return
        self._arm(self.bounds.receive_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection and its timers."""
        self._disarm()
        self._disarm_send()
        self.budget.release(self._connection)
        super().connection_lost(exc)

    def _close_now(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.close()

    def _arm(self, delay_s: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay_s, self._on_timer)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def pause_writing(self) -> None:
        """The client reads nothing while the buffers are full: the response may stall the send timeout at most."""
        super().pause_writing()
        self._disarm_send()
        self._send_timer = self.loop.call_later(self.bounds.send_timeout_s, self._on_send_stalled)

    def resume_writing(self) -> None:
        """The client read again: the response is making progress."""
        self._disarm_send()
        super().resume_writing()

    def _disarm_send(self) -> None:
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _on_send_stalled(self) -> None:
        self._send_timer = None
        if self.flow.write_paused:
            logger.debug("connection from %s cut: its response stalled past the send timeout", self._connection.client)
            self.transport.abort()  # close() would wait for the client to read what is buffered

    def _on_timer(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._is_refused:
            self.transport.close()
            return
        if self._in_head:
            logger.debug("connection from %s closed: no complete request head in time", self._connection.client)
            self.transport.close()
            return
        if self.cycle is None or not self.cycle.more_body or self.cycle.response_complete:
            return  # the body is in: what runs now is the request, not the client's sending
        if self.flow.read_paused:  # the application is not reading yet: not the client's pause
            self._arm(self.bounds.receive_timeout_s)
            return
        idle_s = self.loop.time() - self._last_data_at
        if idle_s >= self.bounds.receive_timeout_s:
            logger.debug("connection from %s closed: its body paused past the receive timeout", self._connection.client)
            self.transport.close()
            return
        self._arm(self.bounds.receive_timeout_s - idle_s)

    def data_received(self, data: bytes) -> None:
        """Count the head's bytes before the parser sees them, and refuse a head over the bounds."""
        if self._is_refused:
            return  # what arrived with the refused head's last read; nothing is parsed
        self._last_data_at = self.loop.time()
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.bounds.max_head_bytes:
                # The URL alone is cut at its own bound by on_url: what is over here is headers.
                self._refuse(_Refused(431, f"The request's head is larger than {self.bounds.max_head_bytes} bytes"))
                return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _Refused):
                self._refuse(exc.__context__)
                return
            logger.warning("invalid HTTP request from %s: %r", self._connection.client, exc.__context__ or exc)
            self.send_400_response("Invalid HTTP request received.")
        except httptools.HttpParserUpgrade:
            self.send_400_response("Protocol upgrades are not supported.")

    def _refuse(self, refusal: _Refused) -> None:
        logger.info("request from %s refused: %s", self._connection.client, refusal.message)
        body = f"Code: 400. DB::Exception: {refusal.message}. (BAD_REQUEST_PARAMETER)\n".encode()
        head = (
            f"HTTP/1.1 {refusal.status} {_REASONS[refusal.status]}\r\n"
            f"Content-Type: text/plain; charset=UTF-8\r\nContent-Length: {len(body)}\r\n"
            "X-ClickHouse-Exception-Code: 400\r\nConnection: close\r\n\r\n"
        ).encode()
        self.transport.write(head + body)
        # Nothing more is read (the kernel's buffers fill and the client's sending blocks); the
        # linger lets a client that sent its whole head read the answer before the close.
        self.transport.pause_reading()
        self._is_refused = True
        self._in_head = False
        self._arm(REFUSED_LINGER_S)

    def on_message_begin(self) -> None:
        """Start a request: its head must complete within the receive timeout."""
        super().on_message_begin()
        self.scope["state"][CONNECTION_KEY] = self._connection
        self.budget.touch(self._connection)
        if not self._in_head:
            self._in_head = True
            self._head_bytes = 0
            self._arm(self.bounds.receive_timeout_s)
        self._url_bytes = 0
        self._field_count = 0
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        """Collect the URL up to ``http_max_uri_size``."""
        self._url_bytes += len(url)
        if self._url_bytes > self.bounds.max_uri_bytes:
            raise _too_long_uri(self.bounds)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Collect a header within the field count and size bounds."""
        bounds = self.bounds
        self._field_count += 1
        self._header_bytes += len(name) + len(value) + 4
        if self._field_count > bounds.max_fields:
            raise _Refused(431, f"Too many HTTP header fields (the limit is {bounds.max_fields})")
        if len(name) > bounds.max_field_name_bytes:
            raise _Refused(431, f"An HTTP header field name is longer than {bounds.max_field_name_bytes} bytes")
        if len(value) > bounds.max_field_value_bytes:
            raise _Refused(431, f"An HTTP header field value is longer than {bounds.max_field_value_bytes} bytes")
        if self._header_bytes > bounds.max_header_bytes:
            raise _Refused(431, f"The HTTP header fields are larger than {bounds.max_header_bytes} bytes in all")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is in: from now on the body's pauses are timed."""
        self._in_head = False
        self._disarm()
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.more_body:
            self._arm(self.bounds.receive_timeout_s)

    def on_message_complete(self) -> None:
        """The body is in: nothing more is timed until the response is sent."""
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """The response is sent: the connection is spare again (uvicorn's keep-alive timeout runs)."""
        self._connection.is_engaged = False
        super().on_response_complete()


def _too_long_uri(bounds: HttpBounds) -> _Refused:
    return _Refused(414, f"The request's URI is longer than {bounds.max_uri_bytes} bytes (http_max_uri_size)")


def bounded_protocol(bounds: HttpBounds, budget: ConnectionBudget) -> type[BoundedHttpProtocol]:
    """Return a protocol class for one server: its connections share ``budget`` and obey ``bounds``."""
    return type("WarehouseHttpProtocol", (BoundedHttpProtocol,), {"bounds": bounds, "budget": budget})
