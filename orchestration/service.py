"""``tickwave orchestrate``: the Dagster webserver and daemon in the foreground, until SIGTERM.

Dagster's instance lives under the state dir (``data/dagster``: SQLite run, event and
schedule storage, telemetry off), its storage on PostgreSQL instead when
``orchestration.postgres_url`` is set; both processes load ``orchestration.definitions`` and
listen on 127.0.0.1 only. They are started with SIGINT and SIGTERM restored to their
defaults (a process started in the background of a non-interactive shell inherits SIGINT
ignored, which Dagster's processes then keep) and die with this process. SIGTERM (or
Ctrl-C) stops both, the webserver first, SIGKILL only after a timeout. The warehouse's
password never appears on a command line: the children inherit the ``TICKWAVE_*``
environment and resolve it as every Tickwave process does; nor does PostgreSQL's: ``dagster.yaml``
names the variable that holds the URL (``{env: TICKWAVE_ORCHESTRATION_POSTGRES_URL}``), set in
the children's environment only, and the log shows the server without its credentials.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

from adapters.parentdeath import die_with_parent
from orchestration.automation_status import graphql
from tickwave.config import Settings
from tickwave.config.environment import env_name
from tickwave.errors import ServiceError

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFINITIONS_MODULE = "orchestration.definitions"
LOCATION_NAME = "orchestration"  # as dg.toml names it (its root module)
STOP_TIMEOUT_S = 20.0

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
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 2
telemetry:
  enabled: false
nux:
  enabled: false
"""


WORKSPACE_YAML = """\
# Written by `tickwave orchestrate`: the one code location, this repository's definitions.
load_from:
  - python_module:
      module_name: {module}
      working_directory: {root}
      location_name: {location}
"""


def dagster_home(settings: Settings) -> Path:
    """Return the Dagster instance directory under the state dir, with ``dagster.yaml`` and ``workspace.yaml``."""
    home = settings.state_path / "data" / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    storage = SQLITE_STORAGE if settings.orchestration.postgres_url is None else POSTGRES_STORAGE
    (home / "dagster.yaml").write_text(storage.format(home=home) + INSTANCE_YAML.format(home=home))
    (home / "workspace.yaml").write_text(
        WORKSPACE_YAML.format(module=DEFINITIONS_MODULE, root=REPO_ROOT, location=LOCATION_NAME)
    )
    return home


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
    variables.update({"DAGSTER_HOME": str(home), "GX_ANALYTICS_ENABLED": "false",
                      "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DAGSTER_DISABLE_TELEMETRY": "true"})  # fmt: skip
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


def commands(port: int, home: Path) -> dict[str, list[str]]:
    """The webserver's and the daemon's command lines (the venv's executables, the workspace in ``home``)."""
    binaries = Path(sys.executable).parent
    location = ["-w", str(home / "workspace.yaml")]
    return {
        "webserver": [str(binaries / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), *location],
        "daemon": [str(binaries / "dagster-daemon"), "run", *location],
    }


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
    """Run the webserver and the daemon until SIGTERM/SIGINT (or ``stop``); return the exit code.

    Raises:
        ServiceError: when the webserver does not answer within ``orchestration.start_timeout_s``
            or a process ends on its own (its exit code is in the message; see its log lines).
    """
    from orchestration.dbt_project import dbt_project

    dbt_project()  # the manifest the definitions load, parsed once here rather than in each process
    home = dagster_home(settings)
    stop = stop or threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    variables = environment(settings, home)
    processes = {
        name: subprocess.Popen(command, env=variables, cwd=REPO_ROOT,
                               preexec_fn=_restore_signals_then(die_with_parent()))
        for name, command in commands(port, home).items()
    }  # fmt: skip
    logger.info("dagster: webserver pid %d, daemon pid %d, home %s, storage: %s", processes["webserver"].pid,
                processes["daemon"].pid, home, storage_description(settings, home))  # fmt: skip
    try:
        deadline = time.monotonic() + settings.orchestration.start_timeout_s
        while not answers(port):
            _require_running(processes)
            if time.monotonic() > deadline:
                raise ServiceError(f"the Dagster webserver did not answer on 127.0.0.1:{port} within "
                                   f"{settings.orchestration.start_timeout_s:.0f} s")  # fmt: skip
            if stop.wait(0.5):
                return 0
        logger.info("dagster: UI and GraphQL at http://127.0.0.1:%d", port)
        on_ready()
        while not stop.wait(1.0):
            _require_running(processes)
        return 0
    finally:
        _stop(processes)


def _require_running(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for name, process in processes.items():
        code = process.poll()
        if code is not None:
            raise ServiceError(f"the Dagster {name} ended with exit code {code}")


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    # Their code servers (``dagster api grpc``) too: one started just before the stop had outlived its parent.
    descendants = []
    for process in processes.values():
        try:
            descendants.extend(psutil.Process(process.pid).children(recursive=True))
        except psutil.Error:  # already gone
            continue
    for name in ("webserver", "daemon"):
        process = processes[name]
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for name, process in processes.items():
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
