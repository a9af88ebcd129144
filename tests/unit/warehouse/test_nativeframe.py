"""Native output reframed for a client's protocol revision (clickhouse-go, inside Grafana's ClickHouse plugin)."""

from __future__ import annotations

import time

import chdb
import pytest

from warehouse_server.protocol import INCORRECT_DATA, QueryError
from warehouse_server.query.nativeframe import BLOCK_INFO, NativeFramer, reframe_native, varuint

REVISION = 54460  # what clickhouse-go v2.50 announces
FLATTENED = " SETTINGS output_format_native_use_flattened_dynamic_and_json_serialization = 1"


def native(sql: str) -> bytes:
    return bytes(chdb.query(sql, "Native").bytes())


def test_reframe_when_small_block_then_block_info_and_a_flag_per_column() -> None:
    data = native("SELECT toUInt8(7) AS a, 'xy' AS s")

    framed = reframe_native(data, REVISION)

    assert data == b"\x02\x01\x01a\x05UInt8\x07\x01s\x06String\x02xy"
    assert framed == BLOCK_INFO + b"\x02\x01\x01a\x05UInt8\x00\x07\x01s\x06String\x00\x02xy"


def test_reframe_when_revision_before_custom_serialization_then_block_info_only() -> None:
    data = native("SELECT toUInt8(7) AS a")

    assert reframe_native(data, 54453) == BLOCK_INFO + data
    assert reframe_native(data, 0) == data


@pytest.mark.parametrize(
    "expression",
    [
        "toLowCardinality(toString(number % 3))",
        "[toLowCardinality(toString(number)), 'x']",
        "map(toString(number), number, 'k', 2)",
        "tuple(number, toString(number), [number])",
        "CAST(tuple(number, 'a'), 'Tuple(id UInt64, name String)')",
        "CAST(tuple(number, NULL), 'Tuple(`ns space` UInt64, `x` Nullable(String))')",
        "CAST([(number, 'a')], 'Nested(k UInt64, `v w` LowCardinality(String))')",
        "if(number % 2 = 0, NULL, number * 1.5)",
        "toLowCardinality(if(number % 2 = 0, NULL, toString(number)))",
        "CAST(if(number % 2 = 0, 'a, b', 'c(d'), 'Enum8(\\'a, b\\' = 1, \\'c(d\\' = 2)')",
        "toDecimal64(number / 3, 4)",
        "toDecimal128(number, 20)",
        "now64(3, 'Europe/London') + number",
        "toFixedString(toString(number % 10), 3)",
        "generateUUIDv4(number)",
        "[[number, number + 1], []]",
        "map('a', [toLowCardinality('x')])",
        "toDate('2026-01-01') + number",
        "CAST((number, 1.5), 'Point')",
        "CAST([(number, 1.5), (2, 3)], 'Ring')",
        "CAST([(number, 1.5)], 'LineString')",
        "CAST([[(number, 1.5)], []], 'MultiLineString')",
        "CAST([[(number, 1.5), (0, 0)]], 'Polygon')",
        "CAST([[[(number, 1.5)]], []], 'MultiPolygon')",
        "toIntervalSecond(number)",
        "toIntervalMonth(number)",
        "NULL",
        "[]",
        "CAST(number * 1.5, 'SimpleAggregateFunction(sum, Float64)')",
        "CAST(toLowCardinality(toString(number)), 'SimpleAggregateFunction(any, LowCardinality(String))')",
    ],
)
def test_reframe_when_types_nest_then_every_column_is_walked(expression: str) -> None:
    data = native(f"SELECT number AS n, {expression} AS v, 'end' AS tail FROM numbers(5)")

    framed = reframe_native(data, REVISION)

    # One block: block info + the same bytes with one flag after each of the three column types.
    assert len(framed) == len(data) + len(BLOCK_INFO) + 3
    assert framed.endswith(b"\x04tail\x06String\x00\x03end\x03end\x03end\x03end\x03end")


@pytest.mark.parametrize(
    "expression",
    [
        "CAST(multiIf(number % 3 = 0, NULL, number % 3 = 1, toString(number), number), 'Variant(UInt64, String)')",
        "CAST(if(number % 2 = 0, toLowCardinality(toString(number)), 'x'),"
        " 'Variant(LowCardinality(String), Array(UInt8))')",
        "CAST(multiIf(number % 3 = 0, NULL, number % 3 = 1, toString(number), number), 'Dynamic')",
        "CAST(multiIf(number % 3 = 0, NULL, number % 3 = 1, toString(number), number), 'Dynamic(max_types=1)')",
        "CAST(if(number % 2 = 0, [number], toLowCardinality(toString(number))), 'Dynamic')",
        "CAST([number, 'a', NULL], 'Array(Dynamic)')",
        "map('k', CAST(number, 'Dynamic'))",
        "CAST((number::Dynamic, 'x'), 'Tuple(d Dynamic, v Variant(String, UInt8))')",
        '(\'{"a":\' || toString(number) || \',"b":{"c":"x"}, "d":[1,2]}\')::JSON',
        '(\'{"a":\' || toString(number) || \',"b":{"c":"x"}, "d":[1,2]}\')::JSON(max_dynamic_paths=1)',
        '(\'{"a":\' || toString(number) || \',"b":{"c":"x"}, "e":"q"}\')'
        "::JSON(`b.c` LowCardinality(String), a UInt8, SKIP z)",
        '(\'{"a":\' || toString(number) || \',"b":[1, "x"]}\')::JSON(max_dynamic_types=0)',
        "[('{\"a\":' || toString(number) || '}')::JSON]",
    ],
)
@pytest.mark.parametrize("settings", ["", FLATTENED], ids=["default", "flattened"])
def test_reframe_when_variant_dynamic_or_json_then_walked_to_the_next_column(expression: str, settings: str) -> None:
    data = native(f"SELECT number AS n, {expression} AS v, toDateTime(number, 'UTC') AS t FROM numbers(5)" + settings)
    framer = NativeFramer(REVISION, lambda: ["UInt64", "-", "DateTime('UTC')"])

    framed = framer.frame(data)

    # Walked through the column to the end: a flag after each type and the DateTime after it gets its zone.
    assert len(framed) == len(data) + len(BLOCK_INFO) + 3 + len("('UTC')")
    assert framed.endswith(b"\x01t\x0fDateTime('UTC')\x00" + b"".join(i.to_bytes(4, "little") for i in range(5)))


def test_reframe_when_a_variant_column_holds_several_blocks_then_each_is_walked() -> None:
    data = native(
        "SELECT CAST(if(number % 2 = 0, toString(number), number), 'Dynamic') AS d, 'end' AS tail"
        " FROM numbers(100000) SETTINGS max_block_size = 30000"
    )

    framed = reframe_native(data, REVISION)

    assert framed.count(b"\x04tail\x06String\x00") == framed.count(BLOCK_INFO) >= 2


@pytest.mark.parametrize("discriminator", [b"\x02", b"\xfe"])
def test_reframe_when_a_discriminator_is_past_its_variants_then_refused_as_incorrect_data(discriminator: bytes) -> None:
    data = native("SELECT CAST(toUInt8(1), 'Variant(String, UInt8)') AS v, 'end' AS tail")
    assert data.count(b"\x01\x01\x04tail") == 1  # discriminator 1 (UInt8), value 1, then the tail column

    with pytest.raises(QueryError) as refused:
        reframe_native(data.replace(b"\x01\x01\x04tail", discriminator + b"\x01\x04tail"), REVISION)

    assert refused.value.code == INCORRECT_DATA


@pytest.mark.parametrize("index", [b"\x03", b"\xff"])
def test_reframe_when_a_flattened_type_index_is_past_its_types_then_refused_as_incorrect_data(index: bytes) -> None:
    data = native("SELECT CAST(toUInt8(1), 'Dynamic') AS d, 'end' AS tail" + FLATTENED)
    assert data.count(b"UInt8\x00\x01\x04tail") == 1  # one type, index 0, value 1, then the tail column

    with pytest.raises(QueryError) as refused:
        reframe_native(data.replace(b"UInt8\x00\x01\x04tail", b"UInt8" + index + b"\x01\x04tail"), REVISION)

    assert refused.value.code == INCORRECT_DATA


DEEP_NAME = b"Array(" * 40 + b"UInt8" + b")" * 40


@pytest.mark.parametrize(
    "column",
    [
        b"\x07Dynamic" + (b"\x03" + bytes(7) + b"\x01\x07Dynamic") * 10_000,  # Dynamic in Dynamic, 10 000 deep
        b"\x07Dynamic\x03" + bytes(7) + b"\x01" + varuint(len(DEEP_NAME)) + DEEP_NAME,  # a type 40 deep
        b"\x07Dynamic\x03" + bytes(7) + b"\x01\x0dSharedVariant",  # the walk's own name
        b"\x07Dynamic\x03" + bytes(7) + varuint(9_000) + (varuint(4000) + b"Array(" * 30 + b"x" * 3820) * 9_000,
    ],
)
def test_reframe_when_a_dynamic_names_types_past_the_bounds_then_refused_as_incorrect_data(column: bytes) -> None:
    with pytest.raises(QueryError) as refused:
        reframe_native(b"\x01\x01\x01a" + column + b"\x00", REVISION)

    assert refused.value.code == INCORRECT_DATA


def _names_past_the_bound(name: bytes) -> bytes:
    # 1048 type names of 4000 bytes, then the size of one more: past the 4 MiB of names a column may hold.
    return b"\x07Dynamic\x03" + bytes(7) + varuint(2_000) + (varuint(len(name)) + name) * 1_048 + varuint(4000)


def test_reframe_when_megabytes_of_plain_type_names_then_their_letters_cost_no_step_each() -> None:
    # The server walks a block in its event loop: a Python step per character of 4 MiB of names held
    # every other connection for over a second. Letters are compared with parentheses, which do cost a
    # step each, timed in turn (best of three): a step per letter makes them cost alike.
    letters, parentheses = _names_past_the_bound(b"x" * 4000), _names_past_the_bound(b"()" * 2000)
    best = {letters: float("inf"), parentheses: float("inf")}

    for _ in range(3):
        for column in best:
            started = time.perf_counter()
            with pytest.raises(QueryError) as refused:
                reframe_native(b"\x01\x01\x01a" + column + b"\x00", REVISION)
            best[column] = min(best[column], time.perf_counter() - started)
            assert refused.value.code == INCORRECT_DATA

    assert best[letters] < best[parentheses] / 4, f"letters {best[letters]:.3f} s, ( and ) {best[parentheses]:.3f} s"


def test_reframe_when_json_is_written_as_text_then_walked_as_strings() -> None:
    data = native("SELECT '{\"a\":1}'::JSON AS j, 'end' AS tail SETTINGS output_format_native_write_json_as_string = 1")

    assert reframe_native(data, REVISION).endswith(b"\x04tail\x06String\x00\x03end")


def test_reframe_when_a_variant_block_is_cut_anywhere_then_refused_without_crashing() -> None:
    data = native(
        "SELECT CAST(if(number % 2 = 0, toString(number), [number]), 'Dynamic') AS d,"
        " ('{\"a\":' || toString(number) || '}')::JSON AS j FROM numbers(3)"
    )

    for end in range(len(data)):
        with pytest.raises(QueryError):
            reframe_native(data[:end] if end else b"\x01", REVISION)


def test_reframe_when_several_blocks_then_each_gets_block_info() -> None:
    data = native("SELECT number FROM numbers(200000) SETTINGS max_block_size = 65536")

    framed = reframe_native(data, REVISION)

    assert framed.count(BLOCK_INFO) >= 2
    assert len(framed) == len(data) + framed.count(BLOCK_INFO) * (len(BLOCK_INFO) + 1)


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x02\x01a\x06String\x05ab",
        b"\x01\x01\x01a\x07Dynamic\x00",
        b"\x01\x01\x01a\x07Dynamic\x04" + bytes(7) + b"\x01\x15\x00\x01x",  # type names in binary: not walked
        b"\x01\x01\x01a\x0fVariant(String)" + bytes(8) + b"\x01\x01x",  # discriminator 1 of a single variant
        b"\x01\x01\x01a\x07Dynamic\x01" + bytes(7) + b"\x01\x01\xff\xff\xff\xff\x0f",  # a type name of 4 GiB
        b"\x01\x01\x01a\x07Dynamic\x01" + bytes(7) + b"\x01\x01\x0eArray(Dynamic)" + bytes(8),  # no more
    ],
)
def test_reframe_when_truncated_or_unwalkable_then_refused(data: bytes) -> None:
    with pytest.raises(QueryError):
        reframe_native(data, REVISION)


def test_framer_when_a_revision_expects_zones_then_bare_datetime_gets_its_full_type() -> None:
    data = native("SELECT toDateTime(1, 'Asia/Tokyo') AS t, toUInt8(2) AS u")
    asked: list[int] = []

    def types() -> list[str]:
        asked.append(1)
        return ["DateTime('Asia/Tokyo')", "UInt8"]

    framer = NativeFramer(54405, types)

    assert framer.frame(data, one_block=True) == (
        BLOCK_INFO + b"\x02\x01\x01t\x16DateTime('Asia/Tokyo')\x01\x00\x00\x00\x01u\x05UInt8\x02"
    )
    assert NativeFramer(54336, types).frame(data) == BLOCK_INFO + data
    assert NativeFramer(0, types).frame(data) == data
    assert asked == [1]  # asked once, and only where zones are expected


def binary_typed(data: bytes) -> bytes:
    # The same block with its Dynamic in serialization version 4 (type names in binary): not walked.
    return data.replace(b"\x07Dynamic\x01", b"\x07Dynamic\x04", 1)


def test_framer_when_a_streamed_block_has_an_unwalkable_column_then_the_rest_goes_as_is() -> None:
    data = binary_typed(native("SELECT toUInt8(1) AS a, 'x'::Dynamic AS d, toDateTime(0, 'UTC') AS t"))

    framed = NativeFramer(54405, lambda: ["UInt8", "Dynamic", "DateTime('UTC')"]).frame(data, one_block=True)

    assert framed == BLOCK_INFO + data
    with pytest.raises(QueryError):
        NativeFramer(54405, lambda: None).frame(data)  # several blocks could follow: refused
    with pytest.raises(QueryError):
        NativeFramer(54460, lambda: None).frame(data, one_block=True)  # a flag is due after every column


def test_framer_when_first_block_needs_no_rewrite_then_later_blocks_only_get_block_info() -> None:
    first = native("SELECT toUInt8(1) AS a")
    framer = NativeFramer(54405, lambda: None)

    assert framer.frame(first, one_block=True) == BLOCK_INFO + first
    assert framer.frame(b"not walked", one_block=True) == BLOCK_INFO + b"not walked"


def test_framer_when_asked_whether_it_wants_types_then_only_for_a_bare_datetime_where_zones_are_due() -> None:
    zoned = native("SELECT toUInt8(1) AS a, toDateTime(0, 'UTC') AS t")
    plain = native("SELECT toUInt8(1) AS a, toDateTime64(0, 3, 'UTC') AS t")
    behind = binary_typed(native("SELECT 'x'::Dynamic AS d, toDateTime(0, 'UTC') AS t"))
    framer = NativeFramer(54405, lambda: None)

    assert framer.wants_types(zoned) and not framer.wants_types(plain) and not framer.wants_types(behind)
    assert not NativeFramer(54336, lambda: None).wants_types(zoned)
    framer.use_types(["UInt8", "DateTime('UTC')"])
    assert not framer.wants_types(zoned)
    assert b"\x0fDateTime('UTC')" in framer.frame(zoned, one_block=True)


def test_framer_when_no_bare_datetime_is_written_then_the_block_is_not_walked() -> None:
    # Not a walkable block: only the absence of a bare DateTime header lets it pass unwalked.
    framer = NativeFramer(54405, lambda: None)

    assert framer.frame(b"\x01\x01\x01a\x07Unknown\x00", one_block=True) == BLOCK_INFO + b"\x01\x01\x01a\x07Unknown\x00"
    assert not framer.wants_types(b"\x01\x01\x01a\x07Unknown\x00")
