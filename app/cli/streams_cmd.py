"""``tickwave streams run``: the Bytewax dataflow in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

from adapters.bus import default_principal
from app.cli.common import exit_on_tickwave_error, settings_or_exit
from tickwave.topics import DATAFLOW, LOADER

app = typer.Typer(
    help="The streaming dataflow: ticks to bars, features, predictions and signals.", no_args_is_help=True
)


@app.command("run")
def run(
    processes: Annotated[int, typer.Option("--processes", "-p", help="Bytewax processes (split the partitions)")] = 0,
    stop_at_end: Annotated[
        bool, typer.Option("--stop-at-end", help="stop when the ticks topic is drained (replays, backfills)")
    ] = False,
) -> None:
    """Run the dataflow until SIGTERM/Ctrl-C (or the end of the topic with --stop-at-end)."""
    settings = default_principal(settings_or_exit(), DATAFLOW)
    count = processes or settings.streams.processes
    with exit_on_tickwave_error():
        from streams.runner import run_in_process, run_processes

        if count == 1:
            run_in_process(settings, tail=not stop_at_end)
        else:
            raise typer.Exit(run_processes(settings, count, tail=not stop_at_end))


@app.command("load")
def load(
    follow_stdin: Annotated[
        bool, typer.Option("--follow-stdin", help="stop at the end of stdin; the line 'drain' loads to the end first")
    ] = False,
) -> None:
    """Insert the dataflow's records (topic streams.records) into the warehouse until SIGTERM.

    ``tickwave streams run`` starts this itself, following it through stdin.
    """
    settings = default_principal(settings_or_exit(), LOADER)
    with exit_on_tickwave_error():
        from streams.loader import run_loader

        run_loader(settings, follow_stdin=follow_stdin)
