"""The timeframes' SQL, generated from the Python definition, evaluated by the engine itself."""

from __future__ import annotations

import chdb

from dashboards.trader import TIMEFRAME_SECONDS
from tickwave.timeframes import TIMEFRAMES_MS, timeframe_seconds_sql


def test_timeframe_seconds_sql_when_evaluated_then_every_timeframe_spans_its_length() -> None:
    names = ", ".join(f"'{name}'" for name in TIMEFRAMES_MS)
    sql = f"SELECT timeframe, {timeframe_seconds_sql()} FROM (SELECT arrayJoin([{names}, 'unknown']) AS timeframe)"

    rows = dict(line.split("\t") for line in chdb.query(sql, "TSV").bytes().decode().splitlines())

    assert {name: int(seconds) for name, seconds in rows.items()} == {
        **{name: length_ms // 1000 for name, length_ms in TIMEFRAMES_MS.items()},
        "unknown": 0,
    }
    assert rows["30m"] == "1800"


def test_trader_board_when_it_times_a_30_minute_bar_then_the_bar_spans_30_minutes() -> None:
    sql = f"SELECT {TIMEFRAME_SECONDS} FROM (SELECT '30m' AS timeframe)"

    assert chdb.query(sql, "TSV").bytes().decode().strip() == "1800"
