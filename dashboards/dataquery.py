"""The ClickHouse plugin's query model for the Grafana foundation SDK (which has none).

The plugin (`grafana-clickhouse-datasource`) stores a panel query as
``{"datasource": {...}, "editorType": "sql", "format": N, "queryType": ..., "rawSql": ...,
"refId": ...}``; ``format`` is 0 time series, 1 table, 2 logs. :func:`register` makes the
SDK's ``Dashboard.from_json`` load such targets back into :class:`ClickHouseQuery`.
"""

from __future__ import annotations

import enum
import typing

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard, prometheus

PLUGIN_TYPE = "grafana-clickhouse-datasource"
DATASOURCE_UID = "tickwave-clickhouse"
PROMETHEUS_TYPE = "prometheus"
PROMETHEUS_UID = "tickwave-prometheus"


class QueryFormat(enum.IntEnum):
    """The plugin's result formats."""

    TIME_SERIES = 0
    TABLE = 1
    LOGS = 2


def datasource_ref() -> dashboard.DataSourceRef:
    """The reference every panel and query uses: the provisioned ClickHouse datasource."""
    return dashboard.DataSourceRef(type_val=PLUGIN_TYPE, uid=DATASOURCE_UID)


def prometheus_ref() -> dashboard.DataSourceRef:
    """The provisioned Prometheus datasource (the processes' metrics)."""
    return dashboard.DataSourceRef(type_val=PROMETHEUS_TYPE, uid=PROMETHEUS_UID)


class ClickHouseQuery(cogvariants.Dataquery):
    """One SQL query of the ClickHouse plugin."""

    def __init__(
        self,
        ref_id: str = "A",
        raw_sql: str = "",
        format_val: int = QueryFormat.TABLE,
        query_type: str = "table",
        editor_type: str = "sql",
        datasource: dashboard.DataSourceRef | None = None,
        hide: bool | None = None,
    ) -> None:
        """Hold the plugin's fields."""
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.format_val = int(format_val)
        self.query_type = query_type
        self.editor_type = editor_type
        self.datasource = datasource
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        """Serialize as the plugin stores it."""
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "rawSql": self.raw_sql,
            "format": self.format_val,
            "queryType": self.query_type,
            "editorType": self.editor_type,
        }
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        if self.hide is not None:
            payload["hide"] = self.hide
        return payload

    @classmethod
    def from_json(cls, data: dict[str, typing.Any]) -> typing.Self:
        """Load the plugin's JSON (unknown keys are refused: they would be lost silently)."""
        known = {"refId", "rawSql", "format", "queryType", "editorType", "datasource", "hide"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ClickHouse query fields: {unknown}")
        source = data.get("datasource")
        return cls(
            ref_id=data.get("refId", "A"),
            raw_sql=data.get("rawSql", ""),
            format_val=data.get("format", QueryFormat.TABLE),
            query_type=data.get("queryType", "table"),
            editor_type=data.get("editorType", "sql"),
            datasource=dashboard.DataSourceRef.from_json(source) if source is not None else None,
            hide=data.get("hide"),
        )


class ClickHouseQueryBuilder(cogbuilder.Builder[ClickHouseQuery]):
    """Builds a :class:`ClickHouseQuery` for a panel's ``with_target``."""

    def __init__(self, raw_sql: str, format_val: QueryFormat, ref_id: str = "A") -> None:
        """Start a query on the provisioned datasource."""
        query_type = {QueryFormat.TIME_SERIES: "timeseries", QueryFormat.TABLE: "table", QueryFormat.LOGS: "logs"}
        self._internal = ClickHouseQuery(
            ref_id=ref_id,
            raw_sql=raw_sql,
            format_val=format_val,
            query_type=query_type[format_val],
            datasource=datasource_ref(),
        )

    def build(self) -> ClickHouseQuery:
        """Return the query."""
        return self._internal


class ClickHouseAnnotationTarget(dashboard.AnnotationTarget):
    """An annotation query of the ClickHouse plugin (the SDK's target type only fits Grafana's own store)."""

    def __init__(self, raw_sql: str) -> None:
        """Hold the SQL; rows need ``time`` and ``text`` (``timeEnd``, ``tags`` optional)."""
        super().__init__()
        self.query = ClickHouseQuery(ref_id="Anno", raw_sql=raw_sql, format_val=QueryFormat.TABLE)

    def to_json(self) -> dict[str, object]:
        """Serialize as the plugin's query."""
        return self.query.to_json()


class ClickHouseAnnotationTargetBuilder(cogbuilder.Builder[dashboard.AnnotationTarget]):
    """Builds a :class:`ClickHouseAnnotationTarget`."""

    def __init__(self, raw_sql: str) -> None:
        """Wrap the SQL."""
        self._internal = ClickHouseAnnotationTarget(raw_sql)

    def build(self) -> dashboard.AnnotationTarget:
        """Return the target."""
        return self._internal


def register() -> None:
    """Teach the SDK's runtime to load the plugin's queries and Prometheus's (idempotent)."""
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=PLUGIN_TYPE, from_json_hook=ClickHouseQuery.from_json)
    )
    cogruntime.register_dataquery_variant(prometheus.variant_config())
