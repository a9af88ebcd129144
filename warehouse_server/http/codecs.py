"""Request body decoding and response encoding for the ClickHouse HTTP interface.

Request bodies arrive compressed per ``Content-Encoding`` (gzip, deflate, zstd, lz4, xz,
bz2) or in ClickHouse's own block framing (``decompress=1``, read by
:class:`warehouse_server.compression.FrameReader`, its checksums verified). Two rules keep rows from
vanishing or half-landing:

- every frame is decoded: clickhouse-connect sends an LZ4 body as several LZ4 frames,
  and a decoder that stops after the first one silently drops the rest of the rows
  (seen: 655,360 of 1,000,000 rows landed);
- the whole body is decoded, and checked complete, before anything is inserted, so a
  truncated or corrupt body fails with CANNOT_DECOMPRESS and inserts nothing.

Decoded size is bounded while decoding, never after: every decoder is fed or drained in
steps whose output is bounded, and the running total is checked after each step, so a
small body cannot expand into gigabytes before it is refused (a gzip, zstd or lz4 bomb
costs at most the limit plus one step). The work is bounded as well as the size: a body may
start at most one frame (gzip member, zstd or lz4 frame, xz or bz2 stream, ClickHouse block) per
:data:`BYTES_PER_FRAME` read and decoded so far, plus :data:`MIN_FRAMES` (1 MB of 50,000
empty gzip members cost 1.2-4.6 s of CPU before), and every decoder is fed slices of at most
:data:`_FEED_BYTES`, so what follows a frame is never copied whole (that copy made many
frames cost the square of the body's size); a body's frames share one zstd context (a fresh
context per frame cost ~80 us, the frame itself ~1 us). A ClickHouse block's declared sizes are checked
before anything is allocated for it. ``multipart/form-data`` bodies are read by a linear
parser with caps on fields and headers. Responses are compressed per ``Accept-Encoding`` as
one frame per response, since clients keep one decoder per response; per ``compress=1`` in
ClickHouse's block framing, a frame per chunk of at most :data:`RESPONSE_FRAME_BYTES`.
"""

from __future__ import annotations

import bz2
import lzma
import re
import zlib
from collections.abc import Callable, Mapping
from typing import Protocol

import lz4.frame
import zstandard

from warehouse_server.compression import BYTES_PER_FRAME, MIN_FRAMES, FrameReader, compress_block
from warehouse_server.protocol import (
    BAD_ARGUMENTS,
    CANNOT_DECOMPRESS,
    NOT_IMPLEMENTED,
    QUERY_IS_TOO_LARGE,
    UNKNOWN_COMPRESSION_METHOD,
    QueryError,
)

_STEP_BYTES = 1 << 20  # most output one decoder step may produce (zlib, lz4, xz, bz2)
_FEED_BYTES = 16 << 10  # most input one decoder step is given
# zstd's decompressobj has no output cap, so its input is sliced instead: a zstd block
# decodes to at most 128 KiB from no fewer than 3 bytes (an RLE block), under 2**16 : 1, so
# an input slice of (budget left >> 16) bytes cannot produce much more than the budget.
_ZSTD_MAX_RATIO_SHIFT = 16
_ZSTD_SLICE_BYTES = (64 * 1024, 64)  # the largest and the smallest slice
_FRAMED_FEED_BYTES = 1 << 20  # a ClickHouse-framed body is fed to its reader in pieces, so it is not copied whole
# ClickHouse's CompressedWriteBuffer holds 1 MiB (DBMS_DEFAULT_BUFFER_SIZE): no response frame is larger.
RESPONSE_FRAME_BYTES = 1 << 20
# network_compression_method's values (ClickHouse's, case-insensitive) and the frame method each one writes.
_FRAME_METHODS = {"lz4": "lz4", "lz4hc": "lz4", "zstd": "zstd", "none": "none"}
KNOWN_ENCODINGS = ("gzip", "deflate", "br", "xz", "zstd", "lz4", "bz2", "snappy")


class _Decompressor(Protocol):
    """bz2, lzma and lz4.frame decompressors share this shape."""

    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    @property
    def unused_data(self) -> bytes | None: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _Output:
    """Collects decoded bytes and enforces the size bound and the frame budget."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0
        self.frames = 0

    def begin_frame(self, name: str, consumed: int) -> None:
        """Count one more frame after ``consumed`` bytes of input, refusing it past the budget."""
        self.frames += 1
        if self.frames > MIN_FRAMES + (consumed + self.size) // BYTES_PER_FRAME:
            raise QueryError(
                CANNOT_DECOMPRESS,
                f"Cannot decompress {name} request body: {self.frames} frames in {consumed} bytes are more than "
                f"its size allows (one per {BYTES_PER_FRAME} bytes read and decoded, and {MIN_FRAMES})",
            )

    def reserve(self, size: int) -> None:
        """Refuse before decoding when ``size`` more bytes would pass the bound."""
        if self.size + size > self.limit:
            raise self._too_large()

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise self._too_large()
        if chunk:
            self.parts.append(chunk)

    def _too_large(self) -> QueryError:
        return QueryError(
            QUERY_IS_TOO_LARGE, f"Decompressed request body is larger than the limit of {self.limit} bytes"
        )

    def value(self) -> bytes:
        return b"".join(self.parts)


def _truncated(name: str) -> QueryError:
    return QueryError(CANNOT_DECOMPRESS, f"Cannot decompress {name} request body: data is truncated")


def _corrupt(name: str, reason: object) -> QueryError:
    return QueryError(CANNOT_DECOMPRESS, f"Cannot decompress {name} request body: {reason}")


def _decode_streams(data: bytes, make: Callable[[], _Decompressor], name: str, limit: int) -> bytes:
    # Concatenated frames/streams/members: start a new decompressor on whatever follows each one.
    output = _Output(limit)
    view = memoryview(data)
    offset = 0
    while offset < len(view):
        output.begin_frame(name, offset)
        decompressor = make()
        while not decompressor.eof:
            if not decompressor.needs_input:
                output.add(decompressor.decompress(b"", max_length=_STEP_BYTES))
                continue
            if offset >= len(view):
                raise _truncated(name)
            piece = bytes(view[offset : offset + _FEED_BYTES])
            offset += len(piece)
            output.add(decompressor.decompress(piece, max_length=_STEP_BYTES))
        offset -= len(decompressor.unused_data or b"")  # what followed the frame in the last piece
    return output.value()


def _decode_zlib(data: bytes, wbits: int, name: str, limit: int) -> bytes:
    output = _Output(limit)
    view = memoryview(data)
    offset = 0
    while offset < len(view):
        output.begin_frame(name, offset)
        decompressor = zlib.decompressobj(wbits)
        while offset < len(view) and not decompressor.eof:
            pending: bytes | memoryview = view[offset : offset + _FEED_BYTES]
            offset += len(pending)
            while pending and not decompressor.eof:
                output.add(decompressor.decompress(pending, _STEP_BYTES))
                pending = decompressor.unconsumed_tail
        output.add(decompressor.flush())
        if not decompressor.eof:
            raise _truncated(name)
        offset -= len(decompressor.unused_data)  # what followed the member in the last piece
    return output.value()


def _decode_zstd(data: bytes, limit: int) -> bytes:
    output = _Output(limit)
    view = memoryview(data)
    offset = 0
    context = zstandard.ZstdDecompressor()  # one per body: a new context per frame cost ~80 us, the frame ~1 us
    while offset < len(view):
        output.begin_frame("zstd", offset)
        decompressor = context.decompressobj()
        while offset < len(view) and not decompressor.eof:
            largest, smallest = _ZSTD_SLICE_BYTES
            step = min(largest, max(smallest, (output.limit - output.size) >> _ZSTD_MAX_RATIO_SHIFT))
            piece = view[offset : offset + step]
            offset += len(piece)
            output.add(decompressor.decompress(piece))
        if not decompressor.eof:
            raise _truncated("zstd")
        offset -= len(decompressor.unused_data)  # what followed the frame in the last slice
    return output.value()


def decode_body(body: bytes, content_encoding: str, limit: int) -> bytes:
    """Decode a request body per its ``Content-Encoding``, every frame, completely.

    Raises:
        QueryError: CANNOT_DECOMPRESS for truncated or corrupt data, QUERY_IS_TOO_LARGE past
            ``limit`` decoded bytes, NOT_IMPLEMENTED for an encoding this server lacks.
    """
    encoding = content_encoding.strip().lower()
    try:
        if encoding in ("", "identity", "none"):
            return body
        if encoding in ("gzip", "x-gzip"):
            return _decode_zlib(body, 16 + zlib.MAX_WBITS, "gzip", limit)
        if encoding == "deflate":
            return _decode_zlib(body, zlib.MAX_WBITS, "deflate", limit)
        if encoding == "zstd":
            return _decode_zstd(body, limit)
        if encoding == "lz4":
            return _decode_streams(body, lz4.frame.LZ4FrameDecompressor, "lz4", limit)
        if encoding == "xz":
            return _decode_streams(body, lzma.LZMADecompressor, "xz", limit)
        if encoding == "bz2":
            return _decode_streams(body, bz2.BZ2Decompressor, "bz2", limit)
    except (zlib.error, lzma.LZMAError, OSError, RuntimeError, zstandard.ZstdError, EOFError, ValueError) as exc:
        raise _corrupt(encoding, exc) from exc
    known = "this server decodes gzip, deflate, zstd, lz4, xz and bz2"
    if encoding in KNOWN_ENCODINGS:
        raise QueryError(NOT_IMPLEMENTED, f"Compression method '{encoding}' is not supported: {known}")
    raise QueryError(NOT_IMPLEMENTED, f"Unknown compression method '{encoding}': {known}")


def decode_frames(body: bytes, limit: int, *, verify: bool = True) -> bytes:
    """Decode ClickHouse's own compressed block framing (the ``decompress=1`` parameter), every frame.

    Each frame's checksum is verified unless ``verify`` is off (ClickHouse's
    ``http_native_compression_disable_checksumming_on_decompress``); its declared sizes are
    checked from its header, before anything is allocated for it (the bounds of
    :class:`warehouse_server.compression.FrameReader`, ``limit`` decoded bytes in total).

    Raises:
        QueryError: CHECKSUM_DOESNT_MATCH, CANNOT_DECOMPRESS, UNKNOWN_COMPRESSION_METHOD,
            TOO_LARGE_SIZE_COMPRESSED or QUERY_IS_TOO_LARGE.
    """
    reader = FrameReader(limit, verify=verify, what="ClickHouse-framed request body")
    view = memoryview(body)
    parts = [
        payload
        for start in range(0, len(view), _FRAMED_FEED_BYTES)
        for payload in reader.feed(view[start : start + _FRAMED_FEED_BYTES])
    ]
    reader.finish()
    return b"".join(parts)


MAX_FORM_FIELDS = 1000
MAX_FORM_PART_HEADER_BYTES = 8 * 1024
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")  # RFC 2046
_HEADER_PARAM = re.compile(rb';\s*([A-Za-z0-9_*\-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)')
_PLAIN_TRANSFER_ENCODINGS = frozenset({b"", b"7bit", b"8bit", b"binary"})


def _malformed_form(reason: str) -> QueryError:
    return QueryError(BAD_ARGUMENTS, f"Malformed multipart/form-data body: {reason}")


def _form_boundary(content_type: str) -> bytes:
    for match in _HEADER_PARAM.finditer(content_type.encode("latin-1")):
        if match.group(1).lower() == b"boundary":
            value = match.group(2).decode("latin-1").strip('"')
            if _BOUNDARY.fullmatch(value):
                return value.encode("latin-1")
            break
    raise _malformed_form("missing or invalid boundary")


def _form_part(headers: bytes) -> tuple[str | None, bool]:
    """Return the field name of one part's headers and whether it is a file; refuse what this server does not read."""
    name: str | None = None
    is_file = False
    for line in headers.split(b"\r\n"):
        key, colon, value = line.partition(b":")
        if not colon:
            raise _malformed_form("a part header without a colon")
        key = key.strip().lower()
        if key == b"content-disposition":
            params = {found.group(1).lower(): found.group(2) for found in _HEADER_PARAM.finditer(value)}
            is_file = b"filename" in params
            raw = params.get(b"name")
            if raw is not None:
                unquoted = raw[1:-1].replace(b'\\"', b'"') if raw.startswith(b'"') else raw
                name = unquoted.decode("utf-8", errors="replace")
        elif key == b"content-type" and value.strip().lower().startswith(b"multipart/"):
            raise _malformed_form("nested multipart parts are not supported")
        elif key == b"content-transfer-encoding" and value.strip().lower() not in _PLAIN_TRANSFER_ENCODINGS:
            raise QueryError(NOT_IMPLEMENTED, "Content-Transfer-Encoding of a form field is not supported")
    return name, is_file


def form_fields(body: bytes, content_type: str) -> tuple[dict[str, str], dict[str, bytes]]:
    """Return the fields and the files of a ``multipart/form-data`` body.

    Clients send the query and ``param_*`` values as form fields when they are too long
    for a URL (clickhouse-connect's form encoding). File fields are ClickHouse "external
    data": tables for this query only, named by the field. The parser is linear in the
    body (``bytes.find`` from part to part) and caps the fields (:data:`MAX_FORM_FIELDS`) and each part's headers
    (:data:`MAX_FORM_PART_HEADER_BYTES`): the standard library's e-mail parser it replaces
    recursed without bound on nested comments and spent seconds of CPU on small crafted
    bodies.

    Raises:
        QueryError: BAD_ARGUMENTS for a malformed form or QUERY_IS_TOO_LARGE past the caps.
    """
    delimiter = b"--" + _form_boundary(content_type)
    start = body.find(delimiter)
    if start < 0:
        raise _malformed_form("no boundary in the body")
    position = start + len(delimiter)
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    while not body.startswith(b"--", position):
        if not body.startswith(b"\r\n", position):
            raise _malformed_form("a boundary not followed by a line break")
        position += 2
        if body.startswith(b"\r\n", position):
            headers_end, value_start = position, position + 2
        else:
            headers_end = body.find(b"\r\n\r\n", position, position + MAX_FORM_PART_HEADER_BYTES + 4)
            if headers_end < 0:
                raise _malformed_form(f"part headers missing or longer than {MAX_FORM_PART_HEADER_BYTES} bytes")
            value_start = headers_end + 4
        value_end = body.find(b"\r\n" + delimiter, value_start)
        if value_end < 0:
            raise _malformed_form("the last part is not closed")
        if len(fields) + len(files) >= MAX_FORM_FIELDS:
            raise QueryError(QUERY_IS_TOO_LARGE, f"A form holds more than {MAX_FORM_FIELDS} fields")
        name, is_file = _form_part(body[position:headers_end]) if headers_end > position else (None, False)
        if name is not None and is_file:
            files[name] = body[value_start:value_end]
        elif name is not None:
            fields[name] = body[value_start:value_end].decode("utf-8", errors="replace")
        position = value_end + 2 + len(delimiter)
    return fields, files


class Encoder(Protocol):
    """A streaming response compressor: one frame for the whole response."""

    name: str

    def compress(self, chunk: bytes) -> bytes:
        """Compress a chunk and return what can be sent now."""

    def finish(self) -> bytes:
        """Return the end of the frame."""


class _Lz4Encoder:
    name = "lz4"

    def __init__(self) -> None:
        self._compressor = lz4.frame.LZ4FrameCompressor(auto_flush=True)
        self._header: bytes = bytes(self._compressor.begin())

    def compress(self, chunk: bytes) -> bytes:
        header, self._header = self._header, b""
        return header + bytes(self._compressor.compress(chunk))

    def finish(self) -> bytes:
        header, self._header = self._header, b""
        return header + bytes(self._compressor.flush())


class _ZstdEncoder:
    name = "zstd"

    def __init__(self) -> None:
        self._compressor = zstandard.ZstdCompressor(level=1).compressobj()

    def compress(self, chunk: bytes) -> bytes:
        return self._compressor.compress(chunk) + self._compressor.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def finish(self) -> bytes:
        return self._compressor.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)


class _ZlibEncoder:
    def __init__(self, name: str, wbits: int, level: int) -> None:
        self.name = name
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, wbits)

    def compress(self, chunk: bytes) -> bytes:
        return self._compressor.compress(chunk) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._compressor.flush(zlib.Z_FINISH)


class FrameEncoder:
    """ClickHouse's block framing of a response (``compress=1``): each chunk as frames of at most 1 MiB.

    A frame per chunk rather than per 1 MiB buffered, so a streamed result's first rows are not
    held back; the frames joined decode to the response as the client reads it.
    """

    def __init__(self, method: str) -> None:
        self.name = method

    def compress(self, chunk: bytes) -> bytes:
        """Return ``chunk`` as ClickHouse frames, ready to send."""
        view = memoryview(chunk)
        return b"".join(
            compress_block(bytes(view[start : start + RESPONSE_FRAME_BYTES]), self.name)
            for start in range(0, len(view), RESPONSE_FRAME_BYTES)
        )

    def finish(self) -> bytes:
        """Return nothing: every frame is complete when it is written."""
        return b""


def frame_method(params: Mapping[str, str]) -> str | None:
    """Return the method of a request's ``compress=1`` response frames, None for an unframed response.

    LZ4 as ClickHouse writes them; ``network_compression_method`` (ZSTD, NONE, LZ4HC) picks
    another. Every client reads a frame by its method byte, except the JDBC driver's, which
    reads LZ4 only, and asks for no other.

    Raises:
        QueryError: UNKNOWN_COMPRESSION_METHOD for a method ClickHouse does not have.
    """
    if params.get("compress", "").strip().lower() in ("", "0", "false"):
        return None
    name = params.get("network_compression_method", "lz4").strip().lower()
    if name not in _FRAME_METHODS:
        raise QueryError(UNKNOWN_COMPRESSION_METHOD, f"Unknown compression method: {name}")
    return _FRAME_METHODS[name]


_PREFERENCE = ("lz4", "zstd", "gzip", "deflate")


def choose_encoding(accept_encoding: str) -> str | None:
    """Pick the response encoding from ``Accept-Encoding`` (fastest first; ``q=0`` excludes)."""
    accepted: set[str] = set()
    for item in accept_encoding.lower().split(","):
        name, _, params = item.strip().partition(";")
        quality = params.strip().removeprefix("q=")
        if name and not (params and quality.replace(".", "", 1).isdigit() and float(quality) == 0.0):
            accepted.add(name.strip())
    return next((name for name in _PREFERENCE if name in accepted), None)


def make_encoder(name: str, zlib_level: int = 3) -> Encoder:
    """Return a fresh encoder for one response (``zlib_level`` is ClickHouse's http_zlib_compression_level)."""
    if name == "lz4":
        return _Lz4Encoder()
    if name == "zstd":
        return _ZstdEncoder()
    if name == "gzip":
        return _ZlibEncoder("gzip", 16 + zlib.MAX_WBITS, zlib_level)
    if name == "deflate":
        return _ZlibEncoder("deflate", zlib.MAX_WBITS, zlib_level)
    raise ValueError(f"no encoder for {name!r}")
