"""Launch a job on a running ``tickwave orchestrate`` through its GraphQL API and wait for the outcome."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from orchestration.service import LOCATION_NAME

FINISHED = frozenset({"SUCCESS", "FAILURE", "CANCELED"})


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
    from dagster_graphql import DagsterGraphQLClient

    parts = urlsplit(address if "://" in address else f"http://{address}")
    client = DagsterGraphQLClient(parts.hostname or "127.0.0.1", port_number=parts.port)
    tags = {"dagster/partition": partition} if partition else None
    run_id = client.submit_job_execution(job, repository_location_name=LOCATION_NAME,
                                         repository_name="__repository__", tags=tags)  # fmt: skip
    deadline = time.monotonic() + timeout_s
    status = client.get_run_status(run_id).value
    while status not in FINISHED and time.monotonic() < deadline:
        time.sleep(1.0)
        status = client.get_run_status(run_id).value
    return RunOutcome(
        run_id, status if status in FINISHED else "TIMEOUT", f"{parts.scheme}://{parts.netloc}/runs/{run_id}"
    )
