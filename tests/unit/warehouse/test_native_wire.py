"""The native protocol's pieces without a server: client blocks read back from their framing, packets per revision."""

from __future__ import annotations

import chdb
import pytest

from warehouse_server.native import wire
from warehouse_server.native.inserts import header_columns, insert_target
from warehouse_server.native.server import unquoted_parameter
from warehouse_server.protocol import NOT_IMPLEMENTED, QueryError
from warehouse_server.query.nativeframe import BLOCK_INFO, TruncatedBlockError, reframe_native, unframe_block

EXPRESSIONS = [
    "toString(number)",
    "toLowCardinality(toString(number % 3))",
    "[toLowCardinality(toString(number)), 'x']",
    "map(toString(number), number)",
    "if(number % 2 = 0, NULL, toString(number))",
    "toDecimal64(number / 3, 4)",
    "now64(3, 'UTC') + number",
    "CAST(multiIf(number % 3 = 0, NULL, number % 3 = 1, toString(number), number), 'Variant(String, UInt64)')",
    "CAST(if(number % 2 = 0, [number], toLowCardinality(toString(number))), 'Dynamic')",
    '(\'{"a":\' || toString(number) || \',"b":[1, "x"]}\')::JSON(max_dynamic_paths=1)',
]


def native(sql: str) -> bytes:
    return bytes(chdb.query(sql, "Native").bytes())


@pytest.mark.parametrize("revision", [0, 54405, 54460])
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_unframe_when_a_client_frames_a_block_for_its_revision_then_the_engine_block_comes_back(
    expression: str, revision: int
) -> None:
    block = native(f"SELECT number AS n, {expression} AS v FROM numbers(7)")
    framed = reframe_native(block, revision)

    unframed = unframe_block(framed + b"next packet", revision)

    assert unframed.block == block
    assert unframed.end == len(framed)
    assert unframed.rows == 7
    assert [name for name, _ in unframed.columns] == ["n", "v"]


@pytest.mark.parametrize(
    "expression",
    [
        "CAST(if(number % 2 = 0, [number], toLowCardinality(toString(number))), 'Dynamic')",
        '(\'{"a":\' || toString(number) || \',"c":[1, "x"]}\')::JSON(b LowCardinality(String))',
    ],
)
def test_unframe_when_clickhouse_go_sends_a_flattened_dynamic_then_the_engine_block_comes_back(expression: str) -> None:
    # clickhouse-go inserts Dynamic and JSON columns in the flattened serialization.
    block = native(
        f"SELECT number AS n, {expression} AS v FROM numbers(7)"
        " SETTINGS output_format_native_use_flattened_dynamic_and_json_serialization = 1"
    )

    unframed = unframe_block(reframe_native(block, 54460) + b"next packet", 54460)

    assert unframed.block == block
    assert unframed.rows == 7


def test_unframe_when_a_client_names_tuple_elements_in_double_quotes_then_the_walk_goes_past_them() -> None:
    # clickhouse-go's Dynamic tests write Tuple("0" Int64); the engine writes the same names in backticks.
    block = native(
        "SELECT CAST(CAST((number, 'x'), 'Tuple(\"0\" Int64, \"a b\" String)'), 'Dynamic') AS d, 'end' AS tail"
        " FROM numbers(2) SETTINGS output_format_native_use_flattened_dynamic_and_json_serialization = 1"
    ).replace(b"Tuple(`0` Int64, `a b` String)", b'Tuple("0" Int64, "a b" String)')
    assert b'"a b"' in block

    unframed = unframe_block(reframe_native(block, 54460), 54460)

    assert unframed.block == block
    assert unframed.columns[1] == ("tail", "String")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT number, toString(number), [number] FROM numbers(20)",
        "SELECT CAST(if(number % 2 = 0, toString(number), [number]), 'Dynamic'),"
        " ('{\"a\":' || toString(number) || '}')::JSON FROM numbers(3)",
    ],
)
def test_unframe_when_the_block_is_cut_anywhere_then_more_is_asked_for(sql: str) -> None:
    framed = reframe_native(native(sql), 54460)

    for end in range(len(framed)):
        with pytest.raises(TruncatedBlockError):
            unframe_block(framed[:end], 54460)


def test_unframe_when_a_column_has_a_custom_serialization_then_refused() -> None:
    block = BLOCK_INFO + b"\x01\x01\x01a\x05UInt8\x01\x07"

    with pytest.raises(QueryError) as raised:
        unframe_block(block, 54460)

    assert raised.value.code == NOT_IMPLEMENTED


def test_unframe_when_a_block_declares_too_many_columns_then_refused_before_reading_them() -> None:
    with pytest.raises(QueryError) as raised:
        unframe_block(BLOCK_INFO + wire.varuint(1_000_000) + b"\x01", 54460)

    assert raised.value.code == NOT_IMPLEMENTED


@pytest.mark.parametrize(
    ("statement", "table", "columns"),
    [
        ("INSERT INTO t (a, b)", "t", ["a", "b"]),
        ("insert into table db.t", "db.t", []),
        ("INSERT INTO `my db`.`t` (`a b`, c)", "`my db`.`t`", ["a b", "c"]),
    ],
)
def test_insert_target_when_statements_name_tables_and_columns_then_both_are_found(
    statement: str, table: str, columns: list[str]
) -> None:
    assert insert_target(statement) == (table, columns)


@pytest.mark.parametrize(
    ("statement", "target", "columns"),
    [
        ("INSERT INTO function null('x UInt64') FORMAT Native", "null('x UInt64')", []),
        (
            "INSERT INTO FUNCTION file('x.csv', 'CSV', 'a UInt8, b String') (b, a) VALUES",
            "file('x.csv', 'CSV', 'a UInt8, b String')",
            ["b", "a"],
        ),
    ],
)
def test_insert_target_when_into_a_table_function_then_its_call_and_columns_are_found(
    statement: str, target: str, columns: list[str]
) -> None:
    assert insert_target(statement) == (target, columns)


@pytest.mark.parametrize("statement", ["INSERT INTO FUNCTION null", "INSERT INTO FUNCTION null('x UInt64'"])
def test_insert_target_when_a_table_function_has_no_whole_call_then_refused(statement: str) -> None:
    with pytest.raises(QueryError):
        insert_target(statement)


def test_header_columns_when_no_list_then_materialized_and_alias_columns_are_left_out() -> None:
    description = (
        b'{"name":"a","type":"UInt8","default_type":""}\n'
        b'{"name":"b","type":"String","default_type":"MATERIALIZED"}\n'
        b'{"name":"c","type":"String","default_type":"DEFAULT"}\n'
    )

    assert header_columns(description, []) == [("a", "UInt8"), ("c", "String")]
    assert header_columns(description, ["c", "a"]) == [("c", "String"), ("a", "UInt8")]


def test_header_columns_when_describe_prints_a_named_tuple_over_lines_then_it_is_named_on_one_line() -> None:
    nested = "Tuple(\\n    id Int64,\\n    inner Tuple(\\n        at DateTime('UTC'),\\n        note String))"
    description = b'{"name":"pair","type":"' + nested.encode() + b'","default_type":""}\n'

    assert header_columns(description, []) == [
        ("pair", "Tuple(id Int64, inner Tuple(at DateTime('UTC'), note String))")
    ]


@pytest.mark.parametrize(
    ("sent", "value"),
    [("'plain'", "plain"), ("'it\\'s'", "it's"), ("'a\\\\b'", "a\\b"), ("42", "42"), ("'tab\\there'", "tab\there")],
)
def test_unquoted_when_a_parameter_comes_as_a_quoted_literal_then_its_text_is_passed(sent: str, value: str) -> None:
    assert unquoted_parameter(sent) == value


def test_hello_when_revisions_differ_then_fields_follow_the_lower_one() -> None:
    identity = wire.ServerIdentity("ClickHouse", "26.9.2.1", "UTC", "tickwave-warehouse")

    old = wire.hello(identity, 54000)
    current = wire.hello(identity, 54460)

    assert old == b"\x00\nClickHouse\x1a\x09" + wire.varuint(wire.SERVER_REVISION)
    assert current == old + b"\x03UTC" + b"\x12tickwave-warehouse" + b"\x02"


def test_progress_when_revisions_differ_then_written_rows_and_elapsed_come_from_theirs() -> None:
    progress = wire.Progress(read_rows=1, read_bytes=2, written_rows=3, written_bytes=4, elapsed_ns=5)

    assert progress.packet(54000) == b"\x03\x01\x02\x00"
    assert progress.packet(54460) == b"\x03\x01\x02\x00\x03\x04\x05"
