"""Launch a job on a running ``tickwave orchestrate`` through its GraphQL API and wait for the outcome."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urlsplit

from models.requesters import local_user
from orchestration.origin import REQUESTED_BY_TAG, UNNAMED_LAUNCH, trigger
from orchestration.service import LOCATION_NAME

if TYPE_CHECKING:
    import dagster as dg
    from dagster_graphql import DagsterGraphQLClient

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


def run_job(address: str, job: str, timeout_s: float = 600.0, partition: str | None = None) -> RunOutcome:
    """Submit ``job`` (for ``partition``, if it is partitioned) to the Dagster at ``address`` and wait until it ends.

    Returns:
        The outcome; ``status`` is ``TIMEOUT`` when the run had not ended after ``timeout_s``.
    """
    return wait_for_run(address, submit_job(address, job, partition), timeout_s)


def submit_job(address: str, job: str, partition: str | None = None, requested_by: str | None = None) -> str:
    """Submit ``job`` (for ``partition``, if it is partitioned) to the Dagster at ``address``; return its run id.

    ``requested_by`` (default: the local user) goes with the run as the tag :data:`REQUESTED_BY_TAG`.
    """
    tags = {REQUESTED_BY_TAG: requested_by or local_user()}
    if partition:
        tags["dagster/partition"] = partition
    return _client(address).submit_job_execution(
        job, repository_location_name=LOCATION_NAME, repository_name="__repository__", tags=tags
    )


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
