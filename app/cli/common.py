"""Helpers every CLI command shares: settings loading, logging and error exits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from app.console import console as console
from app.console import err_console as err_console
from tickwave.config import Settings, load_settings
from tickwave.errors import ConfigurationError, TickwaveError
from tickwave.logs import configure_logging


def settings_or_exit() -> Settings:
    """Load the configuration, or print what is wrong and exit with code 2."""
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        err_console.print(f"[bold red]configuration error[/]: {exc}")
        raise typer.Exit(2) from exc
    configure_logging(settings.log_level)
    return settings


@contextmanager
def exit_on_tickwave_error() -> Iterator[None]:
    """Turn a TickwaveError into one red line and exit code 1 (no traceback)."""
    try:
        yield
    except TickwaveError as exc:
        err_console.print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(1) from exc


def format_duration(seconds: float | None) -> str:
    """Return ``1h02m03s``-style text, or an empty string."""
    if seconds is None:
        return ""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
