from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.warehouse.migrate import split_statements
from tickwave.warehouse.sqltext import tokens
from warehouse_server.query.routing import analyze, removes_database, without_format

LIMIT = 262_144


@pytest.mark.parametrize(
    ("query", "statement", "input_format", "data"),
    [
        (b"INSERT INTO t (a, b) FORMAT Native\n\x0a\x01abc", "INSERT INTO t (a, b)", "Native", b"\x0a\x01abc"),
        (b"insert into `db`.`t` format CSV 1,2\n", "insert into `db`.`t`", "CSV", b"1,2\n"),
        (b"INSERT INTO t FORMAT CSV\r\n1,2\n", "INSERT INTO t", "CSV", b"1,2\n"),
        (b"INSERT INTO t FORMAT TSV  \t\n\n1\n", "INSERT INTO t", "TSV", b"\n1\n"),
        (b"INSERT INTO t VALUES (1, 'FORMAT x')", "INSERT INTO t", "Values", b" (1, 'FORMAT x')"),
        (
            b"INSERT INTO t SETTINGS async_insert=0 FORMAT JSONEachRow\n{}",
            "INSERT INTO t SETTINGS async_insert=0",
            "JSONEachRow",
            b"{}",
        ),
        (
            b"INSERT INTO t SELECT * FROM input('a UInt8') FORMAT CSV\n1\n",
            "INSERT INTO t SELECT * FROM input('a UInt8')",
            "CSV",
            b"1\n",
        ),
        (b"INSERT INTO values (values) FORMAT Native\n\x01", "INSERT INTO values (values)", "Native", b"\x01"),
        (b"INSERT INTO `db`.values VALUES (1)", "INSERT INTO `db`.values", "Values", b" (1)"),
        (b"INSERT INTO TABLE values values (2)", "INSERT INTO TABLE values", "Values", b" (2)"),
        (
            b"/* lead */ INSERT INTO t -- note FORMAT X\n FORMAT RowBinary\n\xff\xfe",
            "/* lead */ INSERT INTO t -- note FORMAT X",
            "RowBinary",
            b"\xff\xfe",
        ),
    ],
)
def test_analyze_when_insert_carries_data_then_statement_format_and_offset_are_exact(
    query: bytes, statement: str, input_format: str, data: bytes
) -> None:
    result = analyze(query, LIMIT)

    assert result.keyword == "INSERT"
    assert result.insert is not None
    assert (result.insert.statement, result.insert.input_format) == (statement, input_format)
    assert query[result.insert.data_offset :] == data


@pytest.mark.parametrize(
    "query", [b"INSERT INTO t SELECT * FROM values('a UInt8', 1)", b"INSERT INTO t FORMAT", b"INSERT INTO t SELECT 1"]
)
def test_analyze_when_insert_has_no_inline_data_then_no_split(query: bytes) -> None:
    assert analyze(query, LIMIT).insert is None


@pytest.mark.parametrize(
    ("query", "keyword", "output_format"),
    [
        (b"SELECT 1", "SELECT", None),
        (b"select 'FORMAT JSON' FORMAT JSONEachRow", "SELECT", "JSONEachRow"),
        (b"SELECT (SELECT 1 FORMAT X) FORMAT `CSV` SETTINGS a = 1", "SELECT", "CSV"),
        (b"  -- comment\n/* c */ WITH 1 AS x SELECT x FORMAT Native", "WITH", "Native"),
        (b"(SELECT 1) UNION ALL (SELECT 2)", "SELECT", None),
        (b"SHOW TABLES FORMAT JSON", "SHOW", "JSON"),
        (b"", "", None),
    ],
)
def test_analyze_when_query_names_a_format_then_the_top_level_one_is_found(
    query: bytes, keyword: str, output_format: str | None
) -> None:
    result = analyze(query, LIMIT)

    assert (result.keyword, result.output_format, result.insert) == (keyword, output_format, None)


def test_analyze_when_format_lies_beyond_the_sql_limit_then_not_treated_as_insert_data() -> None:
    query = b"INSERT INTO t " + b" " * 100 + b"FORMAT CSV\n1\n"

    assert analyze(query, 50).insert is None


@given(st.binary(max_size=400))
def test_analyze_when_given_arbitrary_bytes_then_never_raises_and_offsets_stay_in_range(raw: bytes) -> None:
    for query in (raw, b"INSERT INTO t FORMAT CSV\n" + raw, b"SELECT " + raw):
        result = analyze(query, LIMIT)
        if result.insert is not None:
            assert 0 <= result.insert.data_offset <= len(query)


@given(st.binary(max_size=300))
def test_analyze_when_binary_data_follows_format_then_it_is_returned_untouched(data: bytes) -> None:
    query = b"INSERT INTO t FORMAT RowBinary\n" + data

    result = analyze(query, LIMIT)

    assert result.insert is not None
    assert query[result.insert.data_offset :] == data


def test_split_statements_when_semicolons_hide_in_strings_and_comments_then_ignored() -> None:
    sql = "CREATE TABLE a (x String DEFAULT ';');\n-- done; really\nCREATE TABLE b (y UInt8); /* ; */ ;"

    assert split_statements(sql) == [
        "CREATE TABLE a (x String DEFAULT ';')",
        "-- done; really\nCREATE TABLE b (y UInt8)",
    ]


SQL_LIMIT = 262_144  # ClickHouse's max_query_size


@pytest.mark.parametrize(
    "crafted",
    [
        b"SELECT " + b"/*x" * (SQL_LIMIT // 3),  # comments that never close
        b"SELECT " + b"'\\" * (SQL_LIMIT // 2),  # strings that never close, escapes eating each quote
        b"SELECT " + b"'a''" * (SQL_LIMIT // 4),
        b"SELECT " + b'"a\\' * (SQL_LIMIT // 3),
        b"SELECT " + b"`a" * (SQL_LIMIT // 2),
    ],
    ids=["comment", "string", "doubled-quote", "quoted-name", "backquote"],
)
def test_analyze_when_delimiters_never_close_then_the_lexer_stays_linear(crafted: bytes) -> None:
    # Scanning to the end of the text again for each unclosed delimiter makes 256 KiB of "/*x" take minutes.
    # CPU time, not wall time: the bound holds on a machine busy with other work.
    started = time.process_time()

    statement = analyze(crafted[:SQL_LIMIT], SQL_LIMIT)

    assert statement.keyword == "SELECT"
    assert time.process_time() - started < 1.0  # linear: ~0.01-0.15 s here; quadratic takes minutes


def test_analyze_when_a_string_or_comment_is_unclosed_then_the_rest_is_inside_it() -> None:
    assert analyze(b"SELECT '/* FORMAT JSON", SQL_LIMIT).output_format is None
    assert analyze(b"SELECT 1 /* FORMAT JSON", SQL_LIMIT).output_format is None
    assert analyze(b"SELECT 1 FORMAT JSON /* x", SQL_LIMIT).output_format == "JSON"


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1\n FORMAT Native", "SELECT 1\n "),
        (
            "SELECT 'FORMAT x' AS f FORMAT JSON SETTINGS max_threads = 1",
            "SELECT 'FORMAT x' AS f  SETTINGS max_threads = 1",
        ),
        ("SELECT (SELECT 1 FORMAT TSV)", "SELECT (SELECT 1 FORMAT TSV)"),
        ("SELECT 1", "SELECT 1"),
    ],
)
def test_without_format_when_a_top_level_clause_then_only_it_is_removed(sql: str, expected: str) -> None:
    assert without_format(sql) == expected


@pytest.mark.parametrize(
    ("sql", "keyword"),
    [
        (b"WITH insert AS (SELECT 13 AS n) SELECT * FROM insert", "WITH"),
        (b"WITH 13 AS insert SELECT insert", "WITH"),
        (b"WITH {SELECT:Int32} AS value INSERT INTO t (s) FORMAT TabSeparated\n1", "INSERT"),
        (b"WITH 1 AS y INSERT INTO t SELECT y", "INSERT"),
    ],
)
def test_analyze_when_with_names_insert_or_select_otherwise_then_the_statement_decides(
    sql: bytes, keyword: str
) -> None:
    assert analyze(sql, 1_000).keyword == keyword


def test_analyze_when_a_heredoc_holds_quotes_and_binary_then_the_format_is_still_found() -> None:
    sql = b"SELECT movie FROM format(Parquet, $parquet$PAR1'\x15\"`--\x00PAR1$parquet$) ORDER BY movie\n FORMAT Native"

    assert analyze(sql, 1_000).output_format == "Native"
    assert [token.kind for token in tokens("SELECT $$a'b$$ FORMAT JSON")] == ["word", "string", "word", "word"]


@pytest.mark.parametrize("name", ["id$x", "$x", "a$$b", "$x$", "foo$x$bar"])
def test_analyze_when_a_parameter_name_holds_dollars_then_no_heredoc_starts(name: str) -> None:
    sql = f"SELECT {{{name}:Int32}} AS v\n FORMAT Native".encode()

    assert analyze(sql, 1_000).output_format == "Native"


@pytest.mark.parametrize(
    ("sql", "is_removal"),
    [
        ('DROP DATABASE IF EXISTS "default"', True),
        ("/* note */ drop database `default` SYNC", True),
        ("DETACH DATABASE default PERMANENTLY", True),
        ("RENAME DATABASE default TO kept", True),
        ("DROP DATABASE defaults", False),
        ("DROP TABLE default.t", False),
        ("DROP DATABASE IF EXISTS tickwave", False),
        ("SELECT 'DROP DATABASE default'", False),
    ],
)
def test_removes_database_when_a_statement_names_a_database_then_only_its_removal_counts(
    sql: str, is_removal: bool
) -> None:
    assert removes_database(sql, "default") is is_removal
