"""The retention table applied to the warehouse: every table's TTL made what :mod:`adapters.retention` says.

Run right after the schema migrations (``tickwave warehouse migrate``, the warehouse service of
``tickwave up``): :func:`migrate` does both. Not a migration file, because a numbered migration is
fixed (its checksum is recorded and a changed file refused) while a TTL comes from settings an
operator may change; so at every migrate each table's TTL is read back from the engine's DDL
(``system.tables.engine_full``, what ``SHOW CREATE TABLE`` prints) and altered only where it
differs, with ``ALTER TABLE ... MODIFY TTL`` or ``REMOVE TTL``. A run with nothing to change
alters nothing.
"""

from __future__ import annotations

import logging
import re

from clickhouse_connect.driver.client import Client

from adapters.retention import TableRetention, table_retention
from tickwave.config import Settings
from tickwave.errors import ServiceError
from tickwave.warehouse.sqltext import quote_identifier

logger = logging.getLogger(__name__)

# engine_full: "<engine> PARTITION BY ... ORDER BY ... TTL <expression> SETTINGS ..."; the TTL is the last clause
# before SETTINGS (a table TTL with several rules or a WHERE is not one Tickwave writes).
_TTL = re.compile(r"\bTTL\s+(.+?)(?:\s+SETTINGS\s|$)", re.S)


def ttl_of(engine_full: str) -> str | None:
    """Return the table TTL in a table's ``engine_full`` (None when it has none)."""
    match = _TTL.search(engine_full)
    return match.group(1).strip() if match else None


def table_ttls(client: Client, database: str) -> dict[str, str | None]:
    """Return each table of ``database`` with its TTL as the engine reports it."""
    rows = client.query(
        "SELECT name, engine_full FROM system.tables WHERE database = {database:String} AND engine LIKE '%MergeTree'",
        parameters={"database": database},
    ).result_rows
    return {str(name): ttl_of(str(engine_full)) for name, engine_full in rows}


def _alter(client: Client, database: str, rule: TableRetention) -> None:
    table = f"{quote_identifier(database)}.{quote_identifier(rule.table)}"
    client.command(
        f"ALTER TABLE {table} REMOVE TTL" if rule.ttl is None else f"ALTER TABLE {table} MODIFY TTL {rule.ttl}"
    )


def apply_table_retention(client: Client, database: str, settings: Settings) -> list[str]:
    """Give every table of the retention table its TTL where the engine's differs.

    Returns:
        One line per table changed: ``table: old TTL -> new TTL``.

    Raises:
        ServiceError: when a table of the retention table is missing (migrate first).
        ConfigurationError: for retention settings the retention table refuses.
    """
    rules = table_retention(settings.retention)
    current = table_ttls(client, database)
    missing = [rule.table for rule in rules if rule.table not in current]
    if missing:
        raise ServiceError(f"database {database} has no table {', '.join(missing)}: apply the migrations first")
    changed = []
    for rule in rules:
        if current[rule.table] != rule.ttl:
            _alter(client, database, rule)
            changed.append(f"{rule.table}: {current[rule.table] or 'kept forever'} -> {rule.ttl or 'kept forever'}")
            logger.info("database=%s retention %s", database, changed[-1])
    return changed


def migrate(settings: Settings, database: str | None = None) -> tuple[list[str], list[str]]:
    """Apply the pending migrations, then the retention table's TTLs.

    Returns:
        The migrations applied and the TTLs changed.
    """
    from adapters.warehouse.client import connect
    from adapters.warehouse.migrate import migrate as apply_migrations

    target = database or settings.clickhouse.database
    applied = apply_migrations(settings, target)
    client = connect(settings, database=target)
    try:
        return applied, apply_table_retention(client, target, settings)
    finally:
        client.close()
