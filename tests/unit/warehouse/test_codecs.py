from __future__ import annotations

import bz2
import gzip
import lzma
import time
import tracemalloc
import zlib
from collections.abc import Callable

import lz4.block
import lz4.frame
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse_server.compression import compress_block
from warehouse_server.http.codecs import (
    MAX_FORM_FIELDS,
    choose_encoding,
    decode_body,
    decode_frames,
    form_fields,
    make_encoder,
)
from warehouse_server.protocol import (
    BAD_ARGUMENTS,
    CANNOT_DECOMPRESS,
    CHECKSUM_DOESNT_MATCH,
    NOT_IMPLEMENTED,
    QUERY_IS_TOO_LARGE,
    QueryError,
)

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


def test_decode_frames_when_methods_are_mixed_then_payloads_are_joined() -> None:
    body = (
        compress_block(DATA[:1000], "lz4")
        + compress_block(DATA[1000:5000], "zstd")
        + compress_block(DATA[5000:], "none")
    )

    assert decode_frames(body, LIMIT) == DATA


def unchecked(frame: bytes) -> bytes:
    """The frame with its checksum zeroed, as the server took every frame before it verified them."""
    return bytes(16) + frame[16:]


def test_decode_frames_when_a_checksum_does_not_match_then_refused_before_anything_is_inserted() -> None:
    body = compress_block(DATA[:1000], "lz4") + unchecked(compress_block(DATA[1000:2000], "lz4"))

    with pytest.raises(QueryError) as raised:
        decode_frames(body, LIMIT)

    assert raised.value.code == CHECKSUM_DOESNT_MATCH


def test_decode_frames_when_checksumming_is_disabled_then_unchecked_frames_pass() -> None:
    body = unchecked(compress_block(DATA[:1000], "zstd"))

    assert decode_frames(body, LIMIT, verify=False) == DATA[:1000]


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


MIB = 1 << 20
BOMB_LIMIT = 4 * MIB


def streamed(compressor: zlib._Compress | lzma.LZMACompressor | bz2.BZ2Compressor, mib: int) -> bytes:
    zeros = bytes(MIB)
    return b"".join(compressor.compress(zeros) for _ in range(mib)) + compressor.flush()


BOMBS: dict[str, Callable[[], bytes]] = {
    "gzip": lambda: streamed(zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS), 64),
    "deflate": lambda: streamed(zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS), 64),
    "zstd": lambda: zstandard.ZstdCompressor().compress(bytes(256 * MIB)),
    "lz4": lambda: lz4.frame.compress(bytes(64 * MIB)),
    "xz": lambda: streamed(lzma.LZMACompressor(preset=0), 16),
    "bz2": lambda: streamed(bz2.BZ2Compressor(1), 16),
}


def peak_bytes(action: Callable[[], object]) -> tuple[int, BaseException | None]:
    """Run ``action`` and return the peak of Python-allocated memory during it, and what it raised."""
    tracemalloc.start()
    raised: BaseException | None = None
    try:
        action()
    except QueryError as exc:
        raised = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, raised


@pytest.mark.parametrize("encoding", sorted(BOMBS))
def test_decode_body_when_a_bomb_expands_past_the_limit_then_refused_before_it_is_decoded(encoding: str) -> None:
    body = BOMBS[encoding]()

    peak, raised = peak_bytes(lambda: decode_body(body, encoding, BOMB_LIMIT))

    assert isinstance(raised, QueryError) and raised.code == QUERY_IS_TOO_LARGE
    # The limit plus one decoder step (and xz's own window); before, a 8 KB zstd body reached 255 MiB.
    assert peak < BOMB_LIMIT + 12 * MIB, f"{encoding}: peak {peak / MIB:.1f} MiB"


def form(*parts: bytes) -> bytes:
    return b"".join(b"--b\r\n" + part + b"\r\n" for part in parts) + b"--b--\r\n"


def field(name: str, value: str, extra: bytes = b"") -> bytes:
    return f'Content-Disposition: form-data; name="{name}"\r\n'.encode() + extra + b"\r\n" + value.encode()


def test_form_fields_when_clickhouse_connect_encodes_a_form_then_every_field_is_read() -> None:
    body = form(field("query", "SELECT {x:String}"), field("param_x", "a\r\nb -- c"), field("empty", ""))

    assert form_fields(body, 'multipart/form-data; boundary="b"') == (
        {"query": "SELECT {x:String}", "param_x": "a\r\nb -- c", "empty": ""},
        {},
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (form(*(field(f"p{index}", "x") for index in range(MAX_FORM_FIELDS + 1))), QUERY_IS_TOO_LARGE),
        (form(field("q", "x", b"Content-Type: text/plain" + b"(" * 50_000 + b"\r\n")), BAD_ARGUMENTS),
        (form(field("q", "x", b"X-Pad: " + b"a" * 10_000 + b"\r\n")), BAD_ARGUMENTS),
        (form(field("q", "x", b"Content-Type: multipart/mixed; boundary=c\r\n")), BAD_ARGUMENTS),
        (b"--b\r\n" + field("q", "never closed"), BAD_ARGUMENTS),
    ],
    ids=["too-many-fields", "nested-comments", "long-headers", "nested-form", "unclosed"],
)
def test_form_fields_when_a_form_is_crafted_then_refused_quickly(body: bytes, code: int) -> None:
    started = time.perf_counter()
    with pytest.raises(QueryError) as raised:
        form_fields(body, "multipart/form-data; boundary=b")

    assert raised.value.code == code
    assert time.perf_counter() - started < 0.5  # the e-mail parser took seconds, or recursed without bound


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_decode_body_when_a_body_holds_only_empty_frames_then_refused_at_once(encoding: str) -> None:
    empty = ENCODERS[encoding](b"")
    body = empty * (1_000_000 // len(empty))  # 1 MB: 50,000 gzip members cost seconds of CPU unbounded

    started = time.perf_counter()
    with pytest.raises(QueryError) as refused:
        decode_body(body, encoding, LIMIT)

    assert refused.value.code == CANNOT_DECOMPRESS
    assert "frames" in refused.value.message
    assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_decode_body_when_small_frames_of_compressible_blocks_then_every_one_is_decoded(encoding: str) -> None:
    blocks = [bytes(64 << 10) for _ in range(200)]  # a frame per block, each a few hundred bytes compressed
    body = b"".join(ENCODERS[encoding](block) for block in blocks)

    assert decode_body(body, encoding, LIMIT) == b"".join(blocks)


def test_decode_body_when_zstd_frames_follow_each_other_then_they_share_one_decoder_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contexts: list[zstandard.ZstdDecompressor] = []
    original = zstandard.ZstdDecompressor

    def counted() -> zstandard.ZstdDecompressor:
        contexts.append(original())
        return contexts[-1]

    monkeypatch.setattr(zstandard, "ZstdDecompressor", counted)
    body = frames("zstd", DATA, 16 << 10)  # a context per frame cost ~80 us, the frame itself ~1 us

    decoded = decode_body(body, "zstd", LIMIT)

    assert decoded == DATA
    assert len(contexts) == 1
