"""Bad input never half-lands: malformed SQL, broken compressed bodies, oversized bodies, unknown formats."""

from __future__ import annotations

import gzip
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import lz4.frame
import pytest
import zstandard

from adapters.endpoints import Endpoint
from adapters.warehouse.credentials import Credentials, resolve_credentials
from tests.integration.warehouse.http import post
from tests.plugins.warehouse import start_warehouse
from tickwave.config import Settings

ROWS = b"".join(f"{index},row-{index}\n".encode() for index in range(20_000))


@pytest.fixture(scope="module")
def credentials(warehouse_settings: Settings) -> Credentials:
    return resolve_credentials(warehouse_settings)


def count(address: str, credentials: Credentials, table: str) -> int:
    return int(post(address, credentials, f"SELECT count() FROM {table}".encode()).body)


def insert(
    address: str, credentials: Credentials, table: str, body: bytes, encoding: str = ""
) -> tuple[int, str | None]:
    headers = {"Content-Encoding": encoding} if encoding else {}
    response = post(address, credentials, body, headers=headers, query=f"INSERT INTO {table} FORMAT CSV")
    return response.status, response.code


def test_insert_when_lz4_body_holds_several_frames_then_every_frame_lands(
    warehouse_endpoint: Endpoint, credentials: Credentials, table: str
) -> None:
    frames = b"".join(lz4.frame.compress(ROWS[start : start + 65_536]) for start in range(0, len(ROWS), 65_536))

    status, _ = insert(warehouse_endpoint.address, credentials, table, frames, "lz4")

    assert status == 200
    assert count(warehouse_endpoint.address, credentials, table) == 20_000


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", lambda data: gzip.compress(data)[:-4]),
        ("gzip", lambda data: gzip.compress(data)[:-40]),
        ("deflate", lambda data: zlib.compress(data)[:-10]),
        ("zstd", lambda data: zstandard.ZstdCompressor().compress(data)[:-5]),
        ("lz4", lambda data: lz4.frame.compress(data)[:-5]),
        ("lz4", lambda data: lz4.frame.compress(data[:100_000]) + lz4.frame.compress(data[100_000:])[:-3]),
    ],
    ids=["gzip-trailer-cut", "gzip-data-cut", "deflate-cut", "zstd-cut", "lz4-cut", "lz4-second-frame-cut"],
)
def test_insert_when_compressed_body_is_truncated_then_271_and_nothing_lands(
    warehouse_endpoint: Endpoint, credentials: Credentials, table: str, encoding: str, compress: object
) -> None:
    body = compress(ROWS)  # type: ignore[operator]

    status, code = insert(warehouse_endpoint.address, credentials, table, body, encoding)

    assert (status, code) == (500, "271")
    assert count(warehouse_endpoint.address, credentials, table) == 0


@pytest.mark.parametrize("encoding", ["gzip", "zstd", "lz4"])
def test_insert_when_compressed_body_is_corrupt_then_271_and_nothing_lands(
    warehouse_endpoint: Endpoint, credentials: Credentials, table: str, encoding: str
) -> None:
    compressors = {"gzip": gzip.compress, "zstd": zstandard.ZstdCompressor().compress, "lz4": lz4.frame.compress}
    body = bytearray(compressors[encoding](ROWS))
    for offset in range(40, len(body) - 40, 97):
        body[offset] ^= 0x5A

    status, code = insert(warehouse_endpoint.address, credentials, table, bytes(body), encoding)

    assert (status, code) == (500, "271")
    assert count(warehouse_endpoint.address, credentials, table) == 0


def test_insert_when_a_row_is_malformed_then_error_and_nothing_lands(
    warehouse_endpoint: Endpoint, credentials: Credentials, table: str
) -> None:
    status, code = insert(warehouse_endpoint.address, credentials, table, ROWS + b"not-a-number,x\n" + ROWS)

    assert (status, code) == (400, "27")
    assert count(warehouse_endpoint.address, credentials, table) == 0


def test_insert_when_format_is_unknown_then_73(
    warehouse_endpoint: Endpoint, credentials: Credentials, table: str
) -> None:
    response = post(warehouse_endpoint.address, credentials, ROWS, query=f"INSERT INTO {table} FORMAT NoSuchFormat")

    assert (response.status, response.code) == (404, "73")


def test_insert_when_content_encoding_is_unknown_then_refused(
    warehouse_endpoint: Endpoint, credentials: Credentials, table: str
) -> None:
    status, code = insert(warehouse_endpoint.address, credentials, table, ROWS, "snappy")

    assert (status, code) == (501, "48")
    assert count(warehouse_endpoint.address, credentials, table) == 0


@pytest.fixture(scope="module")
def small_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Endpoint, Credentials]]:
    state_dir: Path = tmp_path_factory.mktemp("small-warehouse")
    supervisor, service, endpoint = start_warehouse(state_dir, max_request_mb=1)
    try:
        yield endpoint, resolve_credentials(service.settings)
    finally:
        supervisor.stop(service)


def test_body_when_larger_than_limit_then_413_and_nothing_lands(small_warehouse: tuple[Endpoint, Credentials]) -> None:
    endpoint, credentials = small_warehouse
    post(
        endpoint.address, credentials, b"CREATE TABLE big_body (id UInt64, label String) ENGINE = MergeTree ORDER BY id"
    )
    oversized = ROWS * 6  # ~1.9 MB with a 1 MB limit

    declared = insert(endpoint.address, credentials, "big_body", oversized)
    chunked = post(
        endpoint.address,
        credentials,
        iter([oversized[i : i + 65_536] for i in range(0, len(oversized), 65_536)]),  # type: ignore[arg-type]
        query="INSERT INTO big_body FORMAT CSV",
    )
    bomb = insert(endpoint.address, credentials, "big_body", gzip.compress(b"1,x\n" * 2_000_000), "gzip")
    within = insert(endpoint.address, credentials, "big_body", ROWS)

    assert declared == (413, "229")
    assert (chunked.status, chunked.code) == (413, "229")
    assert bomb == (413, "229")  # 8 MB of rows from a ~30 kB body: the decoded bound (4x) applies
    assert within == (200, None)
    assert count(endpoint.address, credentials, "big_body") == 20_000


def test_body_when_curl_waits_for_100_continue_then_refused_before_upload(
    small_warehouse: tuple[Endpoint, Credentials], tmp_path: Path
) -> None:
    endpoint, credentials = small_warehouse
    body = tmp_path / "rows.csv"
    body.write_bytes(ROWS * 6)
    user = f"{credentials.user}:{credentials.password.get_secret_value()}"

    result = subprocess.run(
        [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_upload}",
            "-u",
            user,
            "--data-binary",
            f"@{body}",
            f"http://{endpoint.address}/?query=INSERT%20INTO%20big_body%20FORMAT%20CSV",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    status, uploaded = result.stdout.split()

    assert status == "413"
    assert int(float(uploaded)) < len(ROWS * 6)  # curl's Expect: 100-continue was answered before the body
