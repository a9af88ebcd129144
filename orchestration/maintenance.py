"""Housekeeping: merge the parts of ReplacingMergeTree partitions so plain reads stop counting duplicates.

ClickHouse collapses rows with the same sorting key only when it merges parts, in the
background and at its own pace; until then a read without ``FINAL`` counts a redelivered
row twice (README: exact reads use ``FINAL``). :func:`merge_duplicates` forces that merge,
one partition at a time and only where a partition holds more than one active part, with
``OPTIMIZE TABLE ... PARTITION ID ... FINAL``: the engine's own deduplication, nothing
deleted by hand. :func:`prune_runs` deletes old Dagster runs, :func:`prune_compute_logs` the
captured stdout/stderr of old runs (a folder per run on disk, which deleting the run leaves). Run weekly by Dagster
(``orchestration/defs/maintenance``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from clickhouse_connect.driver.client import Client

from tickwave.warehouse.sqltext import quote_identifier, quote_literal

if TYPE_CHECKING:
    import dagster as dg


@dataclass(frozen=True)
class MergedTable:
    """What merging one table did."""

    table: str
    partitions: int
    parts_before: int
    parts_after: int
    rows_before: int
    rows_after: int
    seconds: float


def merge_duplicates(client: Client, database: str) -> list[MergedTable]:
    """Merge every ReplacingMergeTree partition of ``database`` that has more than one active part."""
    tables = client.query(
        "SELECT name FROM system.tables WHERE database = {database:String} AND engine LIKE '%ReplacingMergeTree' "
        "ORDER BY name",
        parameters={"database": database},
    ).result_rows
    merged: list[MergedTable] = []
    for (table,) in tables:
        parts = client.query(
            "SELECT partition_id, count(), sum(rows) FROM system.parts WHERE database = {database:String} "
            "AND table = {table:String} AND active GROUP BY partition_id ORDER BY partition_id",
            parameters={"database": database, "table": table},
        ).result_rows
        split = [partition for partition, count, _ in parts if int(count) > 1]
        if not split:
            continue
        started = time.perf_counter()
        name = f"{quote_identifier(database)}.{quote_identifier(table)}"
        for partition in split:
            client.command(f"OPTIMIZE TABLE {name} PARTITION ID {quote_literal(str(partition))} FINAL")
        after = client.query(
            "SELECT count(), sum(rows) FROM system.parts WHERE database = {database:String} "
            "AND table = {table:String} AND active",
            parameters={"database": database, "table": table},
        ).result_rows[0]
        merged.append(
            MergedTable(
                table=table,
                partitions=len(split),
                parts_before=sum(int(c) for _, c, _ in parts),
                parts_after=int(after[0]),
                rows_before=sum(int(r) for _, _, r in parts),
                rows_after=int(after[1] or 0),
                seconds=time.perf_counter() - started,
            )
        )
    return merged


def prune_runs(instance: dg.DagsterInstance, older_than: datetime, batch: int = 1000) -> int:
    """Delete the Dagster runs created before ``older_than`` (with their event logs); return how many."""
    import dagster as dg

    deleted = 0
    while old := instance.get_run_records(filters=dg.RunsFilter(created_before=older_than), limit=batch):
        for record in old:
            instance.delete_run(record.dagster_run.run_id)
        deleted += len(old)
    return deleted


def prune_compute_logs(instance: dg.DagsterInstance, older_than: datetime) -> int:
    """Delete each run's compute logs whose files were all last written before ``older_than``; return how many runs.

    Only the local compute log manager keeps them on this disk (``<base_dir>/<run id>/compute_logs/``); by age
    on disk, so the logs of runs already deleted (by :func:`prune_runs` or in the UI) go too. Another
    manager (a cloud bucket) keeps them where its own lifecycle rules apply: nothing is deleted here.
    """
    from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

    manager = instance.compute_log_manager
    if not isinstance(manager, LocalComputeLogManager) or manager.inst_data is None:
        return 0
    base = Path(manager.inst_data.config_dict["base_dir"])
    cutoff = older_than.timestamp()
    deleted = 0
    for logs in sorted(base.glob("*/compute_logs")):
        written = [path.stat().st_mtime for path in logs.rglob("*") if path.is_file()]
        if max(written, default=logs.stat().st_mtime) < cutoff:
            manager.delete_logs(prefix=[logs.parent.name])
            deleted += 1
    return deleted
