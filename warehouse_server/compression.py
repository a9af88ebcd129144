"""ClickHouse's block compression: the frame every transport shares, with no I/O of its own.

ClickHouse compresses a stream of bytes as a run of frames. Each frame is a 16-byte
CityHash128 checksum (ClickHouse's variant, CityHash 1.0.2: its low 64 bits then its high
64 bits, each little-endian), then a 9-byte header (the method byte, the compressed size
including those 9 bytes, the decompressed size, both little-endian uint32), then the payload.
The checksum covers the header and the payload. Methods: LZ4 (0x82, one LZ4 block), ZSTD
(0x90, one zstd frame), NONE (0x02, the bytes themselves). The payloads joined are the
stream: a frame need not end where a Native block or a row ends.

The HTTP interface uses it for ``compress=1`` responses and ``decompress=1`` request bodies;
the native TCP protocol for its Data packets. Reading is bounded from the first byte, as every
body is: a frame's declared sizes are checked as soon as its header arrives (above
:data:`MAX_FRAME_BYTES` it is ``TOO_LARGE_SIZE_COMPRESSED``, as ClickHouse answers; past the
reader's total, ``QUERY_IS_TOO_LARGE`` before anything is allocated for it), the checksum is
verified before the payload is decoded (``CHECKSUM_DOESNT_MATCH``), a decoder never produces
more than the frame declares (a zstd frame naming a larger content size is refused from its
header, not after decoding it), and the frames are counted against the bytes read and decoded
(one per :data:`BYTES_PER_FRAME`, and :data:`MIN_FRAMES`), so a body of empty frames costs
nothing before it is refused.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator

import lz4.block
import zstandard
from clickhouse_cityhash.cityhash import CityHash128

from warehouse_server.protocol import (
    CANNOT_DECOMPRESS,
    CHECKSUM_DOESNT_MATCH,
    QUERY_IS_TOO_LARGE,
    TOO_LARGE_SIZE_COMPRESSED,
    UNKNOWN_COMPRESSION_METHOD,
    QueryError,
)

CHECKSUM_BYTES = 16
_HEADER = struct.Struct("<BII")  # method byte, compressed size (these 9 bytes included), decompressed size
HEADER_BYTES = _HEADER.size
FRAME_OVERHEAD = CHECKSUM_BYTES + HEADER_BYTES
# ClickHouse's DBMS_MAX_COMPRESSED_SIZE: a frame declaring more is refused as corrupt.
MAX_FRAME_BYTES = 0x40000000
# The work budget: a frame per 16 KiB read and decoded, and a few for a small body.
BYTES_PER_FRAME = 16 << 10
MIN_FRAMES = 16
METHOD_BYTES = {"lz4": 0x82, "zstd": 0x90, "none": 0x02}
_METHOD_NAMES = {byte: name for name, byte in METHOD_BYTES.items()}
_ZSTD_LEVEL = 1  # ClickHouse's default ZSTD level
_LOW_64 = (1 << 64) - 1
_local = threading.local()  # zstd contexts are not shared between threads


def checksum(data: bytes | memoryview) -> bytes:
    """Return ClickHouse's CityHash128 checksum of ``data`` as it is written in a frame."""
    value: int = CityHash128(bytes(data))  # ClickHouse's first 64-bit word is this number's upper half
    return struct.pack("<QQ", value >> 64, value & _LOW_64)


def _zstd_compressor() -> zstandard.ZstdCompressor:
    compressor: zstandard.ZstdCompressor | None = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
    return compressor


def compress_block(data: bytes, method: str) -> bytes:
    """Return ``data`` as one ClickHouse frame compressed with ``method`` ("lz4", "zstd" or "none").

    Raises:
        ValueError: for another method, or data a frame cannot hold (1 GiB or more).
    """
    if method not in METHOD_BYTES:
        raise ValueError(f"no ClickHouse compression method {method!r}: one of {sorted(METHOD_BYTES)}")
    if len(data) + HEADER_BYTES > MAX_FRAME_BYTES:
        raise ValueError(f"a frame holds at most {MAX_FRAME_BYTES - HEADER_BYTES} bytes, not {len(data)}")
    payload: bytes
    if method == "lz4":
        payload = lz4.block.compress(data, store_size=False)
    elif method == "zstd":
        payload = _zstd_compressor().compress(data)
    else:
        payload = bytes(data)
    header = _HEADER.pack(METHOD_BYTES[method], HEADER_BYTES + len(payload), len(data))
    return checksum(header + payload) + header + payload


class FrameReader:
    """Reads ClickHouse frames from bytes fed in any pieces and yields each frame's decoded payload.

    ``max_frame_bytes`` bounds a frame's declared sizes (``TOO_LARGE_SIZE_COMPRESSED``), so
    at most one frame is ever buffered; ``max_total_bytes`` bounds the decoded total
    (``QUERY_IS_TOO_LARGE``, from a frame's header, before it is read whole). ``verify``
    (on by default) checks each frame's checksum; ClickHouse's
    ``http_native_compression_disable_checksumming_on_decompress`` turns it off.
    ``min_frames`` (None: no frame budget) and ``bytes_per_frame`` bound the frames a body may
    hold to one per ``bytes_per_frame`` bytes read and decoded, plus ``min_frames``.
    """

    def __init__(
        self,
        max_total_bytes: int,
        *,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        verify: bool = True,
        min_frames: int | None = MIN_FRAMES,
        bytes_per_frame: int = BYTES_PER_FRAME,
        what: str = "ClickHouse-framed data",
    ) -> None:
        self.max_total_bytes = max_total_bytes
        self.max_frame_bytes = max_frame_bytes
        self.verify = verify
        self.min_frames = min_frames
        self.bytes_per_frame = bytes_per_frame
        self.what = what
        self.frames = 0
        self.bytes_read = 0
        self.total_bytes = 0  # decoded so far
        self._buffer = bytearray()
        self._header: tuple[int, int, int] | None = None  # the current frame's, once checked
        self._zstd = zstandard.ZstdDecompressor()

    @property
    def at_frame_boundary(self) -> bool:
        """True when no part of a frame is waiting for the rest of it."""
        return not self._buffer

    def feed(self, data: bytes | memoryview) -> Iterator[bytes]:
        """Take ``data`` and yield the decoded payload of every frame it completes, in order.

        Raises:
            QueryError: for the bounds above, an unknown method (UNKNOWN_COMPRESSION_METHOD),
                a bad checksum (CHECKSUM_DOESNT_MATCH) or a payload that does not decode to
                its declared size (CANNOT_DECOMPRESS).
        """
        self.bytes_read += len(data)
        self._buffer += data
        while True:
            if self._header is None:
                if len(self._buffer) < FRAME_OVERHEAD:
                    return
                self._header = self._check_header()
            method, compressed_size, decompressed_size = self._header
            frame_end = CHECKSUM_BYTES + compressed_size
            if len(self._buffer) < frame_end:
                return
            frame = memoryview(self._buffer)[:frame_end]
            try:
                payload = self._decode(frame, method, decompressed_size)
            finally:
                frame.release()
            del self._buffer[:frame_end]
            self._header = None
            self.total_bytes += decompressed_size
            yield payload

    def finish(self) -> None:
        """Refuse data that ended inside a frame (CANNOT_DECOMPRESS)."""
        if self._buffer:
            raise QueryError(
                CANNOT_DECOMPRESS,
                f"Cannot decompress {self.what}: it ends inside a frame ({len(self._buffer)} bytes of it)",
            )

    def _check_header(self) -> tuple[int, int, int]:
        method, compressed_size, decompressed_size = _HEADER.unpack_from(self._buffer, CHECKSUM_BYTES)
        self.frames += 1
        if self.min_frames is not None:
            allowed = self.min_frames + (self.bytes_read + self.total_bytes) // self.bytes_per_frame
            if self.frames > allowed:
                raise QueryError(
                    CANNOT_DECOMPRESS,
                    f"Cannot decompress {self.what}: {self.frames} frames in {self.bytes_read} bytes are more "
                    f"than its size allows (one per {self.bytes_per_frame} bytes read and decoded, "
                    f"and {self.min_frames})",
                )
        if method not in _METHOD_NAMES:
            raise QueryError(UNKNOWN_COMPRESSION_METHOD, f"Unknown compression method byte 0x{method:02x}")
        if compressed_size > self.max_frame_bytes or decompressed_size > self.max_frame_bytes:
            raise QueryError(
                TOO_LARGE_SIZE_COMPRESSED,
                f"Too large size of a compressed block: compressed {compressed_size}, decompressed "
                f"{decompressed_size} (at most {self.max_frame_bytes}). Most likely corrupted data",
            )
        if compressed_size < HEADER_BYTES:
            raise QueryError(
                CANNOT_DECOMPRESS,
                f"Cannot decompress {self.what}: a frame declares {compressed_size} compressed and "
                f"{decompressed_size} decompressed bytes",
            )
        if self.total_bytes + decompressed_size > self.max_total_bytes:
            raise QueryError(
                QUERY_IS_TOO_LARGE,
                f"Decompressed {self.what} is larger than the limit of {self.max_total_bytes} bytes",
            )
        return method, compressed_size, decompressed_size

    def _decode(self, frame: memoryview, method: int, size: int) -> bytes:
        if self.verify:
            expected = bytes(frame[:CHECKSUM_BYTES])
            actual = checksum(frame[CHECKSUM_BYTES:])
            if actual != expected:
                raise QueryError(
                    CHECKSUM_DOESNT_MATCH,
                    f"Checksum doesn't match: corrupted data. Reference: {expected.hex()}. Actual: {actual.hex()}. "
                    f"Size of compressed block: {len(frame) - CHECKSUM_BYTES}",
                )
        payload = frame[FRAME_OVERHEAD:]
        name = _METHOD_NAMES[method]
        decoded: bytes
        try:
            if name == "lz4":
                decoded = lz4.block.decompress(payload, uncompressed_size=size)
            elif name == "zstd":
                decoded = self._decode_zstd(payload, size)
            else:
                decoded = bytes(payload)
        except (lz4.block.LZ4BlockError, zstandard.ZstdError) as exc:
            raise QueryError(CANNOT_DECOMPRESS, f"Cannot decompress {self.what}: {exc}") from exc
        if len(decoded) != size:
            raise QueryError(
                CANNOT_DECOMPRESS,
                f"Cannot decompress {self.what}: a frame decoded to {len(decoded)} bytes, its header says {size}",
            )
        return decoded

    def _decode_zstd(self, payload: memoryview, size: int) -> bytes:
        # zstandard allocates a frame's own content size, whatever max_output_size says: a frame
        # naming more than its ClickHouse header is refused before it is decoded.
        content_size = zstandard.frame_content_size(payload)
        if content_size >= 0 and content_size != size:  # -1: the frame does not say
            raise zstandard.ZstdError(f"the zstd frame declares {content_size} bytes, the block {size}")
        return self._zstd.decompress(payload, max_output_size=max(size, 1))
