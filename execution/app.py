"""Wiring: settings to a running execution process (journal, broker, engine, Kafka loops).

Kept apart from ``__main__`` so tests and the benchmark build the same service in-process.
:func:`serve` is the one way either process runs as a process: ``python -m execution [audit]``
and ``tickwave execution run|audit`` (what the supervisor, systemd and compose start) both call it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from adapters.bus import default_principal, resolve_bootstrap
from adapters.endpoints import mark_ready
from adapters.gcpause import start_gc_freezer
from adapters.health import HealthReporter
from adapters.metrics import serve_metrics
from execution.brokers.registry import open_broker
from execution.connectors import ControlListener, KafkaPublisher, prime_prices, run_hot_loop
from execution.core.broker import Broker
from execution.core.engine import Engine
from execution.core.limits import RiskLimits
from execution.core.memory_journal import JournalLike
from execution.core.sizing import SizingPolicy
from execution.fence import AccountFence, Fence
from execution.journal import JOURNAL_NAME, Journal, journal_dir
from execution.metrics import ExecutionCollector
from execution.service import ExecutionService, Publisher, TickChecks
from tickwave.clock import Clock, SystemClock
from tickwave.config import Settings
from tickwave.errors import ConfigurationError, ServiceError, TickwaveError
from tickwave.instruments import registry
from tickwave.topics import AUDIT, EXECUTION

logger = logging.getLogger(__name__)

LOCK_NAME = "instance.lock"
CURSOR_NAME = "audit.cursor"


def instance_dir(settings: Settings) -> Path:
    """Return the directory of this instance's journal, ledger and lock."""
    return journal_dir(settings.state_path, settings.execution.instance_id)


def build_broker(settings: Settings, clock: Clock) -> Broker:
    """Return the configured broker, from the registry (:mod:`execution.brokers.registry`)."""
    return open_broker(settings, clock, instance_dir(settings))


def build_service(
    settings: Settings,
    publisher: Publisher,
    clock: Clock | None = None,
    broker: Broker | None = None,
    journal: JournalLike | None = None,
    fence: Fence | None = None,
    *,
    keep_every_order: bool = False,
) -> ExecutionService:
    """Build the engine, journal and broker for ``settings`` (nothing is replayed yet).

    ``broker`` and ``journal``, when given, are used instead of the configured ones (a replay
    keeps its journal and the paper ledger in memory: :mod:`execution.backtest`), and
    ``keep_every_order`` keeps ended orders in memory past the reconciliation's window (a replay
    counts its round trips from them).
    """
    clock = clock or SystemClock()
    execution = settings.execution
    limits = RiskLimits.from_settings(execution, registry(settings.symbols), settings.market)
    engine = Engine(limits, SizingPolicy.from_settings(execution), clock, execution.instance_id)
    if journal is None:
        journal = Journal(
            instance_dir(settings) / JOURNAL_NAME,
            fsync=execution.journal_fsync,
            chain_id=execution.instance_id,
            segment_bytes=execution.journal_segment_mb << 20,
        )
    checks = TickChecks.from_settings(settings.streams, settings.symbols)
    broker = broker or build_broker(settings, clock)
    return ExecutionService(
        engine,
        journal,
        broker,
        publisher,
        checks,
        execution.reconciliation.interval_s,
        execution.reconciliation.window_s,
        fence,
        keep_every_order=keep_every_order,
    )


@contextmanager
def single_instance(settings: Settings) -> Iterator[None]:
    """Hold the instance lock: two processes must never share a journal.

    Raises:
        ConfigurationError: when another process holds it.
    """
    path = instance_dir(settings) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ConfigurationError(
                f"another execution process holds {path}; stop it or give this one another execution.instance_id"
            ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the lock (so does the kernel on kill -9)


def serve(settings: Settings, is_audit_loader: bool = False) -> int:
    """Run the execution process (or the audit loader) until SIGTERM or SIGINT; return the exit code.

    Each runs as its own Kafka principal on the secured embedded broker (unless ``kafka.username``
    names one), says in one line that it stopped (0), or ends on an error in one line (1, no traceback).
    """
    name = "the audit loader" if is_audit_loader else "execution"
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d: stopping", signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    try:
        if is_audit_loader:
            run_audit(default_principal(settings, AUDIT), stop)
        else:
            run(default_principal(settings, EXECUTION), stop)
    except TickwaveError as exc:
        logger.error("%s ended on an error: %s", name, exc)
        return 1
    logger.info("%s stopped", name)
    return 0


def run(settings: Settings, stop: threading.Event) -> None:
    """Run the execution process until ``stop`` is set: reconcile, then take commands and signals."""
    bootstrap = resolve_bootstrap(settings)
    with single_instance(settings):  # this host, this state dir
        fence = AccountFence(settings, bootstrap, stop)  # every host: taken before the journal is replayed
        fence.claim()
        publisher = KafkaPublisher(settings, bootstrap, instance_dir(settings) / CURSOR_NAME)
        service = build_service(settings, publisher, fence=fence)
        try:
            service.start()
            publisher.counts.counting_from = service.journal.count  # the replayed tail is not this life's
            engine = service.engine
            collector = ExecutionCollector(
                publisher.counts,
                lambda: engine.view.trading_state,
                lambda: dict(engine.view.positions),  # one C-level copy: the engine's thread goes on
                lambda: service.tick_checks.rejected,
            )
            serve_metrics(settings, "execution", [collector])
            start_gc_freezer(stop)  # the replayed journal and every later survivor: out of the collector's walk
            control = ControlListener(settings, bootstrap, service, stop)
            control.start()
            control.ready.wait(30)
            primed = prime_prices(settings, bootstrap, service)
            logger.info("prices read back from %d ticks before the first signal", primed)
            reporter = HealthReporter(
                settings.state_path, "execution", lambda: execution_health(service), on_death=lambda _what: stop.set()
            )
            # No trading without a kill switch; a listener ending because the process stops is not a death.
            reporter.watch("the control listener", lambda: control.is_alive() or stop.is_set())
            reporter.follow_broker(settings, bootstrap)
            reporter.start()
            mark_ready(settings.state_path, "execution")
            try:
                run_hot_loop(settings, bootstrap, service, stop)
                # A stop between an acceptance and the loop's next poll left a fill that was due
                # uncollected (found by the kill -9 test): collect what the broker has before closing.
                service.poll_broker()
            finally:
                reporter.stop()
                stop.set()  # also when the loop failed (fenced): the control listener ends with it
            control.join(10)
            if control.failure is not None:
                raise control.failure
            if reporter.dead:
                raise ServiceError(f"execution stopped because {', '.join(reporter.dead)} died")
        finally:
            service.close()


BROKER_SILENT_S = 30.0  # no broker answer for this long: the broker counts as disconnected


def execution_health(service: ExecutionService) -> tuple[list[str], dict[str, Any]]:
    """The process's progress: last signal decided, journal position, trading state, broker answers."""
    now_ms = service.engine.clock.now_ms()
    answered = service.broker_answered_at_ms
    is_connected = answered is not None and now_ms - answered < BROKER_SILENT_S * 1000
    problems = [] if is_connected else [f"the broker has not answered for {BROKER_SILENT_S:.0f} s"]
    waiting_s = service.fence.waiting_s()
    if waiting_s is not None:
        problems.append(f"waiting {waiting_s:.0f} s for Kafka to confirm the fence; no order is sent meanwhile")
    journal_problem = service.space.problem
    if journal_problem is not None:
        problems.append(f"halted, deciding no signal: {journal_problem}")
    signal = service.last_signal
    detail = {
        "last_signal_id": signal[0] if signal else None,
        "last_signal_decided_at_ms": signal[1] if signal else None,
        "journal_position": service.journal.count,
        "broker": type(service.broker).__name__,
        "is_broker_connected": is_connected,
        "broker_answered_at_ms": answered,
        "trading_state": service.engine.view.trading_state,
        "journal_problem": journal_problem,
    }
    return problems, detail


def run_audit(settings: Settings, stop: threading.Event) -> None:
    """Run the audit loader (``orders.events`` -> warehouse) until ``stop`` is set."""
    from execution.audit import run_audit_loader

    bootstrap = resolve_bootstrap(settings)
    # Liveness only: `tickwave status` reads the cursor lag from the broker itself (a second consumer
    # in this process held its SIGTERM stop past the 20 s the tests allow, under load).
    reporter = HealthReporter(
        settings.state_path, "audit", lambda: ([], {}), interval_s=5.0, on_death=lambda _what: stop.set()
    )
    reporter.follow_broker(settings, bootstrap)  # a broker back elsewhere: exit, and be started again there
    reporter.start()
    mark_ready(settings.state_path, "audit")
    try:
        _backfill_bookings(settings)
        run_audit_loader(settings, bootstrap, stop)
    finally:
        reporter.stop()
    if reporter.dead:
        raise ServiceError(f"the audit loader stopped because {', '.join(reporter.dead)} died")


def _backfill_bookings(settings: Settings) -> None:
    """Book the warehouse's fills written before the engine booked them (a no-op once done).

    Run before loading, so an upgraded platform counts its history in trips, positions and P&L
    without anyone asking. A failure is logged, never fatal: the audit trail loads regardless.
    """
    from execution.backfill import backfill_warehouse

    try:
        result = backfill_warehouse(settings)
    except Exception:  # the loader's outer edge: named in the log, the audit trail loads anyway
        logger.exception("audit: booking the fills written before the engine booked them failed")
        return
    if result.symbols:
        logger.info(
            "audit: booked %d fills written before the engine booked them; refused: %s",
            result.booked,
            ", ".join(outcome.symbol for outcome in result.refused) or "none",
        )
