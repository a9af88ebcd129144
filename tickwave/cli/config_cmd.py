"""``tickwave config show``: the effective configuration, secrets masked."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from tickwave.cli.common import console, settings_or_exit
from tickwave.config import ENV_PREFIX, masked_settings, reference_markdown

app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)


def _flatten(data: dict[str, object], prefix: str = "") -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


@app.command("show")
def show(as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False) -> None:
    """Print the effective configuration (every source applied), secrets masked."""
    settings = settings_or_exit()
    data = masked_settings(settings)
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    table = Table("key", "environment variable", "value")
    for key, value in _flatten(data):
        table.add_row(key, (ENV_PREFIX + key.replace(".", "_")).upper(), "" if value is None else str(value))
    console.print(table)


@app.command("reference")
def reference() -> None:
    """Print the table of every setting (Markdown), as in the README."""
    typer.echo(reference_markdown(), nl=False)
