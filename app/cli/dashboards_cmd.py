"""``tickwave dashboards build | push``: Grafana boards as code (the ``dashboards`` component).

Exit codes of ``push``: 0 done; 1 Grafana refused something (a version conflict, a bad
request); 2 configuration error; 3 authentication failed (401/403); 4 Grafana unreachable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import console, err_console, exit_on_tickwave_error, settings_or_exit
from tickwave.errors import TickwaveError

app = typer.Typer(help="Grafana boards as code: build the files, push them to a Grafana.", no_args_is_help=True)


@app.command()
def build(
    out: Annotated[Path, typer.Option("--out", help="output directory")] = Path("grafana"),
) -> None:
    """Write the boards' JSON and the datasource, dashboard and alerting provisioning files (deterministic)."""
    settings = settings_or_exit()
    with exit_on_tickwave_error():
        from dashboards.build import build as build_all

        result = build_all(settings, out)
    for relative in result.written:
        console.print(f"wrote {result.out / relative}")
    for note in result.notes:
        console.print(f"note: {note}")
    console.print(
        f"Grafana: copy {result.out / 'provisioning'}/* into its provisioning directory and set "
        f"{settings.dashboards.password_env} in its environment (see dashboards/README.md)"
    )


@app.command()
def push(
    url: Annotated[str, typer.Option("--url", help="Grafana's URL, e.g. http://127.0.0.1:3000")],
    token: Annotated[
        str | None, typer.Option("--token", envvar="GRAFANA_TOKEN", help="service account token (or $GRAFANA_TOKEN)")
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="basic-auth user; the password comes from $GRAFANA_PASSWORD or a prompt"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite boards changed in Grafana meanwhile")] = False,
) -> None:
    """Create the folder, the datasource if missing, the boards (version-checked) and the alerting in a Grafana.

    Exit codes: 0 done; 1 Grafana refused a change (e.g. a board changed there meanwhile); 2 configuration
    error; 3 authentication failed; 4 Grafana unreachable.
    """
    settings = settings_or_exit()
    if not token and not user:
        err_console.print("[bold red]error[/]: give --token (or $GRAFANA_TOKEN) or --user")
        raise typer.Exit(2)
    basic = None
    if user and not token:
        password = os.environ.get("GRAFANA_PASSWORD") or typer.prompt(f"Grafana password for {user}", hide_input=True)
        basic = (user, password)
    from dashboards.push import PushError
    from dashboards.push import push as push_all

    try:
        report = push_all(settings, url, token=token, basic=basic, force=force)
    except PushError as exc:
        err_console.print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(int(exc.exit_code)) from exc
    except TickwaveError as exc:
        err_console.print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(2) from exc
    table = Table("kind", "name", "action", title=f"Grafana at {url}")
    for kind, name, action in report.changes:
        table.add_row(kind, name, action)
    console.print(table)
    console.print(f"{report.changed} created or updated, {len(report.changes) - report.changed} unchanged")
