"""``tickwave ingest``: put ticks from MT5, replay files or the simulator onto the ``ticks`` topic.

The ingest component lives in ``streams/ingest``; this module only parses options, builds
the source, installs the SIGTERM/SIGINT handlers and shows a progress bar for replays.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from adapters.bus import default_principal
from app.cli.common import console, err_console, exit_on_tickwave_error, settings_or_exit
from streams.ingest.sources import SourceKind, build_source
from tickwave.config import Settings
from tickwave.topics import INGEST

if TYPE_CHECKING:
    from streams.ingest.runner import IngestReport, TickSource


def run_source(settings: Settings, source: TickSource, stop: threading.Event, show_progress: bool) -> IngestReport:
    """Send ``source`` to Kafka (:func:`streams.ingest.sources.run_source`), with a progress bar when asked."""
    from streams.ingest.sources import run_source as send

    if not show_progress:
        return send(settings, source, stop)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[ticks]} ticks, {task.fields[dlq]} dlq"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task(source.name, total=1.0, ticks=0, dlq=0)

        def advance(report: IngestReport) -> None:
            progress.update(task, completed=source.progress() or 0.0, ticks=report.ticks, dlq=report.dead_letters)

        report = send(settings, source, stop, on_batch=advance)
        progress.update(task, completed=source.progress() or 1.0, ticks=report.ticks, dlq=report.dead_letters)
    return report


def ingest(
    source: Annotated[SourceKind, typer.Option("--source", help="sim, replay or mt5")] = SourceKind.SIM,
    symbols: Annotated[
        str | None, typer.Option(help="comma-separated symbols (sim, mt5; replay: of unnamed files)")
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="sim: ticks per second, all symbols (default: setting ingest.sim_rate)")
    ] = None,
    duration: Annotated[
        str | None, typer.Option(help="sim: simulated time to run (90s, 15m, 2h); default: until stopped")
    ] = None,
    file: Annotated[list[Path] | None, typer.Option("--file", help="replay: tick file or folder (repeatable)")] = None,
    speed: Annotated[
        str | None, typer.Option(help="max, or a factor of real time: 1, 10 (replay: max, sim: 1)")
    ] = None,
    from_time: Annotated[
        str | None, typer.Option("--from", help="replay: first tick time (ISO 8601, UTC); sim: start")
    ] = None,
    to_time: Annotated[str | None, typer.Option("--to", help="replay: stop before this time (ISO 8601, UTC)")] = None,
    columns: Annotated[
        str | None, typer.Option(help="replay CSV/Parquet: time=...,bid=...,ask=...,symbol=...,time_unit=ms")
    ] = None,
    timezone: Annotated[
        str | None, typer.Option(help="replay: zone of the file's times (default: setting mt5.server_timezone)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="sim: random seed (default: setting ingest.sim_seed)")] = None,
) -> None:
    """Send ticks from the simulator, replay files or a MetaTrader 5 terminal to the ticks topic.

    Malformed or impossible input goes to the dead-letter topic with its reason. SIGTERM or
    Ctrl-C stops cleanly: everything already read is delivered before exit.
    """
    settings = default_principal(settings_or_exit(), INGEST)
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        err_console.print(f"[yellow]{signal.Signals(signum).name}: stopping after the current batch[/]")
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with exit_on_tickwave_error():
            built = build_source(
                settings,
                source,
                stop,
                symbols=symbols,
                rate=rate,
                duration=duration,
                files=file,
                speed=speed,
                from_time=from_time,
                to_time=to_time,
                columns=columns,
                timezone=timezone,
                seed=seed,
            )
            report = run_source(settings, built, stop, show_progress=source is SourceKind.REPLAY)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print(
        f"{report.ticks} ticks, {report.dead_letters} dead letters in {report.elapsed_s:.1f} s "
        f"({report.ticks_per_s:,.0f} ticks/s){' - stopped' if report.is_stopped else ''}"
    )
    if not report.is_clean:
        err_console.print(f"[bold red]error[/]: {report.undelivered + report.delivery_failures} messages not delivered")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ingest command to the root app."""
    app.command()(ingest)
