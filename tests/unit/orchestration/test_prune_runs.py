"""Old Dagster runs deleted from a real (ephemeral) Dagster instance, newer ones kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from orchestration.maintenance import prune_runs


@dg.asset
def probe() -> int:
    return 1


def test_prune_runs_when_runs_are_older_than_the_cutoff_then_only_those_are_deleted() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        for _ in range(3):
            assert dg.materialize([probe], instance=instance).success
        created = datetime.now(UTC)

        kept = prune_runs(instance, created - timedelta(days=1))  # every run is younger than a day
        deleted = prune_runs(instance, created + timedelta(seconds=1), batch=2)  # in batches

        assert kept == 0
        assert deleted == 3
        assert instance.get_runs_count() == 0
