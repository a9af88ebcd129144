"""Expand the ClickHouse plugin's macros and the board's template variable, as Grafana does before a query runs.

Expansions follow the plugin's documented macros (grafana/clickhouse-datasource,
``pkg/macros/macros.go``): times are the dashboard range's bounds in UTC.

| macro | expands to |
|---|---|
| ``$__fromTime`` / ``$__toTime`` | ``toDateTime(<unix seconds>)`` |
| ``$__fromTime_ms`` / ``$__toTime_ms`` | ``fromUnixTimestamp64Milli(<unix ms>)`` |
| ``$__timeFilter(col)`` | ``col >= toDateTime(<from s>) AND col <= toDateTime(<to s>)`` |
| ``$__timeFilter_ms(col)`` | the same with ``fromUnixTimestamp64Milli(<ms>)`` |
| ``$__dateFilter(col)`` | ``col >= toDate('<from day>') AND col <= toDate('<to day>')`` |
| ``$__dateTimeFilter(d, t)`` / ``$__dt(d, t)`` | ``(d >= toDate(..) AND d <= toDate(..)) AND (t >= toDateTime(..) AND t <= toDateTime(..))`` |
| ``$__timeInterval(col)`` | ``toStartOfInterval(toDateTime(col), INTERVAL <interval s, at least 1> second)`` |
| ``$__timeInterval_ms(col)`` | ``toStartOfInterval(toDateTime64(col, 3), INTERVAL <interval ms, at least 1> millisecond)`` |
| ``$__interval_s`` | the interval in whole seconds, at least 1 |

Template variables (``$symbol``, ``${symbol}``) are Grafana's own interpolation, done in
the browser before the plugin sees the query; here they are replaced by the given values.
"""

# ruff: noqa: E501 - the docstring's table of expansions is kept whole

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


class MacroError(ValueError):
    """A macro with the wrong number of arguments, or an unknown one."""


@dataclass(frozen=True)
class QueryContext:
    """What Grafana knows when it sends a query: the time range, the interval, the variables."""

    time_from: datetime
    time_to: datetime
    interval: timedelta = timedelta(seconds=1)
    variables: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def last(cls, span: timedelta, interval: timedelta, variables: Mapping[str, str], now: datetime) -> QueryContext:
        """The range ``now - span`` .. ``now``."""
        return cls(now - span, now, interval, variables)


def _seconds(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp())


def _millis(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1000)


def _date_time(moment: datetime) -> str:
    return f"toDateTime({_seconds(moment)})"


def _date_time64(moment: datetime) -> str:
    return f"fromUnixTimestamp64Milli({_millis(moment)})"


def _date(moment: datetime) -> str:
    return f"toDate('{moment.astimezone(UTC).strftime('%Y-%m-%d')}')"


def _args(name: str, args: list[str], count: int) -> list[str]:
    if len(args) != count:
        raise MacroError(f"$__{name}: expected {count} argument(s), received {len(args)}")
    return args


def _range(render: Callable[[datetime], str]) -> Callable[[QueryContext, str, list[str]], str]:
    def expand(context: QueryContext, name: str, args: list[str]) -> str:
        (column,) = _args(name, args, 1)
        return f"{column} >= {render(context.time_from)} AND {column} <= {render(context.time_to)}"

    return expand


def _date_time_filter(context: QueryContext, name: str, args: list[str]) -> str:
    date_column, time_column = _args(name, args, 2)
    dates = f"({date_column} >= {_date(context.time_from)} AND {date_column} <= {_date(context.time_to)})"
    times = f"({time_column} >= {_date_time(context.time_from)} AND {time_column} <= {_date_time(context.time_to)})"
    return f"{dates} AND {times}"


def _interval_seconds(context: QueryContext) -> int:
    return int(max(context.interval.total_seconds(), 1))


def _time_interval(context: QueryContext, name: str, args: list[str]) -> str:
    (column,) = _args(name, args, 1)
    return f"toStartOfInterval(toDateTime({column}), INTERVAL {_interval_seconds(context)} second)"


def _time_interval_ms(context: QueryContext, name: str, args: list[str]) -> str:
    (column,) = _args(name, args, 1)
    milliseconds = int(max(context.interval / timedelta(milliseconds=1), 1))
    return f"toStartOfInterval(toDateTime64({column}, 3), INTERVAL {milliseconds} millisecond)"


MACROS: dict[str, Callable[[QueryContext, str, list[str]], str]] = {
    "fromTime": lambda context, name, args: _date_time(context.time_from),
    "toTime": lambda context, name, args: _date_time(context.time_to),
    "fromTime_ms": lambda context, name, args: _date_time64(context.time_from),
    "toTime_ms": lambda context, name, args: _date_time64(context.time_to),
    "timeFilter": _range(_date_time),
    "timeFilter_ms": _range(_date_time64),
    "dateFilter": _range(_date),
    "dateTimeFilter": _date_time_filter,
    "dt": _date_time_filter,
    "timeInterval": _time_interval,
    "timeInterval_ms": _time_interval_ms,
    "interval_s": lambda context, name, args: str(_interval_seconds(context)),
}
_MACRO = re.compile(r"\$__(\w+)")
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)\b")


def _split_args(text: str) -> list[str]:
    # Arguments split on top-level commas (a column expression may hold parentheses).
    args, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            args.append(current.strip())
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    if current.strip():
        args.append(current.strip())
    return args


def _closing(sql: str, start: int) -> int:
    depth = 0
    for index in range(start, len(sql)):
        depth += {"(": 1, ")": -1}.get(sql[index], 0)
        if depth == 0:
            return index
    raise MacroError(f"unbalanced parentheses after position {start}")


def expand_macros(sql: str, context: QueryContext) -> str:
    """Replace every ``$__macro`` / ``$__macro(args)`` as the plugin does.

    Raises:
        MacroError: an unknown macro or a wrong argument count.
    """
    out: list[str] = []
    position = 0
    while match := _MACRO.search(sql, position):
        name = match.group(1)
        if name not in MACROS:
            raise MacroError(f"unknown macro $__{name}")
        out.append(sql[position : match.start()])
        end = match.end()
        args: list[str] = []
        if end < len(sql) and sql[end] == "(":
            close = _closing(sql, end)
            args = _split_args(sql[end + 1 : close])
            end = close + 1
        out.append(MACROS[name](context, name, args))
        position = end
    out.append(sql[position:])
    return "".join(out)


def interpolate_variables(sql: str, variables: Mapping[str, str]) -> str:
    """Replace ``$name`` / ``${name}`` with the variable's value (Grafana's interpolation of a single value).

    Raises:
        MacroError: a variable without a value.
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name.startswith("__"):
            return match.group(0)
        if name not in variables:
            raise MacroError(f"template variable ${name} has no value")
        return variables[name]

    return _VARIABLE.sub(value, sql)


def expand(sql: str, context: QueryContext) -> str:
    """Interpolate the variables, then expand the macros: the SQL the warehouse receives."""
    return expand_macros(interpolate_variables(sql, context.variables), context)
