"""Requests that try to make the warehouse do unbounded work, and how to measure what they cost it.

Each bomb is a small body that expands (or declares it will expand) far past the
read-only user's limits. :func:`footprint` reads the server's resident memory from
``/proc/<pid>/status`` around one request: before, the peak during it (``VmHWM`` after
resetting it through ``clear_refs``) and 0.3 s after. Shared by the regression tests and
``bench/warehouse.py``.
"""

from __future__ import annotations

import dataclasses
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import lz4.block
import lz4.frame
import zstandard

MIB = 1 << 20
T = TypeVar("T")


def memory_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@dataclasses.dataclass(frozen=True)
class Footprint:
    before_mib: float
    peak_mib: float
    settled_mib: float


def footprint(pid: int, request: Callable[[], T], settle_s: float = 0.3) -> tuple[T, Footprint]:
    """Send ``request`` and return the server's RSS before, at its peak during it, and ``settle_s`` after."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM, the peak RSS, to the current RSS
    before = memory_mib(pid, "VmRSS")
    reply = request()
    peak = memory_mib(pid, "VmHWM")
    time.sleep(settle_s)
    return reply, Footprint(before, peak - before, memory_mib(pid, "VmRSS") - before)


def streamed_gzip(mib: int) -> bytes:
    compressor, zeros = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS), bytes(MIB)
    return b"".join(compressor.compress(zeros) for _ in range(mib)) + compressor.flush()


def native_block(method: int, payload: bytes, declared: int) -> bytes:
    return b"\x00" * 16 + struct.pack("<BII", method, len(payload) + 9, declared) + payload


BOMBS: dict[str, tuple[Callable[[], bytes], dict[str, str], dict[str, str], str]] = {
    # name: (body, headers, params, the refusal's code)
    "gzip": (lambda: streamed_gzip(256), {"Content-Encoding": "gzip"}, {}, "229"),
    "zstd": (lambda: zstandard.ZstdCompressor().compress(bytes(1024 * MIB)), {"Content-Encoding": "zstd"}, {}, "229"),
    "lz4": (lambda: lz4.frame.compress(bytes(200 * MIB)), {"Content-Encoding": "lz4"}, {}, "229"),
    "block declaring 4 GiB": (lambda: native_block(0x82, bytes(16), 0xFFFFFFFF), {}, {"decompress": "1"}, "246"),
    "block expanding to 200 MiB": (
        lambda: native_block(0x82, lz4.block.compress(bytes(200 * MIB), store_size=False), 200 * MIB),
        {},
        {"decompress": "1"},
        "229",
    ),
    "multipart": (
        lambda: (
            b"".join(b'--b\r\nContent-Disposition: form-data; name="p%d"\r\n\r\nx\r\n' % i for i in range(5000))
            + b"--b--\r\n"
        ),
        {"Content-Type": "multipart/form-data; boundary=b"},
        {},
        "229",
    ),
    "8 MiB of SQL": (lambda: zlib.compress(b" " * 8 * MIB), {"Content-Encoding": "deflate"}, {}, "62"),
}
