"""The terminal the composition root writes to: results on stdout, diagnostics on stderr."""

from __future__ import annotations

from rich.console import Console

from tickwave.logs import err_console as err_console

console = Console()
