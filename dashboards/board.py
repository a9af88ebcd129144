"""Turn a :class:`~dashboards.panels.BoardSpec` into the Grafana foundation SDK's dashboard, and into JSON."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import candlestick, common, heatmap, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard

from dashboards.dataquery import (
    ClickHouseAnnotationTargetBuilder,
    ClickHouseQueryBuilder,
    datasource_ref,
    prometheus_ref,
)
from dashboards.panels import BoardSpec, Kind, MetricsPanelSpec, PanelSpec

GRID_WIDTH = 24
STATE_COLORS = {"ACTIVE": "green", "REDUCING": "orange", "HALTED": "red"}
ANNOTATION_COLORS = {"Signals": "blue", "Fills": "yellow"}
TAGS = ["tickwave"]


def _panel_builder(spec: PanelSpec | MetricsPanelSpec) -> Any:
    if spec.kind is Kind.TIME_SERIES:
        return timeseries.Panel()
    if spec.kind is Kind.CANDLESTICK:
        return candlestick.Panel()
    if spec.kind is Kind.TABLE:
        return table.Panel()
    if spec.kind is Kind.HEATMAP:
        return heatmap.Panel().calculate(True)
    if spec.kind is Kind.STAT:
        reduce = common.ReduceDataOptions().calcs(["lastNotNull"]).fields("/.*/").values(False)
        return stat.Panel().reduce_options(reduce)
    raise ValueError(f"{spec.title}: {spec.kind} is not a panel")


def build_panel(spec: PanelSpec, panel_id: int, position: tuple[int, int]) -> cogbuilder.Builder[dashboard.Panel]:
    """One SDK panel: its datasource, query, unit, title, description and place."""
    builder = (
        _panel_builder(spec)
        .id(panel_id)
        .title(spec.title)
        .description(spec.description)
        .datasource(datasource_ref())
        .with_target(ClickHouseQueryBuilder(spec.sql, spec.format))
        .unit(spec.unit)
        .grid_pos(dashboard.GridPos(h=spec.height, w=spec.width, x=position[0], y=position[1]))
    )
    for column, places in spec.decimals:
        builder = builder.override_by_name(column, [dashboard.DynamicConfigValue(id_val="decimals", value=places)])
    if spec.title == "Trading state":
        options = {
            state: dashboard.ValueMappingResult(text=state, color=color, index=index)
            for index, (state, color) in enumerate(STATE_COLORS.items())
        }
        builder = builder.mappings([dashboard.ValueMap(options=options)])
    return builder  # type: ignore[no-any-return]


def build_metrics_panel(
    spec: MetricsPanelSpec, panel_id: int, position: tuple[int, int]
) -> cogbuilder.Builder[dashboard.Panel]:
    """One SDK panel on the Prometheus datasource: a PromQL query per series."""
    builder = (
        _panel_builder(spec)
        .id(panel_id)
        .title(spec.title)
        .description(spec.description)
        .datasource(prometheus_ref())
        .unit(spec.unit)
        .grid_pos(dashboard.GridPos(h=spec.height, w=spec.width, x=position[0], y=position[1]))
    )
    for index, (legend, expression) in enumerate(spec.queries):
        query = prometheus.Dataquery().expr(expression).legend_format(legend).ref_id(chr(ord("A") + index))
        builder = builder.with_target(query.datasource(prometheus_ref()))
    return builder  # type: ignore[no-any-return]


def _layout(panels: tuple[PanelSpec | MetricsPanelSpec, ...]) -> list[tuple[int, int]]:
    # Left to right, top to bottom; a panel that does not fit starts a new row under the tallest.
    positions: list[tuple[int, int]] = []
    x = y = row_height = 0
    for spec in panels:
        if x + spec.width > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        positions.append((x, y))
        x += spec.width
        row_height = max(row_height, spec.height)
    return positions


def build_dashboard(board: BoardSpec) -> dashboard.Dashboard:
    """The SDK dashboard of ``board``."""
    builder = (
        dashboard_builder.Dashboard(board.title)
        .uid(board.uid)
        .description(board.description)
        .tags(TAGS)
        .refresh(board.refresh)
        .time(board.time_from, "now")
        .timezone("utc")
        .editable()
    )
    if board.symbols:
        first = board.symbols[0]
        builder = builder.with_variable(
            dashboard_builder.CustomVariable("symbol")
            .label("Symbol")
            .values(",".join(board.symbols))
            .current(dashboard.VariableOption(selected=True, text=first, value=first))
        )
    for annotation in board.annotations:
        builder = builder.annotation(
            dashboard_builder.AnnotationQuery()
            .name(annotation.title)
            .datasource(datasource_ref())
            .enable(True)
            .icon_color(ANNOTATION_COLORS.get(annotation.title, "purple"))
            .target(ClickHouseAnnotationTargetBuilder(annotation.sql))
        )
    every: tuple[PanelSpec | MetricsPanelSpec, ...] = (*board.panels, *board.metrics_panels)
    for panel_id, (spec, position) in enumerate(zip(every, _layout(every), strict=True), start=1):
        if isinstance(spec, MetricsPanelSpec):
            builder = builder.with_panel(build_metrics_panel(spec, panel_id, position))
        else:
            builder = builder.with_panel(build_panel(spec, panel_id, position))
    return builder.build()


def dashboard_json(board: BoardSpec) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (plain dicts and lists)."""
    loaded: dict[str, Any] = json.loads(json.dumps(build_dashboard(board), cls=JSONEncoder))
    return loaded


def render(document: Any) -> str:
    """Deterministic JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(document, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
