"""ClickHouse's block compression over HTTP: compress=1 responses and decompress=1 bodies, checksums verified."""

from __future__ import annotations

import pytest

from adapters.endpoints import Endpoint
from adapters.warehouse.credentials import Credentials
from tests.integration.warehouse.http import Response, post
from tests.integration.warehouse.test_bad_input import count
from warehouse_server.compression import FRAME_OVERHEAD, FrameReader, compress_block

ROWS = b"".join(f"{index},row-{index}\n".encode() for index in range(50_000))
STREAMED = "SELECT number, concat(toString(number), repeat('x', 30)) AS text FROM numbers(200000) FORMAT TSV"


def unframed(response: Response) -> bytes:
    reader = FrameReader(1 << 30, min_frames=None)
    payload = b"".join(reader.feed(response.body))
    reader.finish()
    return payload


@pytest.mark.parametrize(
    ("params", "method_byte"),
    [({}, 0x82), ({"network_compression_method": "ZSTD"}, 0x90), ({"network_compression_method": "none"}, 0x02)],
)
@pytest.mark.parametrize("analyst", [False, True], ids=["service", "analyst"])
def test_select_when_compress_1_then_frames_decode_to_the_plain_answer(
    warehouse_endpoint: Endpoint, credentials: Credentials, params: dict[str, str], method_byte: int, analyst: bool
) -> None:
    address = warehouse_endpoint.address
    plain = post(address, credentials, STREAMED.encode(), analyst=analyst)

    framed = post(address, credentials, STREAMED.encode(), analyst=analyst, compress="1", **params)

    assert framed.status == 200, framed.body[:300]
    assert "content-encoding" not in framed.headers
    assert framed.body[16] == method_byte
    assert unframed(framed) == plain.body
    assert len(plain.body) > 5 << 20  # streamed, in more than one frame


def test_select_when_compress_1_and_the_result_is_small_then_one_frame_with_its_length(
    warehouse_endpoint: Endpoint, credentials: Credentials
) -> None:
    # Buffered to its end (wait_end_of_query): without it a result still running after 0.1 s is streamed,
    # as ClickHouse streams one, and on a busy machine even SELECT 1 can take that long.
    framed = post(warehouse_endpoint.address, credentials, b"SELECT 1", compress="1", wait_end_of_query="1")

    assert framed.status == 200
    assert int(framed.headers["content-length"]) == len(framed.body)
    assert unframed(framed) == b"1\n"


def test_select_when_compress_1_fails_after_streaming_began_then_the_exception_follows_the_frames_unframed(
    warehouse_endpoint: Endpoint, credentials: Credentials
) -> None:
    # One thread, and the failing row about 30 blocks in: the engine computes at most a few blocks ahead of
    # what the server has taken (its output queue is bounded), so the first blocks are sent before the error
    # exists. A failing row in the third block could be reached before the first was taken, on a busy machine.
    sql = "SELECT number, throwIf(number = 1900000, 'the stream broke') AS broken FROM numbers(2000000) FORMAT TSV"
    response = post(warehouse_endpoint.address, credentials, sql.encode(), compress="1", max_threads="1")

    assert response.status == 200
    tag = response.headers["x-clickhouse-exception-tag"]
    frames_end = response.body.index(b"__exception__\r\n" + tag.encode())
    reader = FrameReader(1 << 30, min_frames=None)
    rows = b"".join(reader.feed(response.body[:frames_end]))
    assert reader.at_frame_boundary and rows.count(b"\n") >= 65_000
    assert b"the stream broke" in response.body[frames_end:]


@pytest.mark.parametrize("method", ["lz4", "zstd", "none"])
def test_insert_when_decompress_1_then_every_frame_lands(
    warehouse_endpoint: Endpoint, credentials: Credentials, table: str, method: str
) -> None:
    body = b"".join(compress_block(ROWS[start : start + 100_000], method) for start in range(0, len(ROWS), 100_000))

    response = post(
        warehouse_endpoint.address, credentials, body, decompress="1", query=f"INSERT INTO {table} FORMAT CSV"
    )

    assert response.status == 200, response.body
    assert count(warehouse_endpoint.address, credentials, table) == 50_000


def test_insert_when_a_frame_checksum_does_not_match_then_40_and_nothing_lands(
    warehouse_endpoint: Endpoint, credentials: Credentials, table: str
) -> None:
    good = compress_block(ROWS[:100_000], "lz4")
    bad = bytearray(compress_block(ROWS[100_000:], "none"))
    bad[FRAME_OVERHEAD] ^= 0x01  # the first id's first digit, one bit off: still valid CSV, a wrong row

    response = post(
        warehouse_endpoint.address,
        credentials,
        good + bytes(bad),
        decompress="1",
        query=f"INSERT INTO {table} FORMAT CSV",
    )

    assert response.code == "40", response.body
    assert b"CHECKSUM_DOESNT_MATCH" in response.body
    assert count(warehouse_endpoint.address, credentials, table) == 0


def test_insert_when_checksumming_is_disabled_by_the_service_user_then_unchecked_frames_land(
    warehouse_endpoint: Endpoint, credentials: Credentials, table: str
) -> None:
    body = bytes(16) + compress_block(ROWS, "zstd")[16:]

    response = post(
        warehouse_endpoint.address,
        credentials,
        body,
        decompress="1",
        http_native_compression_disable_checksumming_on_decompress="1",
        query=f"INSERT INTO {table} FORMAT CSV",
    )

    assert response.status == 200, response.body
    assert count(warehouse_endpoint.address, credentials, table) == 50_000


def test_select_when_the_compression_method_is_unknown_then_89(
    warehouse_endpoint: Endpoint, credentials: Credentials
) -> None:
    response = post(
        warehouse_endpoint.address, credentials, b"SELECT 1", compress="1", network_compression_method="brotli"
    )

    assert response.code == "89"
