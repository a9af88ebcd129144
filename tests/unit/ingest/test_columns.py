"""Column parsing: MT5 time stamps, forward fill, tolerant casts and mapped files."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.ingest.columns import (
    MT5_COLUMNS,
    ColumnMap,
    MappedParser,
    Mt5ExportParser,
    forward_fill,
    parse_mt5_stamps,
    tolerant_cast,
)
from tickwave.timezones import WallClock

UTC_CLOCK = WallClock("UTC")


NAIVE_MIN, NAIVE_MAX = (datetime(year, 1, 1, tzinfo=UTC).replace(tzinfo=None) for year in (1970, 9999))


@settings(deadline=None)
@given(st.datetimes(min_value=NAIVE_MIN, max_value=NAIVE_MAX))
def test_parse_mt5_stamps_when_valid_then_same_as_datetime(moment: datetime) -> None:
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    date, time = f"{moment:%Y.%m.%d}", f"{moment:%H:%M:%S}.{moment.microsecond // 1000:03d}"

    values, ok = parse_mt5_stamps(pa.array([date]), pa.array([time]))

    assert ok.tolist() == [True]
    assert values[0] == (moment.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("date", "time"),
    [
        ("2024.02.30", "09:00:00.000"),
        ("2023.02.29", "09:00:00.000"),
        ("2024.13.01", "09:00:00.000"),
        ("2024.00.10", "09:00:00.000"),
        ("2024.03.04", "24:00:00.000"),
        ("2024.03.04", "09:60:00.000"),
        ("2024.03.04", "09:00:60.000"),
        ("2024-03-04", "09:00:00.000"),
        ("2024.03.04", "09:00:00,000"),
        ("2024.03.04", "09:00:00.0001"),
        ("2024.03.04", "9:00:00.000"),
        ("2024.03.04", None),
        (None, "09:00:00"),
        ("２０２４.03.04", "09:00:00.000"),
        ("2024.03.04", "09:00:00.5"),
    ],
)
def test_parse_mt5_stamps_when_invalid_then_marked_not_ok(date: str | None, time: str | None) -> None:
    values, ok = parse_mt5_stamps(pa.array([date, "2024.02.29"]), pa.array([time, "23:59:59"]))

    assert ok.tolist() == [False, True]
    assert values[1] == int(datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC).timestamp() * 1000)


def test_forward_fill_when_rows_absent_then_latest_feeding_value_or_carry() -> None:
    values = np.array([np.nan, 1.0, np.nan, -5.0, np.nan, 2.0, np.nan])
    present = ~np.isnan(values)
    feeds = present & (values > 0)

    filled, carry = forward_fill(values, present, feeds, carry=0.5)

    assert filled.tolist() == [0.5, 1.0, 1.0, -5.0, 1.0, 2.0, 2.0]
    assert carry == 2.0


def test_tolerant_cast_when_some_values_bad_then_only_those_fail() -> None:
    values, failed = tolerant_cast(pa.array(["1.5", "x", None, "2e3", "1,5", "nan"]), pa.float64())

    assert failed.tolist() == [False, True, False, False, True, False]
    assert values.to_pylist()[:4] == [1.5, None, None, 2000.0]
    assert math.isnan(values.to_pylist()[5])


def mt5_batch(*rows: tuple[str | None, ...]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array(column, pa.string()) for column in zip(*rows, strict=True)], names=list(MT5_COLUMNS)
    )


def test_mt5_parser_when_fields_empty_then_previous_values_carried_across_batches() -> None:
    parser = Mt5ExportParser("EURUSD", WallClock("+02:00"))
    parser.parse(mt5_batch(("2024.03.04", "10:00:00.000", "1.08500", "1.08510", None, None, "6")))

    rows, rejected = parser.parse(
        mt5_batch(
            ("2024.03.04", "10:00:00.100", "1.08501", None, None, None, "2"),
            ("2024.03.04", "10:00:00.200", None, "1.08512", "1.08505", "3", "28"),
        )
    )

    assert rejected == []
    assert rows.bid.tolist() == [1.08501, 1.08501]
    assert rows.ask.tolist() == [1.0851, 1.08512]
    assert (rows.last.tolist(), rows.volume.tolist(), rows.flags.tolist()) == ([0.0, 1.08505], [0.0, 3.0], [2, 28])
    assert rows.time_ms.tolist()[0] == int(datetime(2024, 3, 4, 8, 0, 0, 100_000, tzinfo=UTC).timestamp() * 1000)
    assert rows.raw(1) == "2024.03.04\t10:00:00.200\t\t1.08512\t1.08505\t3\t28"


def test_mt5_parser_when_first_row_lacks_a_price_then_missing_field() -> None:
    rows, rejected = Mt5ExportParser("EURUSD", UTC_CLOCK).parse(
        mt5_batch(
            ("2024.03.04", "10:00:00.000", "1.08500", None, None, None, "2"),
            ("2024.03.04", "10:00:00.100", "1.08500", "abc", None, None, "6"),
            ("2024.03.04", "10:00:00.200", "1.08500", "1.08510", None, None, "6"),
        )
    )

    assert [r.reason for r in rejected] == ["missing_field: <ASK> empty, none earlier", "unparseable: <ASK> 'abc'"]
    assert rows.ask.tolist() == [1.0851]


def test_column_map_when_parsed_then_named_fields_set() -> None:
    mapping = ColumnMap.parse("time=ts, bid=b,ask=a,symbol=,time_unit=s")

    assert (mapping.time, mapping.bid, mapping.ask, mapping.symbol, mapping.time_unit) == ("ts", "b", "a", None, "s")
    with pytest.raises(ValueError, match="bad column mapping"):
        ColumnMap.parse("price=p")
    with pytest.raises(ValueError, match="time_unit"):
        ColumnMap.parse("time_unit=minutes")


def test_mapped_parser_when_typed_parquet_columns_then_times_and_symbols_read() -> None:
    wall = [datetime(2024, 3, 4, 10, 0, second, tzinfo=UTC).replace(tzinfo=None) for second in (0, 1)]
    naive = pa.array([*wall, None], pa.timestamp("us"))
    batch = pa.RecordBatch.from_pydict(
        {
            "ts": naive,
            "sym": pa.array(["EURUSD", "USDJPY", "EURUSD"]).dictionary_encode(),
            "b": [1.0, 150.0, 1.0],
            "a": [1.1, None, 1.1],
        }
    )
    parser = MappedParser(ColumnMap.parse("time=ts,symbol=sym,bid=b,ask=a"), WallClock("+01:00"))

    rows, rejected = parser.parse(batch)

    assert [r.reason for r in rejected] == ["missing_field: a None", "missing_field: ts None"]
    assert json.loads(rejected[0].raw) == {"ts": "2024-03-04 10:00:01", "b": 150.0, "a": None, "sym": "USDJPY"}
    assert rows.time_ms.tolist() == [int(datetime(2024, 3, 4, 9, 0, tzinfo=UTC).timestamp() * 1000)]
    assert rows.symbols[rows.symbol_code[0]] == "EURUSD"


@pytest.mark.parametrize(
    ("unit", "value", "expected_ms"),
    [
        ("s", "1709546400.25", 1_709_546_400_250),
        ("ms", "1709546400250", 1_709_546_400_250),
        ("us", "1709546400250999", 1_709_546_400_250),
        ("iso", "2024-03-04T10:00:00.250", 1_709_546_400_250),
        ("iso", "2024-03-04T12:00:00.250+02:00", 1_709_546_400_250),
    ],
)
def test_mapped_parser_when_text_times_then_unit_applied(unit: str, value: str, expected_ms: int) -> None:
    batch = pa.RecordBatch.from_pydict({"t": [value, "garbage"], "bid": ["1.0", "1.0"], "ask": ["1.1", "1.1"]})
    parser = MappedParser(
        ColumnMap(time="t", symbol=None, last=None, volume=None, flags=None, time_unit=unit), UTC_CLOCK, "EURUSD"
    )  # type: ignore[arg-type]

    rows, rejected = parser.parse(batch)

    assert rows.time_ms.tolist() == [expected_ms]
    assert [r.reason for r in rejected] == ["unparseable: t 'garbage'"]


def test_mapped_parser_when_a_column_cannot_hold_numbers_then_type_error_names_it() -> None:
    batch = pa.RecordBatch.from_pydict({"time_ms": [1], "bid": [[1.0]], "ask": [1.1]})

    with pytest.raises(TypeError, match="list<item: double> column cannot hold tick numbers"):
        MappedParser(ColumnMap(symbol=None, last=None, volume=None, flags=None), UTC_CLOCK, "EURUSD").parse(batch)
