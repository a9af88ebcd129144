from __future__ import annotations

import struct
import time

import lz4.block
import pytest
import zstandard

from tests.unit.warehouse.test_codecs import peak_bytes
from warehouse_server.compression import (
    CHECKSUM_BYTES,
    FRAME_OVERHEAD,
    FrameReader,
    checksum,
    compress_block,
)
from warehouse_server.protocol import (
    CANNOT_DECOMPRESS,
    CHECKSUM_DOESNT_MATCH,
    QUERY_IS_TOO_LARGE,
    TOO_LARGE_SIZE_COMPRESSED,
    UNKNOWN_COMPRESSION_METHOD,
    QueryError,
)

MIB = 1 << 20
LIMIT = 64 * MIB
DATA = b"".join(f"{index},EURUSD,1.0850{index % 10}\n".encode() for index in range(30_000))
METHODS = ["lz4", "zstd", "none"]


def read_all(body: bytes, limit: int = LIMIT, piece: int | None = None, **options: object) -> bytes:
    reader = FrameReader(limit, **options)  # type: ignore[arg-type]
    step = piece or max(len(body), 1)
    decoded = b"".join(
        payload for start in range(0, len(body), step) for payload in reader.feed(body[start : start + step])
    )
    reader.finish()
    return decoded


def frame(method_byte: int, payload: bytes, decompressed_size: int) -> bytes:
    """A frame with a valid checksum around whatever payload and sizes a test chooses."""
    header = struct.pack("<BII", method_byte, 9 + len(payload), decompressed_size)
    return checksum(header + payload) + header + payload


def test_compress_block_when_none_then_the_frame_is_the_one_clickhouse_clients_write() -> None:
    # The first 25 bytes of clickhouse-go's (ch-go's) frame of this text: checksum words, method, sizes.
    frame_bytes = compress_block(b"Hello!\n" * 25, "none")

    assert frame_bytes[:FRAME_OVERHEAD].hex() == "fced07b8c559e98c1661170f6c5272df02b8000000af000000"
    assert frame_bytes[FRAME_OVERHEAD:] == b"Hello!\n" * 25


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("piece", [None, 1, 7, 4096])
def test_frame_reader_when_frames_arrive_in_any_pieces_then_their_payloads_join_to_the_data(
    method: str, piece: int | None
) -> None:
    chunks = [DATA[:1000], b"", DATA[1000:70_000], DATA[70_000:]]
    body = b"".join(compress_block(chunk, method) for chunk in chunks)

    assert read_all(body, piece=piece) == DATA


def test_frame_reader_when_methods_are_mixed_then_each_frame_is_decoded_by_its_own() -> None:
    body = (
        compress_block(DATA[:1000], "lz4")
        + compress_block(DATA[1000:5000], "zstd")
        + compress_block(DATA[5000:6000], "none")
    )

    assert read_all(body) == DATA[:6000]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("at", [CHECKSUM_BYTES - 1, FRAME_OVERHEAD - 1, FRAME_OVERHEAD + 3])
def test_frame_reader_when_one_bit_changes_then_checksum_doesnt_match(method: str, at: int) -> None:
    body = bytearray(compress_block(DATA[:5000], method))
    body[at] ^= 0x01

    with pytest.raises(QueryError) as refused:
        read_all(bytes(body))

    assert refused.value.code == (UNKNOWN_COMPRESSION_METHOD if at == CHECKSUM_BYTES else CHECKSUM_DOESNT_MATCH)


def test_frame_reader_when_checksums_are_not_verified_then_a_changed_payload_passes() -> None:
    body = bytearray(compress_block(DATA[:5000], "none"))
    body[FRAME_OVERHEAD] ^= 0x01

    assert read_all(bytes(body), verify=False)[1:] == DATA[1:5000]


def test_frame_reader_when_the_method_byte_is_unknown_then_unknown_compression_method() -> None:
    with pytest.raises(QueryError) as refused:
        read_all(frame(0x91, b"abc", 3))

    assert refused.value.code == UNKNOWN_COMPRESSION_METHOD


@pytest.mark.parametrize("cut", [1, 9, 30])
def test_frame_reader_when_data_ends_inside_a_frame_then_cannot_decompress(cut: int) -> None:
    body = compress_block(DATA[:1000], "lz4")

    with pytest.raises(QueryError) as refused:
        read_all(body[:-cut])

    assert refused.value.code == CANNOT_DECOMPRESS


def test_frame_reader_when_a_frame_declares_4_gib_then_refused_from_its_header_alone() -> None:
    header_only = b"\x00" * CHECKSUM_BYTES + struct.pack("<BII", 0x82, 9 + 16, 0xFFFFFFFF)
    reader = FrameReader(LIMIT)

    peak, raised = peak_bytes(lambda: list(reader.feed(header_only)))

    assert isinstance(raised, QueryError) and raised.code == TOO_LARGE_SIZE_COMPRESSED
    assert peak < MIB


def test_frame_reader_when_a_frame_expands_past_the_total_then_refused_before_its_payload_arrives() -> None:
    payload = lz4.block.compress(bytes(64 * MIB), store_size=False)
    body = frame(0x82, payload, 64 * MIB)
    reader = FrameReader(8 * MIB)

    peak, raised = peak_bytes(lambda: list(reader.feed(body[:FRAME_OVERHEAD])))

    assert isinstance(raised, QueryError) and raised.code == QUERY_IS_TOO_LARGE
    assert peak < MIB


def test_frame_reader_when_a_zstd_frame_names_more_than_its_block_then_refused_before_decoding() -> None:
    # A 300 KB ClickHouse block whose zstd frame holds 512 MiB: zstandard allocates a frame's own size.
    payload = zstandard.ZstdCompressor(level=1).compress(bytes(512 * MIB))
    body = frame(0x90, payload, 300_000)

    started = time.perf_counter()
    peak, raised = peak_bytes(lambda: read_all(body, limit=8 * MIB))

    assert isinstance(raised, QueryError) and raised.code == CANNOT_DECOMPRESS
    assert peak < 4 * MIB, f"peak {peak / MIB:.1f} MiB"
    assert time.perf_counter() - started < 0.1


def test_frame_reader_when_an_lz4_payload_is_corrupt_under_a_valid_checksum_then_cannot_decompress() -> None:
    with pytest.raises(QueryError) as refused:
        read_all(frame(0x82, b"\xff" * 40, 1000))

    assert refused.value.code == CANNOT_DECOMPRESS


def test_frame_reader_when_a_none_frame_sizes_disagree_then_cannot_decompress() -> None:
    with pytest.raises(QueryError) as refused:
        read_all(frame(0x02, b"abcdef", 3))

    assert refused.value.code == CANNOT_DECOMPRESS


@pytest.mark.parametrize("method", METHODS)
def test_frame_reader_when_a_body_holds_only_empty_frames_then_refused_at_once(method: str) -> None:
    empty = compress_block(b"", method)
    body = empty * (1_000_000 // len(empty))  # 1 MB of ~40,000 frames: each one's checksum and set-up is work

    started = time.perf_counter()
    with pytest.raises(QueryError) as refused:
        read_all(body)

    assert refused.value.code == CANNOT_DECOMPRESS
    assert "frames" in refused.value.message
    assert time.perf_counter() - started < 0.05


def test_frame_reader_when_no_frame_budget_then_many_small_frames_pass() -> None:
    body = b"".join(compress_block(DATA[start : start + 10], "lz4") for start in range(0, 20_000, 10))

    assert read_all(body, min_frames=None) == DATA[:20_000]


def test_compress_block_when_the_method_is_unknown_then_value_error() -> None:
    with pytest.raises(ValueError, match="lz4"):
        compress_block(b"x", "gzip")
