"""The warehouse's raw tables as external assets: written by the streams and execution processes, not by Dagster."""

from __future__ import annotations

import dagster as dg

from quality.suites import RAW_TABLES

GRAINS = {
    "ticks": "one row per tick (symbol, time_ms, seq)",
    "bars_1s": "one row per 1 s bar (symbol, start_ms)",
    "bars_1m": "one row per 1 min bar (symbol, start_ms)",
    "features": "one row per feature vector (symbol, timeframe, bar_start_ms)",
    "predictions": "one row per model output (symbol, timeframe, model_id, model_version, bar_start_ms)",
    "signals": "one row per signal (signal_id)",
    "orders": "one row per order and state change; current state = newest updated_at_ms",
    "fills": "one row per fill (fill_id)",
    "risk_events": "one row per risk event (risk_event_id)",
    "model_registry": "one row per model version (model_id, model_version)",
}
WRITERS = {
    "ticks": "streams",
    "bars_1s": "streams",
    "bars_1m": "streams",
    "features": "streams",
    "predictions": "streams",
    "signals": "streams",
    "orders": "execution",
    "fills": "execution",
    "risk_events": "execution",
    "model_registry": "training",
}


def raw_key(table: str) -> dg.AssetKey:
    """The asset key of a raw table (dbt's source keys are the same: source ``tickwave``)."""
    return dg.AssetKey(["tickwave", table])


RAW_SPECS = [
    dg.AssetSpec(
        raw_key(table),
        group_name="raw",
        kinds={"clickhouse"},
        owners=[],
        description=f"Warehouse table `{table}`, written by the {WRITERS[table]} process: {GRAINS[table]}.",
        metadata={"table": table, "writer": WRITERS[table]},
    )
    for table in RAW_TABLES
]


@dg.definitions
def raw_tables() -> dg.Definitions:
    """Declare the raw tables (external: observed and checked, never materialized here)."""
    return dg.Definitions(assets=RAW_SPECS)
