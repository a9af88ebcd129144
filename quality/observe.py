"""What each raw table holds now: rows stored and the newest row's time, for Dagster's observations.

One query reads every table (``count()`` is answered from part metadata, the newest time from
the sorting key's max), so observing all raw tables costs a few milliseconds even on a day of
ten million ticks. Rows are counted as stored, before ReplacingMergeTree merges: the figure
is a volume signal, not an exact count (exact counts read ``FINAL``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from quality.suites import TableSuite

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

UNTIMED_COLUMN = "updated_at_ms"  # the time of a table the quality slice reads whole (model_registry)


@dataclass(frozen=True)
class TableObservation:
    """One raw table's size and newest row at one moment."""

    table: str
    rows: int
    newest_at: datetime | None  # None: the table is empty

    def lag_s(self, now: datetime) -> float | None:
        """Seconds from the newest row to ``now`` (None for an empty table)."""
        return None if self.newest_at is None else (now - self.newest_at).total_seconds()


def observe_tables(client: Client, table_suites: Mapping[str, TableSuite]) -> list[TableObservation]:
    """Return each table's rows and newest row time, in the order of ``table_suites``."""
    parts = [  # table and column names come from the suites (code), never from input
        f"SELECT '{name}' AS table_name, count() AS stored_rows, "  # noqa: S608
        f"toUnixTimestamp64Milli(max({suite.time_column or UNTIMED_COLUMN})) AS newest_ms FROM {name}"
        for name, suite in table_suites.items()
    ]
    rows = {name: (count, newest) for name, count, newest in client.query(" UNION ALL ".join(parts)).result_rows}
    observations = []
    for name in table_suites:
        count, newest_ms = rows[name]
        newest = datetime.fromtimestamp(newest_ms / 1000, UTC) if count and newest_ms > 0 else None
        observations.append(TableObservation(name, int(count), newest))
    return observations
