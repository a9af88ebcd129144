"""Where the dbt project is, and the environment its ``profiles.yml`` reads the warehouse from.

The profile holds no address or secret: ``dbt_environment`` turns Tickwave's settings into
the ``DBT_CLICKHOUSE_*`` variables it reads, for dbt run by Dagster, tests or by hand.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from tickwave.config import Settings
from tickwave.warehouse.client import warehouse_url
from tickwave.warehouse.credentials import resolve_credentials

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt"


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


def apply_dbt_environment(settings: Settings, database: str | None = None) -> None:
    """Put :func:`dbt_environment` into this process's environment (dbt subprocesses inherit it)."""
    os.environ.update(dbt_environment(settings, database))
