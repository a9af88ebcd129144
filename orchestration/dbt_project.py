"""Where the dbt project is, and the environment its ``profiles.yml`` reads the warehouse from.

The profile holds no address or secret: ``dbt_environment`` turns Tickwave's settings into
the ``DBT_CLICKHOUSE_*`` variables it reads, for dbt run by Dagster, tests or by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from adapters.warehouse.client import warehouse_url
from adapters.warehouse.credentials import resolve_credentials
from tickwave.config import Settings

if TYPE_CHECKING:
    from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt"
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))  # the venv's dbt, found without an activated venv
MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"  # where DbtProject reads it (its default target path)
_SOURCES = ("models", "macros", "tests", "dbt_project.yml", "profiles.yml")


@lru_cache(maxsize=1)
def dbt_project() -> DbtProject:
    """Return the project, its manifest parsed now if missing or older than any project file.

    ``dbt parse`` needs no warehouse (the profile's variables have defaults), so loading the
    definitions works anywhere; under ``dagster dev`` dagster-dbt would re-parse anyway.
    """
    from dagster_dbt import DbtProject

    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    project.prepare_if_dev()
    prepare_manifest()
    return project


def prepare_manifest() -> Path:
    """Parse the project now if its manifest is missing or older than any project file; return the manifest.

    Imports neither Dagster nor dbt: ``tickwave orchestrate`` calls it before starting the code
    server, so the manifest is parsed once and the parent process stays small (dagster-dbt is ~50 MB).
    """
    if _is_stale(MANIFEST):
        parse_project()
    return MANIFEST


def parse_project() -> None:
    """Write ``dbt/target/manifest.json`` with ``dbt parse`` (no warehouse needed).

    Raises:
        ConfigurationError: with dbt's output when the project does not parse.
    """
    from tickwave.errors import ConfigurationError

    environment = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR)}
    done = subprocess.run(
        [DBT_EXECUTABLE, "parse", "--project-dir", str(DBT_PROJECT_DIR), "--quiet"],
        capture_output=True, text=True, timeout=300, check=False, env=environment,
    )  # fmt: skip
    if done.returncode != 0:
        raise ConfigurationError(f"dbt parse failed in {DBT_PROJECT_DIR}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def _is_stale(manifest: Path) -> bool:
    if not manifest.is_file():
        return True
    built = manifest.stat().st_mtime
    files = (path for name in _SOURCES for path in [DBT_PROJECT_DIR / name, *(DBT_PROJECT_DIR / name).rglob("*")])
    return any(path.is_file() and path.stat().st_mtime > built for path in files)


def dbt_environment(settings: Settings, database: str | None = None) -> dict[str, str]:
    """Return the variables ``dbt/profiles.yml`` reads: the warehouse's address, user, password and database.

    Raises:
        ServiceError: when the warehouse cannot be located or no password is known yet.
    """
    address = urlsplit(warehouse_url(settings))
    credentials = resolve_credentials(settings)
    secure = address.scheme == "https"
    return {
        "DBT_CLICKHOUSE_HOST": address.hostname or "127.0.0.1",
        "DBT_CLICKHOUSE_PORT": str(address.port or (8443 if secure else 8123)),
        "DBT_CLICKHOUSE_USER": credentials.user,
        "DBT_CLICKHOUSE_PASSWORD": credentials.password.get_secret_value(),
        "DBT_CLICKHOUSE_DATABASE": database or settings.clickhouse.database,
        "DBT_CLICKHOUSE_SECURE": str(secure),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
    }


# Placeholders of the price_at_digits variable (filled by the dbt macro of that name).
PRICE_PLACEHOLDER = "__price__"
SYMBOL_PLACEHOLDER = "__symbol__"


def dbt_vars(settings: Settings) -> dict[str, Any]:
    """Return the variables the marts read from the settings: each symbol's units per lot, pip and currencies.

    ``mart_ttls`` is each mart's TTL from the retention table (:func:`adapters.retention.mart_retention`;
    None: kept forever), which the ``retention_ttl`` macro gives the mart's table.

    ``price_at_digits`` is :func:`tickwave.instruments.price_sql` with placeholders for the price and
    the symbol column (the ``price_at_digits`` macro fills them), so the marts round a shown price as
    the reports do, from the same registry.
    """
    from adapters.retention import mart_retention
    from tickwave.instruments import price_sql, registry

    def number(value: float) -> float | int:
        return int(value) if float(value).is_integer() else value  # ClickHouse multiplies Decimal by integers

    instruments = {
        name: {
            "contract_size": number(spec.contract_size),
            "pip_size": spec.pip_size,
            "base": spec.base,
            "quote": spec.quote,
        }
        for name, spec in registry(settings.symbols).items()
    }
    return {
        "instruments": instruments,
        "account_currency": settings.execution.account_currency,
        "price_at_digits": price_sql(PRICE_PLACEHOLDER, registry(settings.symbols), symbol=SYMBOL_PLACEHOLDER),
        "mart_ttls": {rule.table: rule.ttl for rule in mart_retention(settings.retention)},
    }


def apply_dbt_environment(settings: Settings, database: str | None = None) -> None:
    """Put :func:`dbt_environment` into this process's environment (dbt subprocesses inherit it)."""
    os.environ.update(dbt_environment(settings, database))
