"""Grafana's own client: clickhouse-go v2 over HTTP, as the analyst, runs every board query and sees its columns.

Prerequisite: Go (``make prereqs``); the checker's modules come from the Go module proxy,
pinned by dashboards/checker/go.sum.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.warehouse.client import connect
from dashboards.gocheck import CheckerRun, build_checker, checker_queries, run_checker
from tests.integration.dashboards.conftest import BoardData
from tickwave.config import Settings


@pytest.fixture(scope="module")
def checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_checker(tmp_path_factory.mktemp("checker") / "checker")


def test_checker_when_every_board_query_runs_through_clickhouse_go_then_columns_match(
    checker: Path, board_data: BoardData, tmp_path: Path
) -> None:
    queries = checker_queries(Settings(), board_data.now)

    run = run_checker(checker, board_data.settings, board_data.database, queries, tmp_path)

    assert run.returncode == 0, run.stderr + "\n".join(str(item) for item in run.outcomes if item.get("error"))
    assert [item["title"] for item in run.outcomes] == [query["title"] for query in queries]
    for query, outcome in zip(queries, run.outcomes, strict=True):
        assert [column["name"] for column in outcome["columns"]] == [column["name"] for column in query["columns"]]
        assert outcome["rows"] > 0, outcome["title"]


def test_checker_when_a_column_is_wrong_or_the_query_fails_then_exits_1_naming_it(
    checker: Path, board_data: BoardData, tmp_path: Path
) -> None:
    queries = [
        {"title": "renamed", "sql": "SELECT 1 AS value", "columns": [{"name": "other", "type": "number"}]},
        {"title": "wrong type", "sql": "SELECT 'x' AS value", "columns": [{"name": "value", "type": "time"}]},
        {"title": "refused", "sql": "SELECT * FROM file('/etc/passwd')", "columns": []},
        {"title": "fine", "sql": "SELECT now() AS time", "columns": [{"name": "time", "type": "time"}]},
    ]

    run = run_checker(checker, board_data.settings, board_data.database, queries, tmp_path)

    assert run.returncode == 1
    errors = {item["title"]: item.get("error", "") for item in run.outcomes}
    assert 'expected "other"' in errors["renamed"]
    assert "expected time" in errors["wrong type"]
    assert "READONLY" in errors["refused"] or "164" in errors["refused"]
    assert errors["fine"] == ""


def test_checker_when_columns_nest_low_cardinality_maps_tuples_then_clickhouse_go_decodes_them(
    checker: Path, board_data: BoardData, tmp_path: Path
) -> None:
    sql = (
        "SELECT toLowCardinality(toString(number % 3)) AS lc, [toLowCardinality(toString(number)), 'x'] AS lcs, "
        "map(toString(number), number) AS m, tuple(number, toString(number)) AS t, "
        "if(number % 2 = 0, NULL, number) AS n, "
        "CAST(if(number % 2 = 0, 'a, b', 'c'), 'Enum8(\\'a, b\\' = 1, \\'c\\' = 2)') AS e, "
        "toDecimal64(number / 3, 4) AS d, now64(3, 'UTC') AS ts, s.symbol AS symbol "
        "FROM numbers(1000) AS n CROSS JOIN (SELECT DISTINCT symbol FROM ticks) AS s ORDER BY number"
    )
    names = ["lc", "lcs", "m", "t", "n", "e", "d", "ts", "symbol"]
    queries = [{"title": "types", "sql": sql, "columns": [{"name": name, "type": "any"} for name in names]}]

    run = run_checker(checker, board_data.settings, board_data.database, queries, tmp_path)

    assert run.returncode == 0, run.stderr + str(run.outcomes)
    [outcome] = run.outcomes
    assert outcome["rows"] == 2000
    assert outcome["columns"][0]["type"] == "LowCardinality(String)"


COMPRESSIONS = ["lz4", "zstd", "gzip", "none"]
BATCH_ROWS = 50_000


def run_on(
    board_data: BoardData,
    checker: Path,
    queries: list[dict[str, Any]],
    workdir: Path,
    compression: str,
    **options: Any,
) -> CheckerRun:
    return run_checker(
        checker, board_data.settings, board_data.database, queries, workdir, compression=compression, **options
    )


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("as_service_user", [False, True], ids=["analyst", "service"])
def test_checker_when_clickhouse_go_compresses_its_way_then_each_user_pings_reads_and_writes(
    checker: Path, board_data: BoardData, tmp_path: Path, compression: str, as_service_user: bool
) -> None:
    # lz4 and zstd are ClickHouse's block framing: compress=1 on every request, decompress=1 on inserts.
    queries = [
        {"title": "one", "sql": "SELECT 1 AS value", "columns": [{"name": "value", "type": "number"}]},
        {
            "title": "streamed",  # ~1.5 MB of Native: streamed, more than one frame
            "sql": "SELECT number, toString(number) AS text FROM numbers(90000)",
            "columns": [{"name": "number", "type": "number"}, {"name": "text", "type": "string"}],
        },
        *checker_queries(Settings(), board_data.now)[:3],
    ]
    insert = ""
    if as_service_user:
        table = f"{board_data.database}.go_batch_{compression}"
        client = connect(board_data.settings, database=board_data.database)
        client.command(f"CREATE TABLE {table} (number UInt64, text String) ENGINE = MergeTree ORDER BY number")
        insert = f"{table}:{BATCH_ROWS}"

    run = run_on(board_data, checker, queries, tmp_path, compression, as_service_user=as_service_user, insert=insert)

    assert run.returncode == 0, run.stderr + "\n".join(str(item) for item in run.steps + run.outcomes)
    assert [outcome["rows"] for outcome in run.outcomes[:2]] == [1, 90_000]
    if as_service_user:
        landed = client.query(f"SELECT count(), sum(number), uniqExact(text) FROM {table}").result_rows
        client.close()
        assert landed == [(BATCH_ROWS, BATCH_ROWS * (BATCH_ROWS - 1) // 2, BATCH_ROWS)]


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_checker_when_a_framed_result_fails_after_streaming_began_then_clickhouse_go_reports_the_error(
    checker: Path, board_data: BoardData, tmp_path: Path, compression: str
) -> None:
    # The first block (~2.5 MB) is sent before the second one fails (one thread computes them in order):
    # the error arrives after framed data.
    sql = (
        "SELECT number, concat(toString(number), repeat('x', 30)) AS text, "
        "throwIf(number = 99000, 'the stream broke') AS broken FROM numbers(100000) SETTINGS max_threads = 1"
    )
    queries = [{"title": "broken", "sql": sql, "columns": []}]

    run = run_on(board_data, checker, queries, tmp_path, compression, as_service_user=True)

    assert run.returncode == 1
    [outcome] = run.outcomes
    assert "the stream broke" in outcome["error"], outcome
