"""Writing one HTTP response of the ClickHouse interface: plain answers, errors and results.

A result that completed within the response buffer is sent with ``Content-Length`` and
an exact ``X-ClickHouse-Summary``; a larger one is streamed, compressed as one frame (or as
ClickHouse's block frames for ``compress=1``), and an error after the first bytes is written ClickHouse's way (an
``X-ClickHouse-Exception-Tag`` header and the tagged block in the body) so clients
notice. Streaming stops when the client disconnects.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from warehouse_server.http.codecs import Encoder, FrameEncoder, choose_encoding, make_encoder
from warehouse_server.http.request import Receive, Send
from warehouse_server.protocol import (
    QUERY_IS_TOO_LARGE,
    SERVER_DISPLAY_NAME,
    QueryError,
    Summary,
    content_type_for,
    error_text,
)
from warehouse_server.query.dispatch import Running
from warehouse_server.query.planning import Plan

logger = logging.getLogger(__name__)

_TAG_ALPHABET = string.ascii_letters + string.digits
_PLAIN_TEXT = "text/plain; charset=UTF-8"
# A result still running after this long is streamed from its first rows (ClickHouse's
# http_headers_progress_interval_ms default), so time to first byte is not the query's time.
FLUSH_AFTER_S = 0.1


@dataclass
class Started:
    """A query started on the engine, with the output pulled so far and whether that is all of it."""

    plan: Plan
    running: Running
    chunks: list[bytes]
    is_done: bool


def pull(running: Running, limit: int | None, flush_after_s: float | None = None) -> tuple[list[bytes], bool]:
    """Pull chunks until ``limit`` bytes are buffered (None: until the end); return them and whether done.

    With ``flush_after_s``, stop as soon as some output is held and that long has passed: a
    result still running then is streamed, so its first rows reach the client while it runs,
    and an error after them arrives in the body, as a ClickHouse server sends them.
    """
    deadline = None if flush_after_s is None else time.monotonic() + flush_after_s
    chunks: list[bytes] = []
    size = 0
    while limit is None or size <= limit:
        chunk = running.stream.next_chunk()
        if chunk is None:
            return chunks, True
        chunks.append(chunk)
        size += len(chunk)
        if deadline is not None and size and time.monotonic() >= deadline:
            break
    return chunks, False


@dataclass(frozen=True)
class Responder:
    """Sends the responses of one server: its version and timezone go into errors and headers.

    Args:
        version: the engine's version, quoted in error texts.
        timezone: the engine's timezone, for ``X-ClickHouse-Timezone``.
        keep_alive_timeout_s: announced in the ``Keep-Alive`` header.
        next_chunk: runs a stream's ``next_chunk`` off the event loop and returns its result.
    """

    version: str
    timezone: str
    keep_alive_timeout_s: int
    next_chunk: Callable[[Running], Awaitable[bytes | None]]

    async def plain(self, send: Send, status: int, body: bytes) -> None:
        """Send a plain-text answer (health checks, unknown paths, refused methods)."""
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=UTF-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def error(self, send: Send, error: QueryError, query_id: str, *, close: bool = False) -> None:
        """Send ``error`` as ClickHouse does, echoing ``query_id`` when there is one; ``close``: then close."""
        body = error_text(error.code, error.message, self.version).encode()
        headers = [
            (b"content-type", b"text/plain; charset=UTF-8"),
            (b"x-clickhouse-exception-code", str(error.code).encode()),
            (b"x-clickhouse-server-display-name", SERVER_DISPLAY_NAME.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        if query_id:
            headers.append((b"x-clickhouse-query-id", query_id.encode()))
        if close or error.code == QUERY_IS_TOO_LARGE:
            headers.append((b"connection", b"close"))  # the rest of the body was never read
        await send({"type": "http.response.start", "status": error.http_status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def result(
        self, begun: Started, headers: Mapping[str, str], receive: Receive, send: Send, *, framing: str | None = None
    ) -> None:
        """Send a started query's output: whole when it is done, else streamed to its end.

        ``framing``: the method of ClickHouse's block framing (``compress=1``), which then
        replaces any ``Accept-Encoding`` compression; None for none.
        """
        request_plan = begun.plan
        encoding = None
        if framing is None and request_plan.http_flag("enable_http_compression", default=True):
            encoding = choose_encoding(headers.get("accept-encoding", ""))
        has_result = begun.running.has_result or any(begun.chunks)
        response_headers = self._headers(request_plan, begun.running.stream.summary, has_result)
        level = request_plan.http_settings.get("http_zlib_compression_level", "3")
        encoder: Encoder | None = None
        if framing is not None:
            encoder = FrameEncoder(framing)
        elif encoding:
            encoder = make_encoder(encoding, int(level) if level.isdigit() else 3)
        if begun.is_done:
            body = b"".join(begun.chunks)
            if encoder is not None and body:
                body = encoder.compress(body) + encoder.finish()
                if framing is None:
                    response_headers.append((b"content-encoding", encoder.name.encode()))
            response_headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": response_headers})
            await send({"type": "http.response.body", "body": body})
            return
        tag = "".join(secrets.choice(_TAG_ALPHABET) for _ in range(16))
        response_headers.append((b"x-clickhouse-exception-tag", tag.encode()))
        if encoder is not None and framing is None:
            response_headers.append((b"content-encoding", encoder.name.encode()))
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await self._stream(begun, encoder, tag, receive, send)

    def _headers(self, request_plan: Plan, summary: Summary, has_result: bool) -> list[tuple[bytes, bytes]]:
        # Only a result names its format (and its content type): clients read a missing
        # X-ClickHouse-Format as "no result, a summary", as a ClickHouse server answers DDL.
        content_type = content_type_for(request_plan.output_format) if has_result else _PLAIN_TEXT
        headers = [
            (b"content-type", content_type.encode()),
            (b"x-clickhouse-query-id", request_plan.query_id.encode()),
        ]
        if has_result:
            headers.append((b"x-clickhouse-format", request_plan.output_format.encode()))
        return [
            *headers,
            (b"x-clickhouse-timezone", self.timezone.encode()),
            (b"x-clickhouse-server-display-name", SERVER_DISPLAY_NAME.encode()),
            (b"x-clickhouse-summary", summary.header().encode()),
            (b"keep-alive", f"timeout={self.keep_alive_timeout_s}".encode()),
        ]

    async def _stream(self, begun: Started, encoder: Encoder | None, tag: str, receive: Receive, send: Send) -> None:
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
                    next_chunk = await self.next_chunk(begun.running)
                except QueryError as error:
                    block = _exception_block(tag, error_text(error.code, error.message, self.version))
                    if not isinstance(encoder, FrameEncoder):  # after ClickHouse frames it follows them unframed
                        block = _encode(encoder, block)
                    await send({"type": "http.response.body", "body": block, "more_body": True})
                    logger.warning("query_id=%s failed after streaming began: %s", begun.plan.query_id, error)
                    break
                pending = [next_chunk] if next_chunk is not None else None
            tail = encoder.finish() if encoder is not None else b""
            await send({"type": "http.response.body", "body": tail, "more_body": False})
        finally:
            watcher.cancel()


def _encode(encoder: Encoder | None, chunk: bytes) -> bytes:
    return encoder.compress(chunk) if encoder is not None else chunk


def _exception_block(tag: str, message: str) -> bytes:
    """Return ClickHouse's in-stream error block (server 25.11+ layout)."""
    text = message.rstrip("\n")
    return f"__exception__\r\n{tag}\r\n{text}\n{len(text)} {tag}\r\n__exception__\r\n".encode()
