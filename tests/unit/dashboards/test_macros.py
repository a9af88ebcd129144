"""The macro expander: each of the plugin's macros expands as grafana/clickhouse-datasource's macros.go does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.macros import MacroError, QueryContext, expand, expand_macros, interpolate_variables

FROM = datetime(2026, 3, 2, 10, 0, 0, 250_000, tzinfo=UTC)  # 1772445600.25
TO = datetime(2026, 3, 3, 11, 30, 0, tzinfo=UTC)  # 1772537400
CONTEXT = QueryContext(FROM, TO, timedelta(seconds=30), {"symbol": "EURUSD"})


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("$__fromTime", "toDateTime(1772445600)"),
        ("$__toTime", "toDateTime(1772537400)"),
        ("$__fromTime_ms", "fromUnixTimestamp64Milli(1772445600250)"),
        ("$__toTime_ms", "fromUnixTimestamp64Milli(1772537400000)"),
        ("$__timeFilter(t)", "t >= toDateTime(1772445600) AND t <= toDateTime(1772537400)"),
        (
            "$__timeFilter_ms(t)",
            "t >= fromUnixTimestamp64Milli(1772445600250) AND t <= fromUnixTimestamp64Milli(1772537400000)",
        ),
        ("$__dateFilter(d)", "d >= toDate('2026-03-02') AND d <= toDate('2026-03-03')"),
        (
            "$__dateTimeFilter(d, t)",
            "(d >= toDate('2026-03-02') AND d <= toDate('2026-03-03')) AND "
            "(t >= toDateTime(1772445600) AND t <= toDateTime(1772537400))",
        ),
        (
            "$__dt(d, t)",
            "(d >= toDate('2026-03-02') AND d <= toDate('2026-03-03')) AND "
            "(t >= toDateTime(1772445600) AND t <= toDateTime(1772537400))",
        ),
        ("$__timeInterval(t)", "toStartOfInterval(toDateTime(t), INTERVAL 30 second)"),
        ("$__timeInterval_ms(t)", "toStartOfInterval(toDateTime64(t, 3), INTERVAL 30000 millisecond)"),
        ("$__interval_s", "30"),
    ],
)
def test_macro_when_expanded_then_matches_the_plugin(sql: str, expected: str) -> None:
    assert expand_macros(sql, CONTEXT) == expected


def test_interval_when_under_a_second_then_at_least_one() -> None:
    context = QueryContext(FROM, TO, timedelta(milliseconds=200))

    assert expand_macros("$__interval_s", context) == "1"
    assert expand_macros("$__timeInterval(t)", context).endswith("INTERVAL 1 second)")
    assert expand_macros("$__timeInterval_ms(t)", context).endswith("INTERVAL 200 millisecond)")


def test_macro_when_argument_holds_parentheses_then_kept_whole() -> None:
    assert expand_macros("WHERE $__timeFilter(toDateTime(a, 'UTC')) AND x", CONTEXT) == (
        "WHERE toDateTime(a, 'UTC') >= toDateTime(1772445600) AND toDateTime(a, 'UTC') <= toDateTime(1772537400) AND x"
    )


@pytest.mark.parametrize("sql", ["$__timeFilter(a, b)", "$__timeFilter", "$__dt(a)", "$__nosuch(a)", "$__timeFilter(a"])
def test_macro_when_misused_then_refused(sql: str) -> None:
    with pytest.raises(MacroError):
        expand_macros(sql, CONTEXT)


def test_variables_when_interpolated_then_both_forms_replaced_and_macros_left() -> None:
    sql = "symbol = '${symbol}' OR symbol = '$symbol' AND $__timeFilter(t)"

    assert interpolate_variables(sql, {"symbol": "USDJPY"}) == (
        "symbol = 'USDJPY' OR symbol = 'USDJPY' AND $__timeFilter(t)"
    )
    with pytest.raises(MacroError, match="no value"):
        interpolate_variables("${other}", {})


def test_expand_when_full_query_then_variables_and_macros_done() -> None:
    sql = "SELECT $__timeInterval(t) AS time FROM x WHERE s = '${symbol}' AND $__timeFilter(t) GROUP BY time"

    assert expand(sql, CONTEXT) == (
        "SELECT toStartOfInterval(toDateTime(t), INTERVAL 30 second) AS time FROM x WHERE s = 'EURUSD' "
        "AND t >= toDateTime(1772445600) AND t <= toDateTime(1772537400) GROUP BY time"
    )
