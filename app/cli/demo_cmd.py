"""``tickwave demo``: start everything, run the main job end to end, show where to look (steps in :mod:`app.demo`)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from app.cli.common import console, exit_on_tickwave_error, settings_or_exit
from app.cli.services import bring_down, bring_up
from app.demo import demo_settings, run_demo


def demo(
    live_seconds: Annotated[int, typer.Option(help="how long to stream live simulated ticks")] = 25,
    keep: Annotated[bool, typer.Option("--keep", help="leave the services running afterwards")] = False,
) -> None:
    """Start everything, replay the sample, train a model, trade a live simulated market; show where to look."""
    settings = demo_settings(settings_or_exit())
    if settings.log_level == "INFO":
        logging.getLogger().setLevel(logging.WARNING)  # the steps print their own lines; services log to files
    with exit_on_tickwave_error():
        addresses = bring_up(settings)
        try:
            run_demo(settings, addresses, live_seconds)
        finally:
            if not keep:
                bring_down(settings)
                console.print("services stopped (run with --keep to leave them up)")


def register(app: typer.Typer) -> None:
    """Add the demo command to the root app."""
    app.command()(demo)
