"""``tickwave config show``: the effective configuration, secrets masked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import console, exit_on_tickwave_error, settings_or_exit
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


README_START = "<!-- config-reference:start"
README_END = "<!-- config-reference:end -->"
RETENTION_START = "<!-- retention:start"
RETENTION_END = "<!-- retention:end -->"
SUMMARY_START = "<!-- retention-summary:start"
SUMMARY_END = "<!-- retention-summary:end -->"
UpdateOption = Annotated[
    Path | None, typer.Option("--update", help="rewrite the table between the markers in this file")
]


@app.command("reference")
def reference(update: UpdateOption = None) -> None:
    """Print the table of every setting (Markdown), or update it in a file (docs/configuration.md)."""
    table = reference_markdown()
    if update is None:
        typer.echo(table, nl=False)
        return
    _replace_between_markers(update, README_START, README_END, table)
    console.print(f"updated the configuration table in {update}")


@app.command("retention")
def retention(update: UpdateOption = None) -> None:
    """Print the retention of every table, topic and file as configured, or update the defaults' table in a file.

    The file holds the whole table between ``retention`` markers (docs/operations.md) or the summary by period
    between ``retention-summary`` markers (the README).
    """
    from adapters.retention import retention_markdown, retention_summary_markdown
    from tickwave.config import RetentionSettings

    if update is None:
        settings = settings_or_exit()
        with exit_on_tickwave_error():
            typer.echo(retention_markdown(settings.retention), nl=False)
        return
    if SUMMARY_START in update.read_text():
        _replace_between_markers(update, SUMMARY_START, SUMMARY_END, retention_summary_markdown(RetentionSettings()))
    else:
        _replace_between_markers(update, RETENTION_START, RETENTION_END, retention_markdown(RetentionSettings()))
    console.print(f"updated the retention table in {update}")


def _replace_between_markers(path: Path, start: str, end: str, table: str) -> None:
    text = path.read_text()
    head, found, rest = text.partition(start)
    marker_line, _, after_marker = rest.partition("\n")
    _, found_end, tail = after_marker.partition(end)
    if not (found and found_end):
        raise typer.BadParameter(f"{path} has no {start} ... {end} markers")
    path.write_text(f"{head}{start}{marker_line}\n{table}{end}{tail}")
