"""Process logging: one rich handler on stderr, set up once by each process's entry point."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler

err_console = Console(stderr=True)


def configure_logging(level: str) -> None:
    """Send log records to stderr through rich, once per process."""
    root = logging.getLogger()
    if not any(isinstance(handler, RichHandler) for handler in root.handlers):
        root.addHandler(RichHandler(console=err_console, show_path=False, rich_tracebacks=False))
    root.setLevel(level)
