"""Active parts per warehouse table: what the engine's merges keep down and every insert adds.

One query for `tickwave status`, the ops board and the soak. Each insert makes a part and
background merges join them; a partition past :data:`PARTS_TO_DELAY_INSERT` active parts (the
engine's ``parts_to_delay_insert``) slows its inserts down, and past twice that they are
refused, so a count that keeps rising means merges do not keep up with the inserts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

PARTS_TO_DELAY_INSERT = 150  # the MergeTree default, per partition

ACTIVE_PARTS_SQL = """SELECT table, max(in_partition) AS busiest_partition_parts, sum(in_partition) AS parts
FROM (
  SELECT table, partition, count() AS in_partition FROM system.parts
  WHERE active AND database = currentDatabase()
  GROUP BY table, partition
)
GROUP BY table
ORDER BY busiest_partition_parts DESC, table"""


def active_parts(client: Client) -> dict[str, tuple[int, int]]:
    """Return each table's active parts: (in its busiest partition, in all), busiest first."""
    rows = client.query(ACTIVE_PARTS_SQL).result_rows
    return {str(table): (int(busiest), int(parts)) for table, busiest, parts in rows}
