"""Schema migrations: numbered SQL files applied once, in order, recorded in the warehouse.

``migrations/NNNN_<name>.sql`` holds plain ClickHouse SQL with unqualified table names;
the runner executes it with the configured database as the current one, so the same
files run unchanged on a real ClickHouse server (or into a test's own database). Every
statement is idempotent (``IF NOT EXISTS``), so a run interrupted half-way is simply run
again. Applied migrations are recorded in ``schema_migrations`` with a checksum: a file
changed after it was applied is refused (write a new migration instead).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from tickwave import warehouse
from tickwave.config import Settings
from tickwave.errors import ConfigurationError
from tickwave.warehouse.sqltext import tokens

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(warehouse.__file__).with_name("migrations")  # the schema is a definition: the kernel's
MIGRATIONS_TABLE = "schema_migrations"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

CREATE_MIGRATIONS_TABLE = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE}
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    """One numbered migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def label(self) -> str:
        """``0001_market_data`` style name."""
        return f"{self.version:04d}_{self.name}"


def split_statements(sql: str) -> list[str]:
    """Split SQL into statements at top-level semicolons (not inside strings, identifiers or comments)."""
    statements: list[str] = []
    start = 0
    for token in tokens(sql):
        if token.kind == "other" and token.text == ";" and token.depth == 0:
            statements.append(sql[start : token.start])
            start = token.end
    statements.append(sql[start:])
    return [statement.strip() for statement in statements if any(True for _ in tokens(statement))]


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Return the migrations in ``directory``, ordered, with unique version numbers.

    Raises:
        ConfigurationError: for a misnamed file or a repeated version.
    """
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise ConfigurationError(f"migration {path.name}: expected NNNN_lower_snake_name.sql")
        version = int(match.group(1))
        if version in migrations:
            raise ConfigurationError(f"migration version {version:04d} appears twice in {directory}")
        migrations[version] = Migration(version, match.group(2), path.read_text())
    return [migrations[version] for version in sorted(migrations)]


def _applied(client: Client) -> dict[int, str]:
    query = f"SELECT version, argMax(checksum, applied_at) FROM {MIGRATIONS_TABLE} GROUP BY version"  # noqa: S608
    rows = client.query(query).result_rows
    return {int(version): str(checksum) for version, checksum in rows}


def apply_migrations(client: Client, database: str, migrations: list[Migration]) -> list[str]:
    """Create ``database`` and apply the migrations it has not recorded yet.

    Args:
        client: a read-write client (its current database is switched to ``database``).
        database: where the tables live.
        migrations: from :func:`load_migrations`.

    Returns:
        The labels of the migrations applied by this call.

    Raises:
        ConfigurationError: for an invalid database name or a migration changed after it was applied.
    """
    if not _DATABASE_NAME.match(database):
        raise ConfigurationError(f"clickhouse.database {database!r}: expected letters, digits and underscores")
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.database = database
    client.command(CREATE_MIGRATIONS_TABLE)
    applied = _applied(client)
    done: list[str] = []
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is not None:
            if recorded != migration.checksum:
                raise ConfigurationError(
                    f"migration {migration.label} changed after it was applied to {database}; "
                    f"restore the file and add a new numbered migration instead"
                )
            continue
        for statement in split_statements(migration.sql):
            client.command(statement)
        client.insert(
            MIGRATIONS_TABLE,
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        logger.info("database=%s applied migration %s", database, migration.label)
        done.append(migration.label)
    return done


def migrate(settings: Settings, database: str | None = None) -> list[str]:
    """Apply pending migrations to the configured warehouse (embedded or external).

    Returns:
        The labels of the migrations applied.
    """
    from adapters.warehouse.client import connect

    client = connect(settings, database="default")
    try:
        return apply_migrations(client, database or settings.clickhouse.database, load_migrations())
    finally:
        client.close()
