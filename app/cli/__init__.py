"""The ``tickwave`` command line: the front door that dispatches to every component.

Each command group lives in its own module and is added here; heavy imports (Bytewax,
Dagster, Great Expectations) happen inside the commands that need them, so
``tickwave --help`` and ``tickwave status`` start fast.
"""

from __future__ import annotations

import typer

from adapters.private_files import keep_private
from app.cli import (
    config_cmd,
    dashboards_cmd,
    demo_cmd,
    execution_cmd,
    ingest_cmd,
    models_cmd,
    orchestrate_cmd,
    report_cmd,
    services,
    streams_cmd,
    topics_cmd,
    warehouse_cmd,
)

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
app.add_typer(execution_cmd.app, name="execution")
app.add_typer(warehouse_cmd.app, name="warehouse")
app.add_typer(streams_cmd.app, name="streams")
app.add_typer(dashboards_cmd.app, name="dashboards")
demo_cmd.register(app)
models_cmd.register(app)
ingest_cmd.register(app)
orchestrate_cmd.register(app)
report_cmd.register(app)


def main() -> None:
    """Run the command line; every file it and the services it starts create is the owner's only."""
    keep_private()
    app()
