"""The whole graph materialized in process with Dagster against the real warehouse and dbt; marts tie out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from adapters.warehouse.client import connect
from models.requesters import local_user
from orchestration.client import UNNAMED_LAUNCH
from orchestration.dbt_project import DBT_PROJECT_DIR
from orchestration.defs.marts.assets import tickwave_dbt_daily
from orchestration.defs.quality.assets import raw_key
from orchestration.defs.reports.assets import compliance_reports
from quality.suites import RAW_TABLES
from tests.integration.orchestration.conftest import (
    MODEL_ID,
    SYNTHETIC_DAY,
    Warehouse,
    check_outcomes,
    materialize,
    materialized,
    training_config,
)

MARTS = {
    "fct_orders",
    "fct_fills",
    "fct_round_trips",
    "positions_daily",
    "pnl_daily",
    "execution_quality",
    "execution_quality_daily",
    "model_performance_daily",
    "risk_events_daily",
    "decision_log",
    "data_quality_daily",
}
CONTRACT_SIZE = Decimal(100_000)


def realized_pnl_from_fills(rows: list[tuple[str, str, float, float, float]]) -> Decimal:
    """Net realized P&L in USD, recomputed from the raw fills: each flat-to-flat trip's cash flows minus commissions."""
    total = Decimal(0)
    trips: dict[str, tuple[Decimal, Decimal, Decimal, Decimal]] = {}  # position, cash, costs, last price
    for symbol, side, price, lots, commission in rows:  # in time order
        position, cash, costs, _ = trips.get(symbol, (Decimal(0), Decimal(0), Decimal(0), Decimal(0)))
        signed = Decimal(repr(lots)) * (1 if side == "buy" else -1)
        position += signed
        cash -= signed * Decimal(repr(price)) * CONTRACT_SIZE
        costs += Decimal(repr(commission))
        trips[symbol] = (position, cash, costs, Decimal(repr(price)))
        if position == 0:
            # the synthetic day trips close in one fill, so the exit price is this fill's
            gross = cash / Decimal(repr(price)) if symbol.startswith("USD") else cash
            total += gross - costs
            trips[symbol] = (Decimal(0), Decimal(0), Decimal(0), Decimal(0))
    return total


@dataclass(frozen=True)
class GraphRuns:
    """The whole graph in two runs: everything unpartitioned, then the daily marts for the synthetic day."""

    main: dg.ExecuteInProcessResult
    daily: dg.ExecuteInProcessResult

    @property
    def success(self) -> bool:
        return self.main.success and self.daily.success

    def materialized(self) -> set[str]:
        return materialized(self.main) | materialized(self.daily)

    def checks(self) -> dict[str, tuple[bool, str]]:
        return {**check_outcomes(self.main), **check_outcomes(self.daily)}


@pytest.fixture(scope="module")
def whole_graph(definitions: dg.Definitions, orchestration_warehouse: Warehouse) -> GraphRuns:
    raw = dg.AssetSelection.checks_for_assets(*(raw_key(table) for table in RAW_TABLES))
    daily = dg.AssetSelection.assets(tickwave_dbt_daily)
    reports = dg.AssetSelection.assets(compliance_reports)  # daily-partitioned: tests/integration/reports runs them
    main = materialize(
        definitions,
        orchestration_warehouse,
        (dg.AssetSelection.all() - daily - reports) | raw,
        run_config=training_config(),
    )
    day = str(SYNTHETIC_DAY.date())
    return GraphRuns(main, materialize(definitions, orchestration_warehouse, daily, partition_key=day))


def test_materialize_when_the_whole_graph_runs_then_every_asset_and_check_succeeds(whole_graph: GraphRuns) -> None:
    done = whole_graph.materialized()
    checks = whole_graph.checks()

    failures = [
        event.message for run in (whole_graph.main, whole_graph.daily) for event in run.all_events if event.is_failure
    ]
    assert whole_graph.success, failures
    assert MARTS <= done and {"training_dataset", "trained_model", "promotion_decision"} <= done
    assert {key for key in done if key.startswith("stg_tickwave__")} >= {"stg_tickwave__orders", "stg_tickwave__ticks"}
    quality = {key: outcome for key, outcome in checks.items() if key.endswith(":quality")}
    assert len(quality) == 10
    assert all(severity == "WARN" or passed for passed, severity in quality.values()), quality
    dbt_checks = {key: passed for key, (passed, _) in checks.items() if not key.endswith(":quality")}
    assert len(dbt_checks) > 40 and all(dbt_checks.values()), [key for key, ok in dbt_checks.items() if not ok]


def test_materialize_when_dbt_builds_succeed_then_no_target_folder_of_theirs_is_left(whole_graph: GraphRuns) -> None:
    runs = [run.run_id[:7] for run in (whole_graph.main, whole_graph.daily)]  # dagster-dbt names them so

    left = [path.name for path in (DBT_PROJECT_DIR / "target").iterdir() if any(run in path.name for run in runs)]

    assert whole_graph.success and not left  # dagster-dbt's own folders stayed: ~7 MB a scheduled build


def test_marts_when_built_then_they_tie_out_to_the_raw_tables(
    whole_graph: GraphRuns, orchestration_warehouse: Warehouse
) -> None:
    client = connect(orchestration_warehouse.settings, database=orchestration_warehouse.database)
    try:
        raw_orders = client.command("SELECT uniqExact(client_order_id) FROM orders")
        mart_orders = client.command("SELECT count() FROM fct_orders")
        raw_lots = client.command("SELECT toString(sum(toDecimal128(quantity_lots, 8))) FROM fills FINAL")
        mart_lots = client.command("SELECT toString(sum(toDecimal128(quantity_lots, 8))) FROM fct_fills")
        raw_fills = client.query(
            "SELECT symbol, side, price, quantity_lots, commission FROM fills FINAL "
            "ORDER BY symbol, filled_at_ms, fill_id"
        ).result_rows
        mart_pnl = Decimal(client.command("SELECT toString(sum(net_pnl_account)) FROM fct_round_trips"))
        daily_pnl = Decimal(client.command("SELECT toString(sum(realized_pnl_account)) FROM pnl_daily"))
        statuses = dict(client.query("SELECT status, count() FROM fct_orders GROUP BY status").result_rows)
        decisions = client.command("SELECT countIf(empty(feature_values) OR empty(probabilities)) FROM decision_log")
        dq_rows = client.command("SELECT uniqExact(dataset) FROM dq_results")
        denials = client.command("SELECT sum(denials) FROM risk_events_daily")
        kill_switch = client.query("SELECT sum(kill_switch_uses), max(max_time_to_halt_ms) FROM risk_events_daily")
        filled_per_day = client.query("SELECT day, filled_orders FROM execution_quality_daily ORDER BY symbol")
    finally:
        client.close()
    day = orchestration_warehouse.day
    assert day is not None
    assert raw_orders == mart_orders == day.orders
    assert Decimal(raw_lots) == Decimal(mart_lots) > 0
    assert statuses == {"filled": day.fills, "rejected": day.orders - day.fills}
    assert float(mart_pnl) == pytest.approx(float(realized_pnl_from_fills(raw_fills)), abs=0.01)
    assert float(daily_pnl) == pytest.approx(float(mart_pnl), abs=0.01)
    assert decisions == 0  # every order traced to its prediction and feature vector
    assert dq_rows == 10
    assert denials == day.denials
    assert kill_switch.result_rows[0] == (1, 37)
    assert [str(day_) for day_, _ in filled_per_day.result_rows] == [str(SYNTHETIC_DAY.date())] * 2
    assert sum(count for _, count in filled_per_day.result_rows) == day.fills


def test_training_when_features_pass_then_a_model_is_registered_with_its_report(
    whole_graph: GraphRuns, orchestration_warehouse: Warehouse
) -> None:
    events = {event.asset_key.to_user_string(): event for event in whole_graph.main.get_asset_materialization_events()}
    model = events["trained_model"].materialization.metadata
    decision = events["promotion_decision"].materialization.metadata

    assert str(model["model"].value).startswith(f"{MODEL_ID} v1")
    report = model["report"].value
    assert str(report).endswith("report.html") and Path(str(report)).is_file()
    assert set(model["walk_forward"].value) and set(model["holdout"].value)
    assert "promoted" in decision and decision["model"].value == f"{MODEL_ID} v1"
    client = connect(orchestration_warehouse.settings, database=orchestration_warehouse.database)
    try:
        actors = client.query(
            "SELECT action, actor FROM model_registry_events WHERE model_id = {id:String} ORDER BY occurred_at_ms",
            {"id": MODEL_ID},
        ).result_rows
    finally:
        client.close()
    run = whole_graph.main.run_id[:8]  # in process, without tags: as if launched from the UI
    assert (
        "promoted",
        f"dagster run {run} of {local_user()}, launched by {UNNAMED_LAUNCH}",
    ) in actors, actors


def test_drift_when_the_graph_ran_then_the_champion_is_measured_once_in_model_drift(
    whole_graph: GraphRuns, orchestration_warehouse: Warehouse
) -> None:
    events = {event.asset_key.to_user_string(): event for event in whole_graph.main.get_asset_materialization_events()}
    decision = events["promotion_decision"].materialization.metadata
    drift = events["model_drift"].materialization.metadata
    client = connect(orchestration_warehouse.settings, database=orchestration_warehouse.database)
    try:
        rows = client.query("SELECT model_id, model_version, training_rows FROM model_drift").result_rows
    finally:
        client.close()

    assert decision["promoted"].value is True, decision
    assert drift["champion"].value == f"{MODEL_ID} v1"
    (row,) = rows
    assert row[:2] == (MODEL_ID, 1) and row[2] > 0  # its training window's features were read back


def test_model_performance_when_a_challenger_ran_in_shadow_then_compared_with_the_champion_on_the_same_bars(
    whole_graph: GraphRuns, orchestration_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from app.cli import app, models_cmd
    from app.cli.common import console
    from models.shadow import live_performance
    from testkit.synthetic_day import CHALLENGER_ID
    from testkit.synthetic_day import MODEL_ID as SYNTHETIC_MODEL

    settings = orchestration_warehouse.settings
    settings = settings.model_copy(
        update={"clickhouse": settings.clickhouse.model_copy(update={"database": orchestration_warehouse.database})}
    )
    monkeypatch.setattr(models_cmd, "settings_or_exit", lambda: settings)
    monkeypatch.setattr(console, "_width", 250)
    client = connect(settings)
    try:
        days = (datetime.now(UTC) - SYNTHETIC_DAY).days + 2
        window = live_performance(client, days, SYNTHETIC_MODEL)
        daily = live_performance(client, days, CHALLENGER_ID, "1m", daily=True)  # the slot the challenger is in
    finally:
        client.close()
    shown = CliRunner().invoke(app, ["models", "compare", "--model-id", CHALLENGER_ID, "--days", str(days)])

    champion, challenger = window  # a challenger of another model id, beside the champion of its slot
    assert [(row.model_id, row.model_version, row.role, row.slot) for row in window] == [
        (SYNTHETIC_MODEL, 1, "champion", SYNTHETIC_MODEL),
        (CHALLENGER_ID, 1, "challenger", SYNTHETIC_MODEL),
    ]
    assert champion.scored == challenger.scored > 0  # scored on the same bars
    assert champion.log_loss is not None and challenger.log_loss is not None
    assert champion.log_loss != challenger.log_loss
    assert 0 <= (challenger.hit_rate or 0) <= 1 and challenger.stage == "challenger"
    assert [(row.day, row.role) for row in daily] == [
        (str(SYNTHETIC_DAY.date()), "champion"),
        (str(SYNTHETIC_DAY.date()), "challenger"),
    ]
    assert shown.exit_code == 0, shown.output
    assert "challenger" in shown.output and f"{challenger.log_loss - champion.log_loss:+.4f}" in shown.output
    assert SYNTHETIC_MODEL in shown.output and CHALLENGER_ID in shown.output
