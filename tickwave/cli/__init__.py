"""The ``tickwave`` command line: the front door that dispatches to every component.

Each command group lives in its own module and is added here; heavy imports (Bytewax,
Dagster, Great Expectations) happen inside the commands that need them, so
``tickwave --help`` and ``tickwave status`` start fast.
"""

from __future__ import annotations

import typer

from tickwave.cli import config_cmd, demo, ingest_cmd, services, topics_cmd

app = typer.Typer(
    name="tickwave",
    help="Tickwave: streaming analytics and AI trading for MetaTrader 5 markets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

services.register(app)
app.add_typer(config_cmd.app, name="config")
app.add_typer(topics_cmd.app, name="topics")
demo.register(app)
ingest_cmd.register(app)


def main() -> None:
    """Run the command line."""
    app()
