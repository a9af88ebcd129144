"""``tickwave up | status | down | logs``: the embedded services' lifecycle."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from clickhouse_connect.driver.exceptions import ClickHouseError
from prometheus_client.registry import Collector
from rich.markup import escape
from rich.table import Table

from adapters.disk import volumes
from adapters.endpoints import Endpoint, mark_ready
from adapters.metrics import (
    SCRAPE_CONFIG,
    forget_all_metrics,
    prometheus_dir,
    recorded_port,
    serve_metrics,
    write_rules,
    write_scrape_config,
)
from adapters.private_files import tighten
from adapters.signing import ensure_keys
from app import core_build
from app.cli.common import console, err_console, exit_on_tickwave_error, format_duration, settings_or_exit
from app.services.kafka import KafkaService, security
from app.services.metrics import DagsterRunsCollector, SupervisorCollector
from app.services.probes import health_of
from app.services.registry import embedded_services, service_by_name
from app.services.resources import data_paths, memory_bytes
from app.services.supervisor import ManagedService, Supervisor, tail
from app.services.watchdog import SUPERVISOR_NAME, Watchdog, gave_up_path, read_gave_up
from tickwave.config import Settings
from tickwave.errors import TickwaveError

PARTS_SHOWN = 4  # tables named in the status's parts line, busiest first


def bring_up(settings: Settings) -> dict[str, str]:
    """Start every service not configured as external, in order, each with its after-start step.

    Kafka creates the topics and the warehouse applies the migrations before the next
    service (the dataflow needs both) starts. The signing keys of the control commands and
    the signals (``adapters.signing``) are generated first, if the state dir has none. Before
    anything, the state dir is made its owner's only (``adapters.private_files``), with one line
    when a state dir made before was open to other accounts.

    Returns:
        Service name to address.
    """
    tightened = tighten(settings.state_dir.expanduser()).line(settings.state_path)
    if tightened:
        err_console.print(f"[yellow]![/] {escape(tightened)}")
    ensure_keys(settings)  # the signing keys exist (0600) before any process that reads them starts
    warn_if_plaintext(settings)
    supervisor = Supervisor(settings)
    addresses: dict[str, str] = {}
    if settings.metrics.enabled:  # before the services: each adds its target as it starts
        from dashboards.provisioning import prometheus_rules_document

        write_scrape_config(settings, rules=[write_rules(settings, prometheus_rules_document(settings))])
    for group in start_groups(embedded_services(settings)):
        names = ", ".join(service.name for service in group)
        for service in group:
            gave_up_path(settings.state_path, service.name).unlink(missing_ok=True)  # `up` is the operator's restart
        with console.status(f"starting {names}..."):
            started = time.monotonic()
            results = supervisor.start_together(group)
            notes = [service.after_start() for service in group]
        for service, result, note in zip(group, results, notes, strict=True):
            address = result.address if isinstance(result, Endpoint) else result
            addresses[service.name] = address
            kind = "external" if isinstance(result, str) else f"pid {result.pid}"
            console.print(f"[green]✓[/] {service.name:<10} {address:<24} ({kind}, {time.monotonic() - started:.1f} s)")
            if note:
                console.print(f"  {note}")
    return addresses


def start_groups(services: list[ManagedService]) -> list[list[ManagedService]]:
    """Split ``services`` (in start order) into what starts together: a quorum's members, else one service each."""
    groups: list[list[ManagedService]] = []
    for service in services:
        if groups and service.quorum is not None and groups[-1][-1].quorum == service.quorum:
            groups[-1].append(service)
        else:
            groups.append([service])
    return groups


def bring_down(settings: Settings) -> list[str]:
    """Stop every running embedded service, last started first.

    Returns:
        The names of the services that were stopped.
    """
    supervisor = Supervisor(settings)
    stopped = []
    for group in reversed(start_groups(embedded_services(settings))):
        with console.status(f"stopping {', '.join(service.name for service in group)}..."):
            stopped += supervisor.stop_together(group)
    forget_all_metrics(settings.state_path)  # the next `up` chooses free metrics ports again
    return stopped


def up() -> None:
    """Start the embedded services (those not configured as external) and wait until ready."""
    settings = settings_or_exit()
    with exit_on_tickwave_error():
        bring_up(settings)
    console.print(f"state dir: {settings.state_path}")
    if settings.metrics.enabled:
        console.print(f"Prometheus scrape configuration: {prometheus_dir(settings.state_path) / SCRAPE_CONFIG}")


def down() -> None:
    """Stop the embedded services with SIGTERM (SIGKILL only after a timeout)."""
    settings = settings_or_exit()
    with exit_on_tickwave_error():
        stopped = bring_down(settings)
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def status() -> None:
    """Show each service's state, pid, address, uptime, memory and health, then the free disk per volume.

    Exits 3 when a service is down or degraded.
    """
    settings = settings_or_exit()
    supervisor = Supervisor(settings)
    table = Table("service", "state", "pid", "address", "metrics port", "uptime", "memory MB", "health")
    any_down = False
    dagster_address = None
    warehouse_answers = False
    services = embedded_services(settings)
    full = {name for volume in volumes(data_paths(settings, services)) if volume.is_full for name in volume.services}
    for service in services:
        state = supervisor.status(service)
        if service.name == "orchestration" and state.state == "up":
            dagster_address = state.address
        if service.name == "warehouse":
            warehouse_answers = state.state in ("up", "external")
        colour = {"up": "green", "external": "cyan"}.get(state.state, "red")
        any_down |= state.state not in ("up", "external")
        gave_up = read_gave_up(settings.state_path, service.name)
        if gave_up is not None and state.state != "up":
            state = replace(state, state="gave up")
        health_text = f"[red]{escape(gave_up)}[/]" if gave_up is not None and state.state == "gave up" else ""
        if state.state in ("up", "external") and state.address:
            health = health_of(settings, service, state.address)
            any_down |= not health.is_ok
            health_colour = "green" if health.is_ok else "red"
            health_text = f"[{health_colour}]{health.state}[/] {escape(health.summary)}"
        if service.name in full:  # its own health file may be stale: it is on the full disk too
            any_down = True
            health_text = f"[red]disk full[/] {health_text}".rstrip()
        memory = memory_bytes(state.pid) if state.pid else None
        table.add_row(
            state.name,
            f"[{colour}]{state.state}[/]",
            str(state.pid or ""),
            state.address or "",
            metrics_port_shown(settings, service.name) if state.state == "up" else "",
            format_duration(state.uptime_s),
            "" if memory is None else f"{memory / 1e6:.0f}",
            health_text,
        )
    console.print(table)
    warn_if_plaintext(settings)
    print_disks(settings, services)
    if warehouse_answers:
        print_parts(settings)
    if dagster_address:
        print_automations(dagster_address)
    raise typer.Exit(3 if any_down else 0)


def warn_if_plaintext(settings: Settings) -> None:
    """Say, on stderr, that the embedded broker takes writes from anyone (when it was asked to run PLAINTEXT)."""
    warning = security.plaintext_warning(settings)
    if warning is not None:
        err_console.print(f"[red]![/] {escape(warning)}")


def metrics_port_shown(settings: Settings, name: str) -> str:
    """The loopback port where service ``name`` serves ``/metrics`` (empty when it serves none)."""
    port = recorded_port(settings.state_path, name) if settings.metrics.enabled else None
    return "" if port is None else str(port)


def print_disks(settings: Settings, services: list[ManagedService]) -> None:
    """Print the free space of each volume holding the data, once per mount; mark the ones under the threshold."""
    alert_pct = settings.supervision.disk_free_alert_pct
    for volume in volumes(data_paths(settings, services)):
        low = f" [red]disk low[/] (under {alert_pct:g} %)" if volume.is_low(alert_pct) else ""
        low += " [red]disk full[/]" if volume.is_full else ""
        console.print(
            f"disk {escape(volume.mount)} ({', '.join(volume.holds)}): {volume.free_bytes / 1e9:.1f} GB free of "
            f"{volume.total_bytes / 1e9:.1f} GB ({volume.free_pct:.0f} %){low}"
        )


def print_parts(settings: Settings) -> None:
    """Print the warehouse tables with the most active parts in one partition (nothing when it does not answer)."""
    from adapters.warehouse.client import connect
    from adapters.warehouse.parts import PARTS_TO_DELAY_INSERT, active_parts

    try:
        client = connect(settings)
        try:
            busiest = list(active_parts(client).items())[:PARTS_SHOWN]
        finally:
            client.close()
    except (ClickHouseError, OSError, TickwaveError) as exc:  # the status goes on without this line
        console.print(f"warehouse active parts: unknown ({escape(str(exc)[:200])})")
        return
    shown = ", ".join(f"{table} {in_partition}" for table, (in_partition, _parts) in busiest)
    high = [table for table, (in_partition, _parts) in busiest if in_partition >= PARTS_TO_DELAY_INSERT // 2]
    warning = f" [red]merges behind[/] ({', '.join(high)})" if high else ""
    console.print(
        f"warehouse active parts, busiest partition: {shown or 'none'} (inserts slow down past "
        f"{PARTS_TO_DELAY_INSERT}){warning}"
    )


def print_automations(address: str) -> None:
    """Print each Dagster schedule and sensor: state, cadence, last tick and next tick (UTC)."""
    from orchestration.automation_status import automations

    try:
        found = automations(address)
    except (OSError, ValueError) as exc:  # Dagster still loading, or restarting: say so, never fail `status`
        console.print(f"[yellow]schedules: Dagster at {address} did not list them ({escape(str(exc))})[/]")
        return
    table = Table("schedule / sensor", "state", "cadence", "last tick (UTC)", "next tick (UTC)")
    for item in found:
        colour = "green" if item.status == "RUNNING" else "yellow"
        last = f"{item.last_tick_at:%Y-%m-%d %H:%M:%S} {item.last_tick_status}" if item.last_tick_at else "never"
        upcoming = f"{item.next_tick_at:%Y-%m-%d %H:%M:%S}" if item.next_tick_at and item.status == "RUNNING" else "-"
        table.add_row(item.name, f"[{colour}]{item.status}[/]", item.cadence, last, upcoming)
    console.print(table)


def supervise() -> None:
    """Restart crashed services with backoff until SIGTERM (`tickwave up` runs it as service `supervisor`)."""
    settings = settings_or_exit()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set())
    watchdog = Watchdog(settings, embedded_services(settings))
    collectors: list[Collector] = [SupervisorCollector(watchdog)]
    if settings.orchestration.enabled:
        collectors.append(DagsterRunsCollector(settings))
    serve_metrics(settings, SUPERVISOR_NAME, collectors)
    mark_ready(settings.state_path, SUPERVISOR_NAME)
    console.print(f"supervising {', '.join(watchdog.watched)}")
    watchdog.run(stop)
    console.print("supervisor stopped")


def logs(
    service: Annotated[str, typer.Argument(help="service name, e.g. kafka")],
    lines: Annotated[int, typer.Option("--lines", "-n", help="how many lines to show")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new lines")] = False,
) -> None:
    """Print the end of a service's log."""
    settings = settings_or_exit()
    try:
        service_by_name(settings, service)
    except KeyError as exc:
        err_console.print(f"[bold red]error[/]: {exc.args[0]}")
        raise typer.Exit(2) from exc
    path = Supervisor(settings).log_path(service)
    if not path.exists():
        err_console.print(f"no log yet at {path}")
        raise typer.Exit(1)
    typer.echo(tail(path, lines))
    if follow:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            while True:
                chunk = handle.readline()
                if chunk:
                    typer.echo(chunk.decode(errors="replace"), nl=False)
                else:
                    time.sleep(0.5)


def prepare() -> None:
    """Check prerequisites, build the execution core, fetch what the embedded services need (Kafka's jars)."""
    settings = settings_or_exit()
    prepare_core()
    with exit_on_tickwave_error():
        for service in embedded_services(settings):
            if service.external_address:
                continue
            service.check_prerequisites()
            service.install()
            if isinstance(service, KafkaService):
                archive_classes(service)
            console.print(f"[green]✓[/] {service.name} ready to start")


def archive_classes(kafka: KafkaService) -> None:
    """Write the broker's class-data archive when this JVM and these jars have none (a broker start and stop)."""
    started = time.monotonic()
    with console.status("writing Kafka's class-data archive (a broker start and stop)..."):
        written = kafka.archive_classes()
    if written:
        console.print(f"[green]✓[/] Kafka's class-data archive written ({time.monotonic() - started:.0f} s)")


def prepare_core() -> None:
    """Build the execution core (Rust) when its build is missing or stale (:mod:`app.core_build`); else exit 1."""
    if core_build.remove_former_build():
        console.print("[green]✓[/] removed the environment's Python modules compiled to C: the sources run")
    if core_build.is_fresh():
        console.print("[green]✓[/] execution core (Rust) up to date")
        return
    missing = core_build.missing_tools()
    if missing is not None:
        err_console.print(f"execution core not built: it needs {missing}")
        raise typer.Exit(1)
    seconds = _build_or_exit(
        core_build.build, "building the execution core (Rust, release; about a minute from nothing)"
    )
    console.print(f"[green]✓[/] execution core (Rust) built ({seconds:.0f} s)")


def _build_or_exit(build: Callable[[], Path], doing: str) -> float:
    """Run ``build`` under a status line saying what it is ``doing``; return its seconds (failed: print, exit 1)."""
    started = time.monotonic()
    with console.status(f"{doing}..."):
        try:
            build()
        except subprocess.CalledProcessError as exc:
            output = escape(exc.stdout[-4000:] + exc.stderr[-4000:])
            err_console.print(f"{doing} failed:\n{output}")
            raise typer.Exit(1) from exc
    return time.monotonic() - started


def register(app: typer.Typer) -> None:
    """Add the lifecycle commands to the root app."""
    app.command()(prepare)
    app.command()(up)
    app.command()(status)
    app.command()(down)
    app.command()(supervise)
    app.command()(logs)
