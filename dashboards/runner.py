"""Run a board's query as Grafana's datasource does: HTTP POST as the analyst, with the plugin's settings.

The ClickHouse plugin (through clickhouse-go's HTTP transport) sends the SQL in the body,
the database and its per-query settings (``limit`` = the row limit, ``max_execution_time``
= the query timeout) as URL parameters, and basic auth. Here the answer is asked for as
``JSONCompactEachRowWithNamesAndTypes`` so that the column names and types can be checked;
the Go checker (``dashboards/checker``) does the same with clickhouse-go's Native format.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from adapters.warehouse.address import warehouse_address
from adapters.warehouse.credentials import resolve_credentials
from tickwave.config import Settings
from tickwave.errors import ServiceError

FORMAT = "JSONCompactEachRowWithNamesAndTypes"


@dataclass(frozen=True)
class QueryResult:
    """Column names and ClickHouse types, the rows, the round trip and the server's own time (ms)."""

    names: list[str]
    types: list[str]
    rows: list[list[Any]]
    elapsed_ms: float
    server_ms: float


class AnalystRunner:
    """One keep-alive HTTP client to the warehouse as the read-only analyst."""

    def __init__(self, settings: Settings, database: str | None = None) -> None:
        """Resolve the URL and the analyst's credentials from ``settings``."""
        credentials = resolve_credentials(settings)
        address = warehouse_address(settings)
        self.url = address.url
        self.params = {
            "database": database or settings.clickhouse.database,
            "limit": str(settings.dashboards.row_limit),
            "max_execution_time": str(settings.dashboards.query_timeout_s),
            "default_format": FORMAT,
        }
        self.client = httpx.Client(
            auth=(credentials.analyst_user, credentials.analyst_password.get_secret_value()),
            timeout=60.0,
            verify=address.ssl_context() or True,  # over HTTPS: verified against the warehouse's CA
        )

    def query(self, sql: str) -> QueryResult:
        """Run ``sql`` and parse the answer.

        Raises:
            ServiceError: the warehouse refused or failed the query (its message included).
        """
        started = time.perf_counter()
        response = self.client.post(self.url, params=self.params, content=sql.encode())
        elapsed_ms = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise ServiceError(f"warehouse answered {response.status_code}: {response.text.strip()[:500]}")
        lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
        if len(lines) < 2:
            raise ServiceError(f"unexpected answer without names and types: {response.text[:200]!r}")
        summary = json.loads(response.headers.get("X-ClickHouse-Summary") or "{}")
        server_ms = int(summary.get("elapsed_ns", 0)) / 1e6
        return QueryResult(names=lines[0], types=lines[1], rows=lines[2:], elapsed_ms=elapsed_ms, server_ms=server_ms)

    def close(self) -> None:
        """Close the connection."""
        self.client.close()
