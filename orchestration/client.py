"""Launch a job on a running ``tickwave orchestrate`` through its GraphQL API and wait for the outcome."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urlsplit

from models.requesters import local_user
from orchestration.service import LOCATION_NAME

if TYPE_CHECKING:
    from dagster_graphql import DagsterGraphQLClient

FINISHED = frozenset({"SUCCESS", "FAILURE", "CANCELED"})
REQUESTED_BY_TAG = "tickwave/requested_by"  # who submitted a run through this client (a claim: GraphQL has no users)
UNNAMED_LAUNCH = "the Dagster UI or GraphQL, which name no user (docs/security.md: put it behind a proxy)"


def launched_by(run_id: str, tags: Mapping[str, str]) -> str:
    """Name who asked for a Dagster run, for the registry's audit trail: its trigger, and whose Dagster ran it.

    A schedule, a sensor or a backfill names itself; a run submitted through :func:`submit_job`
    carries who submitted it; any other came from the UI or GraphQL, where Dagster knows no user.
    """
    if name := tags.get("dagster/schedule_name"):
        trigger = f"schedule {name}"
    elif name := tags.get("dagster/sensor_name"):
        trigger = f"sensor {name}"
    elif name := tags.get("dagster/backfill"):
        trigger = f"backfill {name}"
    elif name := tags.get(REQUESTED_BY_TAG):
        trigger = f"{name} (submitted over GraphQL)"
    else:
        trigger = UNNAMED_LAUNCH
    return f"dagster run {run_id[:8]} of {local_user()}, launched by {trigger}"


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
