"""A launch names data, never code or places; who launched a run is read from what Dagster recorded.

Every job's run-config schema is walked against an allow-list of the fields a person may set at
launch (a training window; the rest are empty shapes), and the launches that once ran a program
of the caller's are sent, as any local process can, to a running `tickwave orchestrate` with the
full UI (``orchestration.read_only = false``): each is refused and its program never runs. A run
launched over GraphQL with a forged ``dagster/schedule_name`` tag is recorded as a launch from
GraphQL, in the warehouse, before its reports are written, and the record stays once the run is
deleted in Dagster.
"""

from __future__ import annotations

import re
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._config.config_type import ConfigType, ConfigTypeKind

from adapters.warehouse.client import connect
from orchestration.dbt_project import DBT_PROJECT_DIR
from orchestration.origin import SCHEDULE_TAG
from orchestration.service import LOCATION_NAME
from tests.integration.orchestration.conftest import Orchestrate, orchestrate
from tests.integration.orchestration.test_orchestrate import graphql
from tickwave.config import Settings

# Every run-config field a launch may set, by dotted path ('*': any op's or resource's name). Closed:
# a field not matched here fails the test. Resources and the executor are bound when the definitions
# load, so their config is an empty shape; an op's config holds the data a person chooses.
PERMITTED = (
    "execution",
    "execution.config",
    "loggers",
    "loggers.console",
    "loggers.console.config",
    "loggers.console.config.log_level",  # how much the run logs
    "loggers.console.config.name",  # the logger's name in the run's log
    "resources",
    "resources.*",
    "resources.*.config",
    "ops",
    "ops.*",
    "ops.*.config",
    "ops.training_dataset.config.symbols",  # the training window: symbols and a range, or the last days
    "ops.training_dataset.config.from_ms",
    "ops.training_dataset.config.to_ms",
    "ops.training_dataset.config.days",
)
# Where a field may take keys it does not list: the implicit asset job (__ASSET_JOB) takes any key under
# `resources` and `ops` (a key naming no resource or op reaches nothing) and anything as the config of an
# op that declares none (never read). Nowhere else.
LOOSE = ("resources", "ops", "ops.*.config")
SHAPES = (ConfigTypeKind.STRICT_SHAPE, ConfigTypeKind.PERMISSIVE_SHAPE, ConfigTypeKind.SELECTOR)


def config_fields(config_type: ConfigType, path: str = "") -> Iterator[tuple[str, ConfigType]]:
    """Yield every field of a config type with its dotted path, depth first (into lists, maps and optionals)."""
    if config_type.kind in SHAPES:
        for name, field in config_type.fields.items():  # type: ignore[attr-defined]
            inner = f"{path}.{name}" if path else name
            yield inner, field.config_type
            yield from config_fields(field.config_type, inner)
    elif config_type.kind in (ConfigTypeKind.ARRAY, ConfigTypeKind.NONEABLE):
        yield from config_fields(config_type.inner_type, path)  # type: ignore[attr-defined]
    elif config_type.kind == ConfigTypeKind.MAP:
        yield from config_fields(config_type.inner_type, f"{path}.*")  # type: ignore[attr-defined]


def refused_fields(config_type: ConfigType) -> list[str]:
    """The fields outside :data:`PERMITTED`, and those outside :data:`LOOSE` that take any value or extra keys."""

    def matches(path: str, patterns: tuple[str, ...]) -> bool:  # '*' stands for one name, never for a dot
        return any(re.fullmatch(re.escape(pattern).replace(r"\*", "[^.]+"), path) for pattern in patterns)

    loose = (ConfigTypeKind.ANY, ConfigTypeKind.PERMISSIVE_SHAPE)
    return [
        path
        for path, field in config_fields(config_type)
        if not matches(path, PERMITTED) or (field.kind in loose and not matches(path, LOOSE))
    ]


def test_run_config_when_any_job_is_launched_then_it_can_set_no_program_folder_state_dir_secret_or_clock(
    definitions: dg.Definitions,
) -> None:
    repository = definitions.get_repository_def()
    jobs = repository.get_all_jobs()  # the asset jobs, the schedules' and sensors' jobs, and __ASSET_JOB

    refused = {job.name: found for job in jobs if (found := refused_fields(job.run_config_schema.config_type))}

    assert {"dbt_marts", "train_model", "compliance_reports_job", "__ASSET_JOB"} <= {job.name for job in jobs}
    assert refused == {}


def test_run_config_when_walked_then_a_configurable_resource_is_caught() -> None:
    # The walk itself: a resource bound the way Dagster's docs show (an instance) is configurable at launch.
    from orchestration.defs.training.assets import training_dataset
    from orchestration.resources import TickwaveResource

    resources = {"tickwave": TickwaveResource()}
    job = dg.Definitions(assets=[training_dataset], resources=resources).get_implicit_global_asset_job_def()

    assert {"resources.tickwave.config.state_dir", "resources.tickwave.config.clock_ms"} <= set(
        refused_fields(job.run_config_schema.config_type)
    )


LAUNCH = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}
"""
RUN_STATUS = "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"
DELETE = "mutation($id: String!) { deletePipelineRun(runId: $id) { __typename } }"
RUN_COUNT = "{ runsOrError { __typename ... on Runs { count } } }"


def launch(port: int, job: str, run_config: dict[str, Any], tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Send GraphQL's ``launchRun`` as any local process can; return its answer."""
    params = {
        "selector": {"repositoryLocationName": LOCATION_NAME, "repositoryName": "__repository__", "jobName": job},
        "runConfigData": run_config,
        "executionMetadata": {"tags": [{"key": key, "value": value} for key, value in (tags or {}).items()]},
    }
    answer = graphql(port, LAUNCH, {"params": params})
    return dict(answer["data"]["launchRun"])  # type: ignore[index]


def run_count(port: int) -> int:
    return int(graphql(port, RUN_COUNT)["data"]["runsOrError"]["count"])  # type: ignore[index]


@pytest.fixture(scope="module")
def full_ui(warehouse_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orchestrate]:
    """`tickwave orchestrate` with the full UI (``orchestration.read_only = false``), runs in SQLite, schedules off."""
    log = tmp_path_factory.mktemp("launchpad") / "orchestrate.log"
    variables = {"TICKWAVE_ORCHESTRATION_READ_ONLY": "false", "TICKWAVE_ORCHESTRATION_SCHEDULES_ENABLED": "false"}
    with orchestrate(warehouse_settings, log, variables) as running:
        yield running


def program_writing(marker: Path) -> Path:
    """A program of the caller's: it writes ``marker`` (and would do anything else) when run."""
    script = marker.with_name("not-dbt.sh")
    script.write_text(f"#!/bin/sh\necho ran >> {marker}\nexit 0\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


@pytest.mark.parametrize(
    ("resource", "field"),
    [("dbt", "dbt_executable"), ("io_manager", "base_dir"), ("tickwave", "state_dir")],
)
def test_graphql_launch_when_run_config_names_a_program_or_folder_then_refused_and_nothing_of_it_runs(
    full_ui: Orchestrate, tmp_path: Path, resource: str, field: str
) -> None:
    marker = tmp_path / "ran"
    place = tmp_path / "elsewhere"  # a folder of the caller's: nothing may be written under it
    config = {field: str(place)}
    if field == "dbt_executable":  # with the project, as dbt's resource requires it once configured at launch
        config = {field: str(program_writing(marker)), "project_dir": str(DBT_PROJECT_DIR)}
    runs_before = run_count(full_ui.port)

    answer = launch(full_ui.port, "dbt_marts", {"resources": {resource: {"config": config}}})
    time.sleep(5.0)  # a run created anyway would be dequeued and started by now

    assert answer["__typename"] == "RunConfigValidationInvalid", answer
    assert any(field in error["message"] for error in answer["errors"]), answer
    assert run_count(full_ui.port) == runs_before
    assert not marker.exists() and not place.exists()


REPORT_DAY = "2021-03-04"  # a day no other test reports


def wait_until_ended(port: int, run_id: str, timeout_s: float = 300.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = graphql(port, RUN_STATUS, {"id": run_id})["data"]["runOrError"]["status"]  # type: ignore[index]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return str(status)
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not end in {timeout_s} s")


def test_graphql_launch_when_it_forges_a_schedule_tag_and_deletes_its_run_then_the_warehouse_names_graphql(
    full_ui: Orchestrate, warehouse_settings: Settings
) -> None:
    forged = {SCHEDULE_TAG: "compliance_reports_daily", "dagster/partition": REPORT_DAY}
    try:
        answer = launch(full_ui.port, "compliance_reports_job", {}, forged)
        assert answer["__typename"] == "LaunchRunSuccess", answer
        run_id = answer["run"]["runId"]
        status = wait_until_ended(full_ui.port, run_id)
        deleted = graphql(full_ui.port, DELETE, {"id": run_id})["data"]["deletePipelineRun"]  # type: ignore[index]
        after = graphql(full_ui.port, RUN_STATUS, {"id": run_id})["data"]["runOrError"]  # type: ignore[index]
    finally:
        shutil.rmtree(warehouse_settings.state_path / "reports" / REPORT_DAY, ignore_errors=True)

    client = connect(warehouse_settings, database=full_ui.database)
    try:
        rows = client.query(
            "SELECT job_name, partition_key, detail FROM pipeline_runs WHERE run_id = {id:String}", {"id": run_id}
        ).result_rows
    finally:
        client.close()
    assert status == "SUCCESS", full_ui.log.read_text()[-3000:]
    assert deleted["__typename"] == "DeletePipelineRunSuccess" and after["__typename"] == "RunNotFoundError"
    assert rows, "the run left no record in the warehouse once deleted in Dagster"
    assert {(job, partition) for job, partition, _ in rows} == {("compliance_reports_job", REPORT_DAY)}
    details = [detail for _, _, detail in rows]
    assert all("the Dagster UI or GraphQL" in detail and "no tick of it launched" in detail for detail in details)
    assert not any("launched by schedule" in detail for detail in details), details
