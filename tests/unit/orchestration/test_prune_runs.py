"""Old Dagster runs and compute logs deleted from real Dagster instances, newer ones kept."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from orchestration.maintenance import prune_compute_logs, prune_runs
from orchestration.service import dagster_home
from tickwave.config import load_settings


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


@dg.asset
def noisy() -> int:
    print("captured by the compute log manager")  # what the run's compute log holds
    return 1


def test_prune_compute_logs_when_a_runs_logs_are_older_than_the_cutoff_then_only_its_folder_is_deleted(
    tmp_path: Path,
) -> None:
    home = dagster_home(load_settings(state_dir=tmp_path))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        old, new = (dg.materialize([noisy], instance=instance).run_id for _ in range(2))
        folders = {run_id: home / "storage" / run_id / "compute_logs" for run_id in (old, new)}
        month_ago = (datetime.now(UTC) - timedelta(days=40)).timestamp()
        for path in folders[old].rglob("*"):
            os.utime(path, (month_ago, month_ago))

        deleted = prune_compute_logs(instance, datetime.now(UTC) - timedelta(days=30))
        again = prune_compute_logs(instance, datetime.now(UTC) - timedelta(days=30))

        assert any(path.suffix == ".out" for path in folders[new].rglob("*")), list(folders[new].rglob("*"))
        assert (deleted, again) == (1, 0)
        assert not folders[old].parent.exists() and folders[new].is_dir()
        assert (home / "storage" / "history" / "runs.db").is_file()  # the SQLite storage beside them untouched
