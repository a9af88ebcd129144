"""Run the dataflow: one process in the foreground, or N Bytewax processes.

State lives under ``<state dir>/data/streams/recovery`` (Bytewax's SQLite recovery
partitions, created once), so ``kill -9`` and a restart resume from the last snapshot.
With ``processes > 1`` each process runs ``python -m streams.worker`` with its process id
and every process's address; Kafka partitions are split among them. SIGTERM/SIGINT stop
every process, and on Linux so does the runner's death (even ``kill -9``: the kernel
sends them SIGTERM); output written since the last snapshot is re-emitted on resume and
the sinks' idempotent keys absorb it.

The flow publishes its warehouse rows to ``streams.records``; each run also starts the
loader (``streams.loader``) as a child process that inserts them, and stops it with
the flow (after loading everything when ``--stop-at-end`` finished the topic).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from contextlib import closing
from datetime import timedelta
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from adapters.endpoints import LOOPBACK, free_port, mark_ready
from adapters.gcpause import start_gc_freezer
from adapters.health import HealthReporter, read_health
from adapters.metrics import serve_metrics
from adapters.parentdeath import die_with_parent
from streams.loader import LOADER_HEALTH, start_loader, stop_loader
from streams.shutdown import install_stop_handler, is_requested_stop, run_dataflow
from tickwave.clock import SystemClock
from tickwave.config import Settings, to_environment
from tickwave.errors import ServiceError

logger = logging.getLogger(__name__)

RECOVERY_PARTITIONS = 4
# Set once this process was asked to stop: a child ending after that is stopping too, not dying.
_STOPPING = threading.Event()


def recovery_dir(settings: Settings) -> Path:
    """Create (once) and return the recovery store of the dataflow."""
    from bytewax.recovery import init_db_dir

    path = settings.state_path / "data" / "streams" / "recovery"
    if not path.exists() or not any(path.glob("*.sqlite3")):
        path.mkdir(parents=True, exist_ok=True)
        init_db_dir(path, RECOVERY_PARTITIONS)  # type: ignore[no-untyped-call]  # bytewax's _bytewax.pyi has no annotations
        logger.info("created the recovery store in %s", path)
    return path


def run_in_process(settings: Settings, tail: bool = True) -> None:
    """Run the flow in this process until the input ends (``tail=False``) or SIGTERM/SIGINT."""
    from bytewax.errors import BytewaxRuntimeError
    from bytewax.recovery import RecoveryConfig

    from streams.app import flow_for

    recovery = RecoveryConfig(str(recovery_dir(settings)))  # type: ignore[no-untyped-call]  # unannotated in _bytewax.pyi
    install_stop_handler(_STOPPING)
    flow = flow_for(settings, SystemClock(), tail=tail)
    serve_metrics(settings, "streams")
    start_gc_freezer(threading.Event())  # state and model sessions out of the collector's walk (adapters.gcpause)
    loader = start_loader(settings)
    reporter = start_health(settings, recovery_dir(settings), {"the streams loader": loader})
    _mark_ready(settings)
    finished = False
    try:
        run_dataflow(flow, timedelta(seconds=settings.streams.snapshot_interval_s), recovery)
        finished = True
    except (KeyboardInterrupt, BytewaxRuntimeError) as exc:
        if not is_requested_stop(exc, _STOPPING):
            raise
    finally:
        reporter.stop()
        code = stop_loader(loader, drain=finished)
    if not finished and not reporter.dead and not code:
        logger.info("streams stopped; the next start resumes from the last snapshot")
    if reporter.dead:
        raise ServiceError(f"streams stopped because {', '.join(reporter.dead)} died; see the log lines above")
    if code:
        raise ServiceError(f"the streams loader exited with code {code}; see its log lines above")


def run_processes(settings: Settings, processes: int, tail: bool = True) -> int:
    """Run ``processes`` Bytewax processes and wait for them; return the worst exit code."""
    _check_partitions(settings, processes)
    groups = settings.streams.symbol_groups
    if 0 < groups < processes:
        logger.warning(
            "streams.symbol_groups=%d < %d processes: the bars, features and models run in %d of them (each group is "
            "one key); a new recovery store may use 0, one group per process (TICKWAVE_STREAMS_SYMBOL_GROUPS)",
            groups,
            processes,
            groups,
        )
    store = recovery_dir(settings)
    addresses = ";".join(f"{LOOPBACK}:{free_port()}" for _ in range(processes))
    children: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        _STOPPING.set()
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)

    # Installed before any child starts: a signal in between must not leave children behind.
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    # The kernel SIGTERMs each Bytewax process if this one dies without forwarding (kill -9).
    # A preexec_fn is safe here: no other Python thread runs yet (_check_partitions's admin
    # client is gone, the loader comes after); the native threads of imports (OpenBLAS's
    # workers, pyarrow's jemalloc) hold no lock the hook needs, which only calls prctl,
    # os.getppid and os._exit (adapters.parentdeath).
    preexec = die_with_parent()
    for index in range(processes):
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "streams.worker",
                    "--index",
                    str(index),
                    "--addresses",
                    addresses,
                    "--recovery-dir",
                    str(store),
                    "--snapshot-interval-s",
                    str(settings.streams.snapshot_interval_s),
                    "--tail",
                    str(tail).lower(),
                ],
                env={**os.environ, **to_environment(settings)},
                preexec_fn=preexec,
            )
        )
    loader = start_loader(settings)
    watched = {
        "the streams loader": loader,
        **{f"bytewax process {index}": child for index, child in enumerate(children)},
    }
    reporter = start_health(settings, store, watched)
    _mark_ready(settings)
    code = max(child.wait() for child in children)
    reporter.stop()
    code = max(code, stop_loader(loader, drain=code == 0 and not tail))
    return max(code, 1 if reporter.dead else 0)


def start_health(
    settings: Settings, store: Path, children: dict[str, subprocess.Popen[bytes]], interval_s: float = 2.0
) -> HealthReporter:
    """Report the flow's health every ``interval_s``; a child that dies stops the flow (SIGTERM to this process)."""

    def check() -> tuple[list[str], dict[str, Any]]:
        from streams.connectors import PARTITION_PROGRESS

        problems: list[str] = []
        loader = read_health(settings.state_path, LOADER_HEALTH)
        if loader is None or loader.is_stale():
            problems.append("the streams loader is not reporting")
        detail: dict[str, Any] = {
            "last_epoch": last_epoch(store),
            "partitions": {str(partition): progress for partition, progress in sorted(PARTITION_PROGRESS.items())},
            "loader": None if loader is None else {**loader.detail, "pid": loader.pid, "problems": loader.problems},
        }
        return problems, detail

    def take_down(what: str) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # run_in_process: Bytewax stops; run_processes: forwarded to children

    reporter = HealthReporter(settings.state_path, "streams", check, interval_s, on_death=take_down)
    for what, child in children.items():
        reporter.watch(what, partial(_running_or_stopped, child))
    return reporter.start()


def _running_or_stopped(child: subprocess.Popen[bytes]) -> bool:
    """False only for a child that died on its own: not one that finished cleanly or was told to stop.

    ``tickwave down`` signals the whole process group, so the loader may see SIGTERM before
    this process does; a finite run's Bytewax processes end with 0.
    """
    code = child.poll()
    return code is None or code in (0, -signal.SIGTERM, -signal.SIGINT) or _STOPPING.is_set()


def last_epoch(store: Path) -> dict[str, Any] | None:
    """Return the newest recovery epoch the flow's workers reached and when, from the recovery store."""
    import sqlite3

    newest: dict[str, Any] | None = None
    for path in sorted(store.glob("*.sqlite3")):
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)) as connection:
                row = connection.execute(
                    "SELECT worker_frontier, created_at FROM fronts ORDER BY ex_num DESC, worker_frontier DESC LIMIT 1"
                ).fetchone()
        except sqlite3.Error:
            continue  # being written: the next report reads it
        if row is not None and (newest is None or row[0] > newest["epoch"]):
            newest = {"epoch": row[0], "written_at": row[1]}
    return newest


def _check_partitions(settings: Settings, processes: int) -> None:
    """Refuse more processes than the ticks topic has partitions (the extra ones would idle)."""
    from adapters.bus import resolve_bootstrap
    from streams.connectors import TickTopicSource
    from tickwave.topics import TICKS, topic_name

    topic = topic_name(settings, TICKS)
    count = len(TickTopicSource(resolve_bootstrap(settings), topic).list_parts())  # raises if it does not exist
    if count < processes:
        raise ServiceError(
            f"{processes} streams processes need at least {processes} partitions of {topic}, which has {count}: "
            f"set kafka.ticks_partitions (TICKWAVE_KAFKA_TICKS_PARTITIONS) to {processes} or more, then "
            f"`tickwave topics create` (or add partitions with kafka-topics --alter)"
        )


def _mark_ready(settings: Settings) -> None:
    mark_ready(settings.state_path, "streams")
