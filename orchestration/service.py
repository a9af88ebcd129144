"""``tickwave orchestrate``: the Dagster webserver and daemon in the foreground, until SIGTERM.

Dagster's instance lives under the state dir (``data/dagster``: SQLite run, event and
schedule storage, telemetry off), its storage on PostgreSQL instead when
``orchestration.postgres_url`` is set. One code server (``dagster api grpc``) loads
``orchestration.definitions`` once, on a Unix socket in a private (0700) temporary folder, and
the webserver (127.0.0.1 only) and the daemon both read the definitions from it: each would
otherwise start a code server of its own, ~330 MB apiece. The daemon runs only the daemons
Tickwave uses (no declarative automation, no freshness daemon). Runs are launched by the code
server, a process per run. The processes are started with SIGINT and SIGTERM restored to their
defaults (a process started in the background of a non-interactive shell inherits SIGINT
ignored, which Dagster's processes then keep) and die with this process. SIGTERM (or
Ctrl-C) stops them, the webserver first, the code server last, SIGKILL only after a timeout.
What it costs: code changes need a restart (the UI's "Reload" re-reads the running server). The warehouse's
password never appears on a command line: the children inherit the ``TICKWAVE_*``
environment and resolve it as every Tickwave process does; nor does PostgreSQL's: ``dagster.yaml``
names the variable that holds the URL (``{env: TICKWAVE_ORCHESTRATION_POSTGRES_URL}``), set in
the children's environment only, and the log shows the server without its credentials.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

from adapters.parentdeath import die_with_parent
from adapters.process_memory import resident_bytes
from orchestration.automation_status import graphql
from orchestration.dbt_project import DBT_RUN_TAG
from tickwave.config import Settings
from tickwave.config.environment import env_name
from tickwave.errors import ServiceError

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFINITIONS_MODULE = "orchestration.definitions"
LOCATION_NAME = "orchestration"  # as dg.toml names it (its root module)
STOP_TIMEOUT_S = 20.0
MEMORY_LOOK_S = 60.0  # how often the daemon's memory is looked at (orchestration.daemon_memory_limit_mb)

# The variable Dagster reads PostgreSQL's URL from (dagster.yaml names it; its value never lands in a file).
POSTGRES_URL_VARIABLE = env_name("orchestration.postgres_url")

SQLITE_STORAGE = """\
# Written by `tickwave orchestrate`: a local instance, SQLite storage under this directory.
storage:
  sqlite:
    base_dir: {home}/storage
"""

POSTGRES_STORAGE = f"""\
# Written by `tickwave orchestrate`: run, event-log and schedule storage on PostgreSQL
# (orchestration.postgres_url, read from the environment); artifacts and compute logs here.
storage:
  postgres:
    postgres_url:
      env: {POSTGRES_URL_VARIABLE}
"""

INSTANCE_YAML = """\
local_artifact_storage:
  module: dagster._core.storage.root
  class: LocalArtifactStorage
  config:
    base_dir: {home}
# Each run's captured stdout/stderr, where Dagster puts them by default; the weekly maintenance job prunes them.
compute_logs:
  module: dagster._core.storage.local_compute_log_manager
  class: LocalComputeLogManager
  config:
    base_dir: {home}/storage
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 2
    # One dbt build at a time: two builds over the same models (a schedule and a launch from the
    # UI, or the 15-minute marts beside a daily backfill) would race to create the same tables.
    tag_concurrency_limits:
      - key: {dbt_tag}
        limit: 1
telemetry:
  enabled: false
nux:
  enabled: false
# No asset has an automation condition or a freshness policy: their daemons would poll for nothing.
auto_materialize:
  enabled: false
  use_sensors: false
freshness:
  enabled: false
"""


WORKSPACE_YAML = """\
# Written by `tickwave orchestrate`: the one code location, served by its code server on a Unix socket.
load_from:
  - grpc_server:
      socket: {socket}
      location_name: {location}
"""


def instance_home(settings: Settings) -> Path:
    """Return the Dagster instance directory under the state dir (``dagster_home`` writes it)."""
    return settings.state_path / "data" / "dagster"


def dagster_home(settings: Settings) -> Path:
    """Return the Dagster instance directory under the state dir, with ``dagster.yaml``."""
    home = instance_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    storage = SQLITE_STORAGE if settings.orchestration.postgres_url is None else POSTGRES_STORAGE
    (home / "dagster.yaml").write_text(storage.format(home=home) + INSTANCE_YAML.format(home=home, dbt_tag=DBT_RUN_TAG))
    return home


def write_workspace(home: Path, code_server: Path) -> Path:
    """Write ``workspace.yaml``: the one code location, read from the code server listening on ``code_server``."""
    workspace = home / "workspace.yaml"
    workspace.write_text(WORKSPACE_YAML.format(socket=code_server, location=LOCATION_NAME))
    return workspace


def storage_description(settings: Settings, home: Path) -> str:
    """Say where the instance stores runs, events and ticks, for the log: no credentials, only server and database."""
    url = settings.orchestration.postgres_url
    if url is None:
        return f"SQLite under {home / 'storage'}"
    parts = urlsplit(url.get_secret_value())
    return f"PostgreSQL at {parts.hostname or 'its local socket'}:{parts.port or 5432}{parts.path}"


def environment(settings: Settings, home: Path) -> dict[str, str]:
    """The webserver's and the daemon's environment: this one, the instance's home and PostgreSQL's URL if set."""
    variables = dict(os.environ)
    variables.update(
        {
            "DAGSTER_HOME": str(home),
            "GX_ANALYTICS_ENABLED": "false",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DAGSTER_DISABLE_TELEMETRY": "true",
        }
    )
    if settings.orchestration.postgres_url is not None:  # set here too when it came from the TOML file
        variables[POSTGRES_URL_VARIABLE] = settings.orchestration.postgres_url.get_secret_value()
    return variables


def _restore_signals_then(preexec: Callable[[], None] | None) -> Callable[[], None]:
    def start() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if preexec is not None:
            preexec()

    return start


def commands(port: int, home: Path, code_server: Path, read_only: bool = True) -> dict[str, list[str]]:
    """The code server's, webserver's and daemon's command lines (the venv's executables, the workspace in ``home``).

    The code server runs each launched run as ``<this python> -m dagster`` (no venv on PATH needed).
    With ``read_only`` (``orchestration.read_only``) the webserver refuses every mutation (launches,
    schedule and sensor toggles, terminations, deletions): any local account can reach its port.
    """
    binaries = Path(sys.executable).parent
    location = ["-w", str(home / "workspace.yaml")]
    return {
        "code server": [
            str(binaries / "dagster"),
            "api",
            "grpc",
            "--socket",
            str(code_server),
            "-m",
            DEFINITIONS_MODULE,
            "-d",
            str(REPO_ROOT),
            "--location-name",
            LOCATION_NAME,
            "--use-python-environment-entry-point",
        ],
        "webserver": [
            str(binaries / "dagster-webserver"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            *location,
            *(["--read-only"] if read_only else []),
        ],
        "daemon": [str(binaries / "dagster-daemon"), "run", *location],
    }


def listens(code_server: Path) -> bool:
    """Return True once the code server accepts connections on its socket (it binds after loading the definitions)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(code_server))
        except OSError:
            return False
    return True


WORKSPACE_QUERY = (
    "{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus "
    "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
)


def answers(port: int) -> bool:
    """Return True once the webserver answers and has loaded the code location (its schedules, jobs and assets).

    The webserver answers ``/server_info`` seconds before its code server has imported the
    definitions; until then GraphQL lists no loaded location, so readiness waits for the load.

    Raises:
        ServiceError: when the code location failed to load (the definitions' error is in the message).
    """
    try:
        answer = graphql(f"127.0.0.1:{port}", WORKSPACE_QUERY, timeout_s=5.0)
    except (OSError, ValueError):
        return False
    return workspace_loaded(answer)


def workspace_loaded(answer: dict[str, Any]) -> bool:
    """Return True when every code location of a ``WORKSPACE_QUERY`` answer is loaded.

    Raises:
        ServiceError: when a location loaded with an error (the definitions did not import).
    """
    workspace = (answer.get("data") or {}).get("workspaceOrError") or {}
    entries = workspace.get("locationEntries") or []
    if workspace.get("__typename") != "Workspace" or not entries:
        return False
    for entry in entries:
        loaded = entry.get("locationOrLoadError") or {}
        if entry.get("loadStatus") == "LOADED" and loaded.get("__typename") == "PythonError":
            raise ServiceError(f"Dagster could not load code location {entry.get('name')}: {loaded.get('message')}")
    return all(entry.get("loadStatus") == "LOADED" for entry in entries)


def run(settings: Settings, port: int, on_ready: Callable[[], None], stop: threading.Event | None = None) -> int:
    """Run the code server, the webserver and the daemon until SIGTERM/SIGINT (or ``stop``); return the exit code.

    Raises:
        ServiceError: when the code server or the webserver is not ready within ``orchestration.start_timeout_s``
            or a process ends on its own (its exit code is in the message; see its log lines).
    """
    from orchestration.dbt_project import prepare_manifest

    prepare_manifest()  # the manifest the definitions load, parsed here rather than in the code server
    home = dagster_home(settings)
    sockets = Path(tempfile.mkdtemp(prefix="tickwave-dagster-"))  # 0700: this user's processes only; a short path
    code_server = sockets / "code-server.sock"
    write_workspace(home, code_server)
    stop = stop or threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    variables = environment(settings, home)
    lines = commands(port, home, code_server, settings.orchestration.read_only)
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str) -> None:
        processes[name] = subprocess.Popen(
            lines[name], env=variables, cwd=REPO_ROOT, preexec_fn=_restore_signals_then(die_with_parent())
        )

    deadline = time.monotonic() + settings.orchestration.start_timeout_s
    try:
        start("code server")
        if not _wait(
            lambda: listens(code_server), processes, deadline, stop, "the Dagster code server", f"on {code_server}"
        ):
            return 0
        start("webserver")
        start("daemon")
        logger.info(
            "dagster: code server pid %d, webserver pid %d, daemon pid %d, home %s, storage: %s",
            processes["code server"].pid,
            processes["webserver"].pid,
            processes["daemon"].pid,
            home,
            storage_description(settings, home),
        )
        if not _wait(lambda: answers(port), processes, deadline, stop, "the Dagster webserver", f"on 127.0.0.1:{port}"):
            return 0
        logger.info(
            "dagster: UI and GraphQL at http://127.0.0.1:%d (%s)",
            port,
            "read-only: launch jobs with `dagster job launch`"
            if settings.orchestration.read_only
            else "full: any local account can launch jobs and toggle schedules",
        )
        on_ready()
        limit_mb, looked_at = settings.orchestration.daemon_memory_limit_mb, time.monotonic()
        while not stop.wait(1.0):
            _require_running(processes)
            if limit_mb and time.monotonic() - looked_at >= MEMORY_LOOK_S:
                looked_at = time.monotonic()
                restart_if_over(processes, "daemon", limit_mb, start)
        return 0
    finally:
        stop_processes(processes)
        shutil.rmtree(sockets, ignore_errors=True)


def _wait(
    is_ready: Callable[[], bool],
    processes: dict[str, subprocess.Popen[bytes]],
    deadline: float,
    stop: threading.Event,
    what: str,
    where: str,
) -> bool:
    # True once ready; False when stopped meanwhile.
    while not is_ready():
        _require_running(processes)
        if time.monotonic() > deadline:
            raise ServiceError(f"{what} did not answer {where} within orchestration.start_timeout_s")
        if stop.wait(0.5):
            return False
    return True


def _require_running(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for name, process in processes.items():
        code = process.poll()
        if code is not None:
            raise ServiceError(f"the Dagster {name} ended with exit code {code}")


def memory_mb(pid: int) -> float:
    """The memory ``pid`` holds in MB (:func:`adapters.process_memory.resident_bytes`; 0 when it is gone)."""
    try:
        return resident_bytes(psutil.Process(pid)) / 1e6
    except psutil.Error:
        return 0.0


def restart_if_over(
    processes: dict[str, subprocess.Popen[bytes]], name: str, limit_mb: int, start: Callable[[str], None]
) -> bool:
    """Restart the process ``name`` when its memory is past ``limit_mb``; return True when it was restarted.

    Dagster's daemon keeps growing for as long as it runs (dagster-io/dagster#32070); it keeps
    nothing of its own in memory (schedules, sensors and the run queue are in the instance's
    storage), so a restart costs one tick of each daemon and bounds the growth.
    """
    used_mb = memory_mb(processes[name].pid)
    if used_mb <= limit_mb:
        return False
    logger.warning(
        "dagster %s uses %.0f MB, over orchestration.daemon_memory_limit_mb (%d): restarting it",
        name,
        used_mb,
        limit_mb,
    )
    stop_processes({name: processes.pop(name)})
    start(name)
    return True


def stop_processes(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """Stop Dagster's processes by name: the webserver and the daemon, then the code server, then what outlived them.

    Their descendants too: a run's process (the code server's child), Dagster's resource trackers.
    """
    descendants = []
    for process in processes.values():
        try:
            descendants.extend(psutil.Process(process.pid).children(recursive=True))
        except psutil.Error:  # already gone
            continue
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for group in (("webserver", "daemon"), ("code server",)):  # the code server last: the others stop asking it
        started = [(name, processes[name]) for name in group if name in processes]
        for _, process in started:
            if process.poll() is None:
                process.terminate()
        for name, process in started:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("dagster %s did not stop within %.0f s: killing it", name, STOP_TIMEOUT_S)
                process.kill()
                process.wait()
    _, alive = psutil.wait_procs(descendants, timeout=max(0.1, deadline - time.monotonic()))
    for leftover in alive:
        logger.warning("dagster: pid %d outlived its parent: stopping it", leftover.pid)
        with contextlib.suppress(psutil.Error):
            leftover.terminate()
    _, alive = psutil.wait_procs(alive, timeout=5)
    for leftover in alive:
        with contextlib.suppress(psutil.Error):
            leftover.kill()
