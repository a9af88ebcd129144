"""The definitions load, their shape is pinned, and schedules and sensors answer as intended at given times."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time

import dagster as dg
import pytest
from dagster._utils.schedules import cron_string_iterator

from adapters.warehouse.client import connect
from orchestration.defs.marts.assets import WAITING_FOR_STAGING
from orchestration.resources import TickwaveResource
from tests.integration.orchestration.conftest import Warehouse

RAW = [
    "bars_1m",
    "bars_1s",
    "dq_results",
    "features",
    "fills",
    "model_drift",
    "model_registry",
    "model_registry_events",
    "order_events",
    "orders",
    "predictions",
    "risk_events",
    "signals",
    "ticks",
]
STAGING = RAW
COMPLIANCE_VIEWS = [
    "algorithm_changes",
    "algorithm_inventory",
    "data_quality",
    "decision_log",
    "execution_quality",
    "order_audit_trail",
    "pnl_trips",
    "positions_close",
    "risk_controls",
    "trade_blotter",
]
REPORTS = [
    "algorithm_changes",
    "daily_summary",
    "decision_log",
    "execution_quality",
    "order_audit_trail",
    "risk_controls",
    "trade_blotter",
]
MARTS = [
    "data_quality_daily",
    "decision_log",
    "execution_quality",
    "execution_quality_daily",
    "fct_fills",
    "fct_orders",
    "fct_round_trips",
    "int_account_rates",
    "int_fills_positioned",
    "model_performance_daily",
    "pnl_daily",
    "positions_daily",
    "risk_events_daily",
]
SNAPSHOT_ASSETS = sorted(
    [f"tickwave/{table}" for table in RAW]
    + [f"stg_tickwave__{table}" for table in STAGING]
    + MARTS
    + [
        "training_dataset",
        "trained_model",
        "promotion_decision",
        "model_drift",
        "warehouse_merged",
        "run_history_pruned",
        "report_folders_pruned",
    ]
    + [f"compliance_{view}" for view in COMPLIANCE_VIEWS]
    + [f"compliance/{report}" for report in REPORTS]
)
QUALITY_CHECKED = [
    "bars_1m",
    "bars_1s",
    "features",
    "fills",
    "model_registry",
    "orders",
    "predictions",
    "risk_events",
    "signals",
    "ticks",
]
SNAPSHOT_JOBS = {
    "dbt_marts",
    "dbt_daily_marts",
    "model_performance",
    "quality_checks",
    "train_model",
    "maintenance",
    "measure_drift",
    "compliance_reports_job",
}
SNAPSHOT_SCHEDULES = {
    "retrain_nightly": ("0 2 * * *", "train_model"),
    "dbt_marts_every_15_minutes": ("*/15 * * * *", "dbt_marts"),
    "dbt_daily_marts_every_15_minutes": ("*/15 * * * *", "dbt_daily_marts"),
    "quality_hourly": ("0 * * * *", "quality_checks"),
    "maintenance_weekly": ("0 3 * * 6", "maintenance"),
    "model_drift_hourly": ("15 * * * *", "measure_drift"),
    "compliance_reports_daily": ("30 0 * * *", "compliance_reports_job"),
}
SNAPSHOT_SENSORS = {
    "retrain_on_new_data": "train_model",
    "model_performance_on_new_champion": "model_performance",
    "retrain_on_drift": "train_model",
    "raw_tables_observed": None,  # these five request no run
    "pipeline_runs_recorded": None,
    "compliance_reports_succeeded": None,
    "compliance_reports_failed": None,
    "compliance_reports_late": None,
}


def test_definitions_when_loaded_then_they_validate_and_match_the_snapshot(definitions: dg.Definitions) -> None:
    dg.Definitions.validate_loadable(definitions)
    graph = definitions.resolve_asset_graph()
    checks = {key.to_user_string() for key in graph.asset_check_keys}
    quality = sorted(key.split(":")[0].removeprefix("tickwave/") for key in checks if key.endswith(":quality"))
    jobs = {job.name for job in definitions.resolve_all_job_defs()} - {"__ASSET_JOB"}
    schedules = {s.name: (s.cron_schedule, s.job_name) for s in definitions.schedules or []}
    sensors = {s.name: s.job_name if s.has_jobs else None for s in definitions.sensors or []}

    assert sorted(key.to_user_string() for key in graph.get_all_asset_keys()) == SNAPSHOT_ASSETS
    assert quality == QUALITY_CHECKED
    assert len(checks) == 95  # 10 quality checks + the dbt tests of severity error
    assert jobs == SNAPSHOT_JOBS and schedules == SNAPSHOT_SCHEDULES and sensors == SNAPSHOT_SENSORS
    assert all(s.execution_timezone == "UTC" for s in definitions.schedules or [])
    # a fresh instance runs them all: nobody has to find the toggles in the UI
    assert {s.name: s.default_status for s in definitions.schedules or []} == dict.fromkeys(
        SNAPSHOT_SCHEDULES, dg.DefaultScheduleStatus.RUNNING
    )
    assert {s.name: s.default_status for s in definitions.sensors or []} == dict.fromkeys(
        SNAPSHOT_SENSORS, dg.DefaultSensorStatus.RUNNING
    )
    # the gate: the training job runs the features' blocking check with the training assets
    check = next(c for c in definitions.asset_checks or [] if "features" in str(next(iter(c.check_keys))))
    assert all(spec.blocking for spec in check.check_specs)
    # the daily marts are daily-partitioned (UTC), the rest of the graph is not
    partitioned = {key.to_user_string() for key in graph.get_all_asset_keys() if graph.get(key).partitions_def}
    assert partitioned == {
        "execution_quality_daily",
        "model_performance_daily",
        "data_quality_daily",
        *(f"compliance/{report}" for report in REPORTS),
    }


def test_definitions_when_schedules_are_disabled_then_schedules_and_launching_sensors_start_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orchestration.definitions import defs

    monkeypatch.setenv("TICKWAVE_ORCHESTRATION_SCHEDULES_ENABLED", "false")

    loaded = defs()

    schedules = {s.name: s.default_status for s in loaded.schedules or []}
    sensors = {s.name: s.default_status for s in loaded.sensors or []}
    assert schedules == dict.fromkeys(SNAPSHOT_SCHEDULES, dg.DefaultScheduleStatus.STOPPED)
    launching = {name for name, job in SNAPSHOT_SENSORS.items() if job}
    assert {name for name, status in sensors.items() if status == dg.DefaultSensorStatus.STOPPED} == launching
    assert set(sensors) == set(SNAPSHOT_SENSORS)  # the recording sensors keep running: they launch nothing


def test_reports_schedule_when_compared_with_the_due_times_then_reports_run_before_they_count_as_late() -> None:
    from orchestration.defs.reports.assets import REPORTS_AT_UTC
    from tickwave.config import load_settings

    settings = load_settings()
    at = time(*REPORTS_AT_UTC)

    assert at == time(0, 30)  # the daily reports at 00:30 UTC, for the day before
    assert at < time.fromisoformat(settings.orchestration.late_reports_sensor_utc)  # the late sensor: 01:00
    assert at < time.fromisoformat(settings.dashboards.missing_report_alert_utc)  # the board's alert: 06:00


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("retrain_nightly", datetime(2026, 11, 20, 2, 0, 1, tzinfo=UTC), datetime(2026, 11, 21, 2, 0, tzinfo=UTC)),
        (
            "dbt_marts_every_15_minutes",
            datetime(2026, 11, 20, 9, 7, tzinfo=UTC),
            datetime(2026, 11, 20, 9, 15, tzinfo=UTC),
        ),
        ("quality_hourly", datetime(2026, 11, 20, 23, 59, tzinfo=UTC), datetime(2026, 11, 21, 0, 0, tzinfo=UTC)),
        (
            "compliance_reports_daily",
            datetime(2026, 11, 21, 0, 0, tzinfo=UTC),
            datetime(2026, 11, 21, 0, 30, tzinfo=UTC),
        ),
    ],
)
def test_schedule_when_evaluated_at_a_time_then_it_requests_its_job_at_the_next_fire_time(
    definitions: dg.Definitions, schedule: str, after: datetime, expected: datetime
) -> None:
    definition = definitions.resolve_schedule_def(schedule)
    next_fire = next(cron_string_iterator(after.timestamp(), definition.cron_schedule, "UTC"))
    data = definition.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=expected))

    assert next_fire == expected
    assert len(data.run_requests or []) == 1
    assert data.run_requests is not None and data.run_requests[0].tags["dagster/schedule_name"] == schedule
    if schedule == "compliance_reports_daily":  # the previous day, once it has ended
        assert data.run_requests[0].partition_key == "2026-11-20"


@pytest.mark.parametrize(
    ("at", "partitions"),
    [
        (datetime(2026, 11, 20, 9, 15, tzinfo=UTC), ["2026-11-20"]),
        (datetime(2026, 12, 1, 0, 15, tzinfo=UTC), ["2026-12-01", "2026-11-30"]),  # the last rows of November
    ],
)
def test_daily_marts_schedule_when_evaluated_then_it_requests_today_and_on_the_1st_yesterday(
    definitions: dg.Definitions, instance: dg.DagsterInstance, at: datetime, partitions: list[str]
) -> None:
    schedule = definitions.resolve_schedule_def("dbt_daily_marts_every_15_minutes")
    marts_ran(instance)

    context = dg.build_schedule_context(
        scheduled_execution_time=at, repository_def=definitions.get_repository_def(), instance=instance
    )
    data = schedule.evaluate_tick(context)

    assert [request.partition_key for request in data.run_requests or []] == partitions


def test_daily_marts_schedule_when_no_dbt_marts_run_succeeded_yet_then_it_waits(
    definitions: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    schedule = definitions.resolve_schedule_def("dbt_daily_marts_every_15_minutes")
    marts_ran(instance, dg.DagsterRunStatus.FAILURE)  # a failed run built nothing either

    at = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)
    context = dg.build_schedule_context(
        scheduled_execution_time=at, repository_def=definitions.get_repository_def(), instance=instance
    )
    data = schedule.evaluate_tick(context)

    assert not data.run_requests and data.skip_message == WAITING_FOR_STAGING


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A persistent instance of this test's own (schedule contexts refuse an ephemeral one), with no run yet."""
    with dg.instance_for_test() as test_instance:
        yield test_instance


def marts_ran(instance: dg.DagsterInstance, status: dg.DagsterRunStatus = dg.DagsterRunStatus.SUCCESS) -> None:
    instance.add_run(dg.DagsterRun(job_name="dbt_marts", run_id=str(uuid.uuid4()), status=status))


def _context(
    definitions: dg.Definitions,
    warehouse: Warehouse,
    model_id: str,
    instance: dg.DagsterInstance,
    cursor: str | None = None,
) -> dg.SensorEvaluationContext:
    resource = TickwaveResource(
        state_dir=str(warehouse.settings.state_path), database=warehouse.database, model_id=model_id
    )
    return dg.build_sensor_context(
        cursor=cursor,
        resources={"tickwave": resource},
        instance=instance,
        repository_def=definitions.get_repository_def(),
    )


def _set_champion(warehouse: Warehouse, model_id: str, version: int, trained_to: str) -> None:
    client = connect(warehouse.settings, database=warehouse.database)
    try:
        newest = client.command(f"SELECT {trained_to}")
        # A champion fills the slot (model id, timeframe): its row names the timeframe, as registration writes it.
        client.insert(
            "model_registry",
            [
                [
                    model_id,
                    version,
                    "champion",
                    "xgboost",
                    "",
                    "",
                    "",
                    {"timeframe": "1m"},
                    newest,
                    newest,
                    newest,
                    newest,
                ]
            ],
            column_names=[
                "model_id",
                "model_version",
                "stage",
                "framework",
                "artifact_uri",
                "artifact_sha256",
                "feature_schema_hash",
                "params",
                "trained_from_ms",
                "trained_to_ms",
                "created_at_ms",
                "updated_at_ms",
            ],
        )
    finally:
        client.close()


def test_sensors_when_evaluated_then_they_request_retraining_and_the_performance_mart_only_when_due(
    definitions: dg.Definitions, orchestration_warehouse: Warehouse, instance: dg.DagsterInstance
) -> None:
    def context(cursor: str | None = None) -> dg.SensorEvaluationContext:
        return _context(definitions, orchestration_warehouse, "m_sensor", instance, cursor)

    retrain_on_new_data = definitions.resolve_sensor_def("retrain_on_new_data")
    model_performance_on_new_champion = definitions.resolve_sensor_def("model_performance_on_new_champion")
    no_champion = retrain_on_new_data.evaluate_tick(context())
    no_champion_yet = model_performance_on_new_champion.evaluate_tick(context())
    _set_champion(orchestration_warehouse, "m_sensor", 3, "(SELECT max(start_ms) FROM bars_1m)")
    trained_on_everything = retrain_on_new_data.evaluate_tick(context())
    before_staging = model_performance_on_new_champion.evaluate_tick(context())
    marts_ran(instance)
    new_champion = model_performance_on_new_champion.evaluate_tick(context())
    seen = model_performance_on_new_champion.evaluate_tick(context("m_sensor:3"))

    assert [request.run_key for request in no_champion.run_requests or []] == ["retrain-after-0"]
    assert not no_champion_yet.run_requests and "m_sensor has no champion" in str(no_champion_yet.skip_message)
    assert not trained_on_everything.run_requests  # no labelled bar after the champion's data
    assert str(trained_on_everything.skip_message).startswith("0 new labelled 1m bars")
    assert not before_staging.run_requests and before_staging.skip_message == WAITING_FOR_STAGING
    assert before_staging.cursor is None  # the champion is asked about again once staging is built
    assert [request.run_key for request in new_champion.run_requests or []] == ["champion-m_sensor:3"]
    assert new_champion.run_requests is not None
    assert new_champion.run_requests[0].partition_key == str(datetime.now(UTC).date())
    assert new_champion.cursor == "m_sensor:3"
    assert not seen.run_requests and "already seen" in str(seen.skip_message)
