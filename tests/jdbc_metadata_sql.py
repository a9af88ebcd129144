"""The SQL the official JDBC driver sends when DBeaver, DataGrip and Metabase connect and browse a table.

Captured on the wire from com.clickhouse:jdbc-v2 (``fixtures/jdbc/metadata.json``); the
literals it wrote for the schema and the table stand as ``{database}`` and ``{table}``.
"""

from __future__ import annotations

import json
from pathlib import Path

METADATA = Path(__file__).with_name("fixtures") / "jdbc" / "metadata.json"


def metadata_queries(database: str, table: str) -> list[tuple[str, str]]:
    """Each query the driver sends as (the call that sends it, its SQL) for ``database``.``table``."""
    queries = json.loads(METADATA.read_text())["queries"]
    return [
        (query["call"], query["sql"].replace("{database}", database).replace("{table}", table)) for query in queries
    ]
