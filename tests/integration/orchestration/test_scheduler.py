"""A fresh Dagster instance, configured as `tickwave orchestrate` configures it, runs the schedules on its own.

The scheduler daemon's own iteration (``launch_scheduled_runs``) ticks over the production
definitions on a new SQLite instance with Dagster's frozen clock: nobody starts a schedule
in the UI, yet the daily compliance reports are requested at 00:30 UTC for the day before.
The instance queues the runs (its run coordinator); no run is executed here. Both storages
are ticked: SQLite (the default) and PostgreSQL (``orchestration.postgres_url``, a database
of the run's throwaway cluster), where the tick and the queued run are read back from its tables.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import InstigatorType
from dagster._core.test_utils import freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._scheduler.scheduler import launch_scheduled_runs

from orchestration.origin import trigger
from orchestration.service import DEFINITIONS_MODULE, LOCATION_NAME, POSTGRES_URL_VARIABLE, REPO_ROOT, dagster_home
from tests.plugins.postgres import PostgresCluster
from tickwave.config import load_settings

REPORTS_SCHEDULE = "compliance_reports_daily"


@dataclass(frozen=True)
class FreshInstance:
    instance: dg.DagsterInstance
    postgres: tuple[PostgresCluster, str] | None  # the cluster and database storing it, None: SQLite


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_instance(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FreshInstance]:
    """A new instance written by the same code as `tickwave orchestrate`'s (queued runs) on each storage."""
    postgres = None
    if request.param == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        database = f"dagster_{uuid.uuid4().hex[:8]}"
        monkeypatch.setenv(POSTGRES_URL_VARIABLE, cluster.create_database(database))  # as orchestrate passes it
        postgres = (cluster, database)
    home = dagster_home(load_settings(state_dir=tmp_path))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield FreshInstance(instance, postgres)


def _tick(context: WorkspaceProcessContext, at: datetime) -> None:
    with freeze_time(at):
        list(launch_scheduled_runs(context, logging.getLogger("scheduler"), at, {}))


def test_scheduler_when_a_fresh_instance_passes_0030_utc_then_it_requests_yesterdays_reports(
    fresh_instance: FreshInstance,
) -> None:
    instance = fresh_instance.instance
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name=DEFINITIONS_MODULE, working_directory=str(REPO_ROOT)),
        location_name=LOCATION_NAME,
    )
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as context:
        _tick(context, datetime(2026, 11, 21, 0, 29, tzinfo=UTC))  # the daemon's first pass: nothing due
        before = instance.get_runs()
        _tick(context, datetime(2026, 11, 21, 0, 30, 5, tzinfo=UTC))

    runs = instance.get_runs(dg.RunsFilter(tags={"dagster/schedule_name": REPORTS_SCHEDULE}))
    assert before == []
    assert [(run.job_name, run.tags["dagster/partition"]) for run in runs] == [("compliance_reports_job", "2026-11-20")]
    assert runs[0].status == dg.DagsterRunStatus.QUEUED  # handed to the instance's run queue
    state = next(
        state
        for state in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
        if state.instigator_name == REPORTS_SCHEDULE
    )
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id)
    assert [(tick.timestamp, tick.status.value) for tick in ticks] == [
        (datetime(2026, 11, 21, 0, 30, tzinfo=UTC).timestamp(), "SUCCESS")
    ]
    assert trigger(instance, runs[0]) == f"schedule {REPORTS_SCHEDULE}"  # its tick lists it
    if fresh_instance.postgres is not None:  # read back from PostgreSQL's own tables
        cluster, database = fresh_instance.postgres
        stored_tick = cluster.execute(
            database, "SELECT type, status FROM job_ticks WHERE selector_id = %s", (state.selector_id,)
        )
        stored_run = cluster.execute(
            database, "SELECT pipeline_name, status FROM runs WHERE run_id = %s", (runs[0].run_id,)
        )
        assert stored_tick == [("SCHEDULE", "SUCCESS")]
        assert stored_run == [("compliance_reports_job", "QUEUED")]
