"""What a panel is, independent of Grafana: title, SQL, format, unit, the columns it needs, its budget.

The boards (:mod:`dashboards.trader`, :mod:`dashboards.ops`) are lists of :class:`PanelSpec`;
:mod:`dashboards.board` turns them into the SDK's dashboard, and the tests run each spec's
SQL (macros expanded) against the warehouse and check :attr:`PanelSpec.columns`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from dashboards.dataquery import QueryFormat


class Kind(enum.StrEnum):
    """Panel types the boards use (Grafana's panel plugin ids), plus dashboard annotations."""

    TIME_SERIES = "timeseries"
    CANDLESTICK = "candlestick"
    TABLE = "table"
    STAT = "stat"
    HEATMAP = "heatmap"
    ANNOTATION = "annotation"


class ColumnType(enum.StrEnum):
    """The family of ClickHouse types a panel accepts in a column."""

    TIME = "time"
    NUMBER = "number"
    STRING = "string"
    ANY = "any"


_TIME = re.compile(r"^(DateTime64|DateTime|Date32|Date)\b")
_NUMBER = re.compile(r"^(U?Int\d+|Float\d+|Decimal\d*|Bool)\b")
_STRING = re.compile(r"^(String|FixedString|Enum8|Enum16|UUID)\b")


def unwrap(clickhouse_type: str) -> str:
    """Strip ``Nullable(...)`` and ``LowCardinality(...)`` wrappers from a ClickHouse type name."""
    inner = clickhouse_type.strip()
    while True:
        match = re.fullmatch(r"(Nullable|LowCardinality)\((.*)\)", inner)
        if not match:
            return inner
        inner = match.group(2)


def type_matches(clickhouse_type: str, expected: ColumnType) -> bool:
    """Return True when ``clickhouse_type`` belongs to ``expected``."""
    inner = unwrap(clickhouse_type)
    if expected is ColumnType.ANY:
        return True
    pattern = {ColumnType.TIME: _TIME, ColumnType.NUMBER: _NUMBER, ColumnType.STRING: _STRING}[expected]
    return bool(pattern.match(inner))


@dataclass(frozen=True)
class PanelSpec:
    """One panel (or dashboard annotation) and the contract its query must meet.

    Attributes:
        title: the panel title (unique on its board).
        kind: the panel type.
        sql: the query as Grafana stores it (plugin macros and ``${symbol}`` unexpanded).
        format: the plugin's result format.
        unit: Grafana's unit id for the values.
        columns: name and type family of every column the panel reads, in order.
        description: what the panel shows and where it comes from (also the README's text).
        budget_ms: p95 latency the query must meet over HTTP as the analyst.
        width: grid width (of 24).
        height: grid height.
        decimals: per column, the decimal places Grafana shows (money in one currency: its minor unit).
    """

    title: str
    kind: Kind
    sql: str
    format: QueryFormat
    unit: str
    columns: tuple[tuple[str, ColumnType], ...]
    description: str
    budget_ms: float
    width: int = 12
    height: int = 8
    decimals: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class MetricsPanelSpec:
    """One panel on Prometheus's metrics (the processes' ``/metrics``, scraped by the Prometheus datasource).

    Attributes:
        title: the panel title (unique on its board).
        kind: the panel type.
        queries: each series' legend and PromQL expression.
        unit: Grafana's unit id for the values.
        description: what the panel shows and where it comes from.
        width: grid width (of 24).
        height: grid height.
    """

    title: str
    kind: Kind
    queries: tuple[tuple[str, str], ...]
    unit: str
    description: str
    width: int = 12
    height: int = 8


@dataclass(frozen=True)
class BoardSpec:
    """A board: its identity, time settings, variables and panels."""

    uid: str
    title: str
    description: str
    refresh: str
    time_from: str
    panels: tuple[PanelSpec, ...]
    annotations: tuple[PanelSpec, ...] = ()
    symbols: tuple[str, ...] = ()
    metrics_panels: tuple[MetricsPanelSpec, ...] = ()  # after the warehouse's panels, on the Prometheus datasource

    @property
    def queries(self) -> tuple[PanelSpec, ...]:
        """Every query of the board: panels, then annotations."""
        return self.panels + self.annotations


T = ColumnType
