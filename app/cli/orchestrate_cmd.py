"""``tickwave orchestrate``: Dagster's webserver and daemon in the foreground (``tickwave up`` runs it too)."""

from __future__ import annotations

from typing import Annotated

import typer

from adapters.endpoints import free_port, mark_ready
from app.cli.common import console, exit_on_tickwave_error, settings_or_exit
from app.services.supervisor import ensure_port_free


def orchestrate(
    port: Annotated[int, typer.Option(help="UI / GraphQL port on 127.0.0.1 (default orchestration.port)")] = -1,
) -> None:
    """Run the Dagster UI and daemon (training, dbt marts, quality checks, schedules) until SIGTERM/Ctrl-C."""
    settings = settings_or_exit()
    chosen = settings.orchestration.port if port < 0 else port
    with exit_on_tickwave_error():
        chosen = chosen or free_port()
        ensure_port_free(chosen, "orchestration", "TICKWAVE_ORCHESTRATION_PORT")
        from orchestration.service import run

        def ready() -> None:
            mark_ready(settings.state_path, "orchestration")
            console.print(f"Dagster UI and GraphQL: http://127.0.0.1:{chosen}")

        raise typer.Exit(run(settings, chosen, ready))


def register(app: typer.Typer) -> None:
    """Add the orchestrate command to the root app."""
    app.command()(orchestrate)
