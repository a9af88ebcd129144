"""``tickwave execution run | audit | halt | reduce | resume | flatten | status``: the execution process.

Commands go through the ``execution.control`` topic (audited, totally ordered); the CLI
then watches ``orders.events`` for the process's answer and prints it. A command sent
while the process is down waits on the topic and applies when it starts.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.table import Table

from adapters.bus import default_principal, resolve_bootstrap
from app.cli.common import console, err_console, exit_on_tickwave_error, settings_or_exit
from tickwave.topics import OPERATOR

app = typer.Typer(help="Run the execution process; halt, reduce, resume it; show its status.", no_args_is_help=True)

Reason = Annotated[str, typer.Option(help="why (kept in the audit trail)")]
SymbolOption = Annotated[str, typer.Option(help="only this symbol (default: all trading)")]


@app.command("run")
def run() -> None:
    """Run the execution process in the foreground until Ctrl-C or SIGTERM."""
    settings = settings_or_exit()
    from execution.app import serve

    raise typer.Exit(serve(settings))


@app.command("audit")
def audit() -> None:
    """Load the audit trail (orders.events) into the warehouse until Ctrl-C or SIGTERM."""
    settings = settings_or_exit()
    from execution.app import serve

    raise typer.Exit(serve(settings, is_audit_loader=True))


def _command(command: str, reason: str = "", symbol: str = "", params: dict[str, str] | None = None) -> None:
    settings = default_principal(settings_or_exit(), OPERATOR)
    from execution.connectors import audit_tail, await_risk_event, send_control
    from tickwave.clock import SystemClock

    with exit_on_tickwave_error():
        bootstrap = resolve_bootstrap(settings)
        watcher = audit_tail(settings, bootstrap)
        try:
            started = time.monotonic()
            sent = send_control(
                settings,
                bootstrap,
                command,
                reason=reason or "operator command",
                symbol=symbol,
                params=params,
                clock=SystemClock(),
            )
            answer = await_risk_event(
                watcher, lambda event: sent.command_id in event.detail, settings.execution.control.reply_timeout_s
            )
        finally:
            watcher.close()
    if answer is None:
        err_console.print(
            f"[yellow]no answer within {settings.execution.control.reply_timeout_s:.0f} s[/]: is the execution process "
            f"running? The command waits on the control topic and applies when it starts."
        )
        raise typer.Exit(1)
    elapsed_ms = (time.monotonic() - started) * 1000
    if answer.kind == "status":
        _print_status(json.loads(answer.detail))
    else:
        console.print(f"[bold]{answer.trading_state}[/] {answer.detail} (answered in {elapsed_ms:.0f} ms)")


def _print_status(status: dict[str, object]) -> None:
    table = Table("key", "value", title="execution status")
    for key, value in status.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    console.print(table)


@app.command("halt")
def halt(reason: Reason = "", symbol: SymbolOption = "") -> None:
    """Stop new orders at once and cancel working ones (survives restarts until resumed)."""
    _command("halt", reason, symbol)


@app.command("reduce")
def reduce(reason: Reason = "") -> None:
    """Allow only orders that reduce positions."""
    _command("reduce", reason)


@app.command("resume")
def resume(reason: Reason = "", symbol: SymbolOption = "") -> None:
    """Return to ACTIVE (or lift one symbol's halt)."""
    _command("resume", reason, symbol)


@app.command("flatten")
def flatten(reason: Reason = "", symbol: SymbolOption = "") -> None:
    """Close every position (or one symbol's) with reduce-only market orders; cancel their working orders."""
    _command("flatten", reason, symbol)


@app.command("status")
def status() -> None:
    """Ask the running process for its trading state, positions and orders."""
    _command("status")
