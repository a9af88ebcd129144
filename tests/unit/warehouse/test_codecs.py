from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import zlib
from collections.abc import Callable

import lz4.block
import lz4.frame
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwave.warehouse.codecs import choose_encoding, decode_body, decode_native_blocks, make_encoder
from tickwave.warehouse.protocol import CANNOT_DECOMPRESS, NOT_IMPLEMENTED, QUERY_IS_TOO_LARGE, QueryError

DATA = b"".join(f"{index},EURUSD,1.0850{index % 10}\n".encode() for index in range(30_000))
LIMIT = 1 << 26

ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "zstd": zstandard.ZstdCompressor().compress,
    "lz4": lz4.frame.compress,
    "xz": lzma.compress,
    "bz2": bz2.compress,
}


def frames(encoding: str, data: bytes, size: int) -> bytes:
    return b"".join(ENCODERS[encoding](data[start : start + size]) for start in range(0, len(data), size))


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_decode_body_when_body_holds_several_frames_then_all_are_decoded(encoding: str) -> None:
    body = frames(encoding, DATA, 50_000)

    assert decode_body(body, encoding, LIMIT) == DATA


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_decode_body_when_truncated_then_cannot_decompress(encoding: str) -> None:
    body = frames(encoding, DATA, 50_000)

    with pytest.raises(QueryError) as raised:
        decode_body(body[:-7], encoding, LIMIT)

    assert raised.value.code == CANNOT_DECOMPRESS


@pytest.mark.parametrize("encoding", ["gzip", "zstd", "lz4", "xz", "bz2"])
def test_decode_body_when_corrupt_then_cannot_decompress(encoding: str) -> None:
    body = bytearray(ENCODERS[encoding](DATA))
    for offset in range(30, len(body) - 30, 61):
        body[offset] ^= 0xA5

    with pytest.raises(QueryError) as raised:
        decode_body(bytes(body), encoding, LIMIT)

    assert raised.value.code == CANNOT_DECOMPRESS


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_decode_body_when_output_exceeds_the_bound_then_query_is_too_large(encoding: str) -> None:
    bomb = ENCODERS[encoding](b"\x00" * 5_000_000)

    with pytest.raises(QueryError) as raised:
        decode_body(bomb, encoding, 1_000_000)

    assert raised.value.code == QUERY_IS_TOO_LARGE


@pytest.mark.parametrize(
    ("encoding", "code"), [("br", NOT_IMPLEMENTED), ("snappy", NOT_IMPLEMENTED), ("rot13", NOT_IMPLEMENTED)]
)
def test_decode_body_when_encoding_is_unsupported_then_refused(encoding: str, code: int) -> None:
    with pytest.raises(QueryError) as raised:
        decode_body(b"abc", encoding, LIMIT)

    assert raised.value.code == code


def native_block(payload: bytes, method: str) -> bytes:
    if method == "lz4":
        compressed, method_byte = lz4.block.compress(payload, store_size=False), 0x82
    elif method == "zstd":
        compressed, method_byte = zstandard.ZstdCompressor().compress(payload), 0x90
    else:
        compressed, method_byte = payload, 0x02
    header = struct.pack("<BII", method_byte, len(compressed) + 9, len(payload))
    return b"\x00" * 16 + header + compressed


def test_decode_native_blocks_when_mixing_methods_then_payloads_are_joined() -> None:
    body = (
        native_block(DATA[:1000], "lz4") + native_block(DATA[1000:5000], "zstd") + native_block(DATA[5000:6000], "none")
    )

    assert decode_native_blocks(body, LIMIT) == DATA[:6000]


@pytest.mark.parametrize("cut", [5, 20, 30])
def test_decode_native_blocks_when_truncated_then_cannot_decompress(cut: int) -> None:
    body = native_block(DATA[:1000], "lz4")

    with pytest.raises(QueryError) as raised:
        decode_native_blocks(body[:-cut], LIMIT)

    assert raised.value.code == CANNOT_DECOMPRESS


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("lz4,zstd,gzip,deflate", "lz4"),
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip;q=1.0, deflate;q=0.5", "gzip"),
        ("zstd;q=0, gzip", "gzip"),
        ("br", None),
        ("", None),
    ],
)
def test_choose_encoding_when_client_accepts_some_then_fastest_accepted_wins(accept: str, chosen: str | None) -> None:
    assert choose_encoding(accept) == chosen


@settings(max_examples=30)
@given(chunks=st.lists(st.binary(max_size=5000), max_size=8), name=st.sampled_from(["lz4", "zstd", "gzip", "deflate"]))
def test_encoder_when_streaming_chunks_then_one_frame_decodes_to_their_concatenation(
    chunks: list[bytes], name: str
) -> None:
    encoder = make_encoder(name)
    body = b"".join(encoder.compress(chunk) for chunk in chunks) + encoder.finish()

    decoders: dict[str, Callable[[bytes], bytes]] = {
        "lz4": lz4.frame.decompress,
        "zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
        "gzip": gzip.decompress,
        "deflate": zlib.decompress,
    }
    assert decoders[name](body) == b"".join(chunks)
