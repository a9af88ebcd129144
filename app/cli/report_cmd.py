"""``tickwave report daily | list | verify``: the compliance reports from the shell.

The reports component (dbt, matplotlib, Jinja) is imported inside the commands, so
``tickwave --help`` stays fast.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import console, err_console, exit_on_tickwave_error, settings_or_exit
from tickwave.config import Settings

app = typer.Typer(help="Compliance reports: produce a day's reports, list them, verify them.", no_args_is_help=True)

OutOption = Annotated[Path | None, typer.Option("--out", help="reports folder (default: <state dir>/reports)")]
DatabaseOption = Annotated[str | None, typer.Option("--database", help="warehouse database (default: configured)")]


def _day(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()  # noqa: DTZ007 - a calendar day, UTC by definition
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r}: expected YYYY-MM-DD") from exc


def reports_root(settings: Settings, out: Path | None) -> Path:
    """Return where reports go: ``--out`` or ``<state dir>/reports``."""
    return out if out is not None else settings.state_path / "reports"


@app.command("daily")
def daily(
    day: Annotated[str, typer.Option("--date", help="the UTC trading day, YYYY-MM-DD")],
    out: OutOption = None,
    database: DatabaseOption = None,
    build: Annotated[bool, typer.Option(help="rebuild the dbt compliance views first")] = True,
) -> None:
    """Produce the day's seven reports (CSV + HTML) and its chained manifest; say what changed on a re-run."""
    from adapters.warehouse.client import connect
    from orchestration.compliance_views import build_compliance_views
    from reports.daily import generate_day
    from tickwave.instruments import registry

    settings = settings_or_exit()
    reported = _day(day)
    root = reports_root(settings, out)
    with exit_on_tickwave_error(), console.status("building the dbt compliance views") as status:
        if build:
            build_compliance_views(settings, database)
        client = connect(settings, database=database)
        try:
            outcome = generate_day(
                client,
                reported,
                root,
                lambda name: status.update(f"writing {name}"),
                instruments=registry(settings.symbols),
                account_currency=settings.execution.account_currency,
            )
        finally:
            client.close()
    for flag in outcome.flags:
        console.print(f"[red]flag[/]: {flag}")
    for line in outcome.warnings:
        console.print(f"[yellow]warning[/]: {line}")
    if outcome.is_rerun and not outcome.changed:
        console.print(f"re-run for {reported}: the same data, byte-identical files")
    elif outcome.is_rerun:
        console.print(f"[yellow]re-run for {reported}: the source changed since the last run[/]:")
        for line in outcome.changed:
            console.print(f"  {line}")
    console.print(
        f"reports for {reported}: {outcome.directory} ({len(outcome.files)} files + manifest.json); "
        f"index: {root / 'index.html'}"
    )


@app.command("list")
def list_reports(out: OutOption = None) -> None:
    """List the days that have reports."""
    import json

    from reports.manifest import MANIFEST_NAME, day_dirs

    root = reports_root(settings_or_exit(), out)
    table = Table("day", "files", "order events", "fills", "folder")
    for reported, path in day_dirs(root):
        manifest = json.loads((path / MANIFEST_NAME).read_bytes())
        sources = manifest.get("source_rows", {})
        table.add_row(
            reported.isoformat(),
            str(len(manifest.get("files", {}))),
            str(sources.get("order_events", "")),
            str(sources.get("fills", "")),
            str(path),
        )
    console.print(table if table.row_count else f"no reports under {root}")


@app.command("verify")
def verify_reports(
    day: Annotated[str | None, typer.Option("--date", help="verify one day (default: everything)")] = None,
    out: OutOption = None,
    database: DatabaseOption = None,
) -> None:
    """Recompute the order-event hash chain and the manifest chain; name the first break (exit 1 on any)."""
    from adapters.warehouse.client import connect
    from reports.verify import verify

    settings = settings_or_exit()
    root = reports_root(settings, out)
    with exit_on_tickwave_error(), console.status("recomputing the chains"):
        client = connect(settings, database=database)
        try:
            problems = verify(client, root, _day(day) if day else None)
        finally:
            client.close()
    if problems:
        for problem in problems:
            err_console.print(f"[bold red]break[/]: {problem}")
        raise typer.Exit(1)
    console.print(f"verified: the order-event chain and every manifest and file under {root} recompute")


def register(root: typer.Typer) -> None:
    """Add ``tickwave report`` to the root command."""
    root.add_typer(app, name="report")
