"""Build and run ``dashboards/checker``: every board query through clickhouse-go (Grafana's ClickHouse client).

Go is a prerequisite of this check only (``make prereqs`` says so); the module's
dependencies come from the Go module proxy, pinned by ``checker/go.sum``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.warehouse.address import warehouse_address
from adapters.warehouse.credentials import resolve_credentials
from dashboards.build import boards
from dashboards.macros import QueryContext, expand
from dashboards.panels import PanelSpec
from tickwave.config import Settings
from tickwave.errors import ConfigurationError

CHECKER_DIR = Path(__file__).parent / "checker"


def board_context(board_uid: str, now: datetime, symbol: str) -> QueryContext:
    """The context a board's queries are checked in: trader last 1 h at 5 s, ops last 6 h at 30 s."""
    if "trader" in board_uid:
        return QueryContext.last(timedelta(hours=1), timedelta(seconds=5), {"symbol": symbol}, now)
    return QueryContext.last(timedelta(hours=6), timedelta(seconds=30), {"symbol": symbol}, now)


def checker_queries(settings: Settings, now: datetime, symbol: str = "EURUSD") -> list[dict[str, Any]]:
    """Every board query, expanded, with the columns its panel needs (the checker's input)."""
    queries = []
    for board in boards(settings):
        context = board_context(board.uid, now, symbol)
        for spec in board.queries:
            queries.append(query_document(f"{board.uid}: {spec.title}", spec, context))
    return queries


def query_document(title: str, spec: PanelSpec, context: QueryContext) -> dict[str, Any]:
    """One query for the checker."""
    columns = [{"name": name, "type": family.value} for name, family in spec.columns]
    return {"title": title, "sql": expand(spec.sql, context), "columns": columns}


def build_checker(binary: Path) -> Path:
    """Compile the checker into ``binary`` (modules from the proxy, verified against go.sum).

    Raises:
        ConfigurationError: Go is not installed.
    """
    go = shutil.which("go")
    if go is None:
        raise ConfigurationError("Go is needed for the clickhouse-go check: install Go 1.26+ (https://go.dev/dl/)")
    binary.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([go, "build", "-mod=readonly", "-o", str(binary), "."], cwd=CHECKER_DIR, check=True)
    return binary


@dataclass(frozen=True)
class CheckerRun:
    """The checker's exit status, its per-query outcomes, and those of its steps before them (ping, insert)."""

    returncode: int
    outcomes: list[dict[str, Any]]
    stderr: str
    steps: list[dict[str, Any]]


def run_checker(
    binary: Path,
    settings: Settings,
    database: str,
    queries: list[dict[str, Any]],
    workdir: Path,
    *,
    compression: str = "gzip",
    as_service_user: bool = False,
    insert: str = "",
) -> CheckerRun:
    """Run the checker on ``database`` (password through the environment, never argv).

    As the analyst, unless ``as_service_user``; with clickhouse-go's ``compression`` (lz4,
    zstd, gzip, none); ``insert`` ("TABLE:ROWS") first writes that many rows as one batch.
    """
    address = warehouse_address(settings)
    credentials = resolve_credentials(settings)
    user, password = (
        (credentials.user, credentials.password)
        if as_service_user
        else (credentials.analyst_user, credentials.analyst_password)
    )
    queries_file = workdir / "checker-queries.json"
    queries_file.write_text(json.dumps(queries, indent=1), encoding="utf-8")
    environment = {
        **os.environ,
        "CHECKER_ADDR": address.host_port,
        "CHECKER_SECURE": "1" if address.is_secure else "0",
        "CHECKER_CA_FILE": str(address.ca_file or ""),  # empty: the system's trust store
        "CHECKER_USER": user,
        "CHECKER_PASSWORD": password.get_secret_value(),
        "CHECKER_COMPRESSION": compression,
        "CHECKER_INSERT": insert,
        "CHECKER_DATABASE": database,
        "CHECKER_ROW_LIMIT": str(settings.dashboards.row_limit),
        "CHECKER_QUERY_TIMEOUT_S": str(settings.dashboards.query_timeout_s),
    }
    completed = subprocess.run(
        [str(binary), str(queries_file)], env=environment, capture_output=True, text=True, timeout=300, check=False
    )
    lines = [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]
    step_count = 2 if insert else 1  # the ping, and the insert when asked
    return CheckerRun(completed.returncode, lines[step_count:], completed.stderr, lines[:step_count])
