"""``tickwave warehouse serve | migrate | backfill-bookings | query | credentials-path``: the ClickHouse warehouse."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import console, err_console, exit_on_tickwave_error, settings_or_exit

app = typer.Typer(help="The ClickHouse warehouse: serve it, migrate its schema, query it.", no_args_is_help=True)


@app.command("serve")
def serve(
    port: Annotated[int | None, typer.Option(help="port on 127.0.0.1 (default: clickhouse.port)")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="directory holding the database (default: <state dir>/data/warehouse)")
    ] = None,
) -> None:
    """Serve the embedded ClickHouse HTTP interface in the foreground (`tickwave up` runs it in the background).

    The process re-executes itself once (as ``python -m warehouse_server``) with a scrubbed
    environment and its passwords on an inherited pipe, so a password exported in the shell
    never reaches the engine's process.
    """
    from warehouse_server.main import serve_foreground

    raise typer.Exit(serve_foreground(port, data_dir))


@app.command("migrate")
def migrate() -> None:
    """Create the database, apply every pending schema migration and the retention settings' TTLs (idempotent)."""
    settings = settings_or_exit()
    from adapters.warehouse.retention import migrate as apply_migrations

    with exit_on_tickwave_error():
        applied, retention = apply_migrations(settings)
    if applied:
        console.print(f"[green]✓[/] applied migrations: {', '.join(applied)}")
    for line in retention:
        console.print(f"[green]✓[/] retention {line}")
    if not applied and not retention:
        console.print("schema and retention are up to date")


@app.command("backfill-bookings")
def backfill_bookings() -> None:
    """Book the fills written before the engine booked them, with its rule (idempotent; the audit loader runs it too).

    Exits 1 when a symbol is refused: its unbooked fills do not lead to its first booked fill's position.
    """
    settings = settings_or_exit()
    from rich.progress import Progress

    from execution.backfill import SymbolBackfill, backfill_warehouse

    with exit_on_tickwave_error(), Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("booking fills", total=None)

        def advance(outcome: SymbolBackfill) -> None:
            progress.update(task, advance=1, description=f"booked {outcome.symbol}")

        result = backfill_warehouse(settings, on_symbol=advance)
    for outcome in result.symbols:
        if outcome.refused:
            err_console.print(f"[bold red]✗[/] {outcome.symbol}: left unbooked: {outcome.refused}")
        else:
            console.print(f"[green]✓[/] {outcome.symbol}: booked {outcome.booked} fills")
    if not result.symbols:
        console.print("every fill is booked")
    if result.refused:
        raise typer.Exit(1)


@app.command("query")
def query(
    sql: Annotated[str, typer.Argument(help="one SQL statement")],
    write: Annotated[bool, typer.Option("--write", help="run as the read-write service user")] = False,
    limit: Annotated[int, typer.Option(help="rows to show at most")] = 50,
) -> None:
    """Run SQL against the warehouse (as the read-only analyst unless --write) and print a table."""
    settings = settings_or_exit()
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from adapters.warehouse.client import connect

    with exit_on_tickwave_error():
        client = connect(settings, readonly=not write)
        try:
            result = client.query(sql)
        except ClickHouseError as exc:  # carries the server's `Code: N. DB::Exception: ...` text
            err_console.print(f"[bold red]error[/]: {exc}")
            raise typer.Exit(1) from exc
        finally:
            client.close()
    table = Table(*result.column_names)
    for row in result.result_rows[:limit]:
        table.add_row(*(str(value) for value in row))
    console.print(table)
    shown = min(limit, len(result.result_rows))
    console.print(f"{shown} of {len(result.result_rows)} rows")


@app.command("credentials-path")
def credentials_path() -> None:
    """Print where the generated warehouse passwords are kept (never the passwords)."""
    settings = settings_or_exit()
    from adapters.warehouse.credentials import secrets_path

    typer.echo(str(secrets_path(settings)))
