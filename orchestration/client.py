"""Launch a job on a running ``tickwave orchestrate`` and wait for the outcome (read over its GraphQL API).

Its webserver is read-only by default (``orchestration.read_only``): a launch then goes through
``dagster job launch`` on the instance and the code server's workspace, which only the account
that runs ``tickwave orchestrate`` can open (the state dir; the code server's socket in a 0700
folder); the daemon's run queue takes it as it takes a schedule's. With the full UI it goes
through GraphQL's ``launchRun``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urlsplit

from models.requesters import local_user
from orchestration.origin import REQUESTED_BY_TAG, UNNAMED_LAUNCH, trigger
from orchestration.service import LOCATION_NAME, REPO_ROOT, environment, instance_home
from tickwave.errors import ServiceError

if TYPE_CHECKING:
    import dagster as dg
    from dagster_graphql import DagsterGraphQLClient

    from tickwave.config import Settings

FINISHED = frozenset({"SUCCESS", "FAILURE", "CANCELED"})
__all__ = ["REQUESTED_BY_TAG", "UNNAMED_LAUNCH", "launched_by", "run_job", "submit_job", "wait_for_run"]


def launched_by(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """Name who asked for a Dagster run, for the registry's audit trail: its trigger, and whose Dagster ran it.

    A schedule or a sensor names itself when one of its ticks launched the run
    (:func:`orchestration.origin.trigger`: a tag naming one is not enough); a run submitted
    through :func:`submit_job` carries who submitted it (a claim); any other came from the UI or
    GraphQL, where Dagster knows no user.
    """
    return f"dagster run {run.run_id[:8]} of {local_user()}, launched by {trigger(instance, run)}"


@dataclass(frozen=True)
class RunOutcome:
    """A run's id, final status and where to see it."""

    run_id: str
    status: str
    url: str

    @property
    def is_success(self) -> bool:
        """True when the run succeeded."""
        return self.status == "SUCCESS"


def run_job(
    settings: Settings, address: str, job: str, timeout_s: float = 600.0, partition: str | None = None
) -> RunOutcome:
    """Submit ``job`` (for ``partition``, if it is partitioned) to the Dagster at ``address`` and wait until it ends.

    Returns:
        The outcome; ``status`` is ``TIMEOUT`` when the run had not ended after ``timeout_s``.
    """
    return wait_for_run(address, submit_job(settings, address, job, partition), timeout_s)


def submit_job(
    settings: Settings, address: str, job: str, partition: str | None = None, requested_by: str | None = None
) -> str:
    """Submit ``job`` (for ``partition``, if it is partitioned) to the Dagster at ``address``; return its run id.

    ``requested_by`` (default: the local user) goes with the run as the tag :data:`REQUESTED_BY_TAG`.
    With ``orchestration.read_only`` (the default) the run is submitted to the instance by
    ``dagster job launch`` (:func:`launch_from_cli`); otherwise over the webserver's GraphQL.
    """
    tags = {REQUESTED_BY_TAG: requested_by or local_user()}
    if partition:
        tags["dagster/partition"] = partition
    if settings.orchestration.read_only:
        return launch_from_cli(settings, job, tags)
    return _client(address).submit_job_execution(
        job, repository_location_name=LOCATION_NAME, repository_name="__repository__", tags=tags
    )


def launch_from_cli(settings: Settings, job: str, tags: dict[str, str], timeout_s: float = 300.0) -> str:
    """Submit ``job`` with ``tags`` to the running instance's queue with ``dagster job launch``; return its run id.

    It needs the instance (``<state dir>/data/dagster``) and the workspace ``tickwave orchestrate``
    wrote there (its code server's socket): the account that runs the platform.

    Raises:
        ServiceError: when Dagster refused the launch (its output is in the message).
    """
    home = instance_home(settings)
    run_id = str(uuid.uuid4())
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("dagster")),
            "job",
            "launch",
            "-w",
            str(home / "workspace.yaml"),
            "-j",
            job,
            "--tags",
            json.dumps(tags),
            "--run-id",
            run_id,
        ],
        env=environment(settings, home),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise ServiceError(f"dagster job launch {job} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return run_id


def wait_for_run(address: str, run_id: str, timeout_s: float = 600.0) -> RunOutcome:
    """Wait until run ``run_id`` ends; ``status`` is ``TIMEOUT`` when it had not ended after ``timeout_s``."""
    client = _client(address)
    deadline = time.monotonic() + timeout_s
    status = client.get_run_status(run_id).value
    while status not in FINISHED and time.monotonic() < deadline:
        time.sleep(1.0)
        status = client.get_run_status(run_id).value
    parts = _parts(address)
    return RunOutcome(
        run_id, status if status in FINISHED else "TIMEOUT", f"{parts.scheme}://{parts.netloc}/runs/{run_id}"
    )


def _parts(address: str) -> SplitResult:
    return urlsplit(address if "://" in address else f"http://{address}")


def _client(address: str) -> DagsterGraphQLClient:
    from dagster_graphql import DagsterGraphQLClient

    parts = _parts(address)
    return DagsterGraphQLClient(parts.hostname or "127.0.0.1", port_number=parts.port)
