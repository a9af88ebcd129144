"""ClickHouse's JDBC driver, as DBeaver, DataGrip and Metabase use it, against the warehouse.

The driver and its runtime jars come from Maven Central by the locked list ``jdbc/jars-<version>.txt``
(each SHA-256 checked, as Kafka's jars: ``adapters/maven.py``) into a cache shared by every checkout;
``jdbc/JdbcConformance.java`` is compiled with javac at run time and run once per user with the
driver's default URL, ``jdbc:clickhouse://<host>:<port>/<database>``: nothing turned off, so the
driver asks for ClickHouse's block compression (``compress=1``) as it does for every user of it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from adapters.maven import MAVEN_CENTRAL, download_locked, fill_cache, read_locked_list
from adapters.warehouse.address import warehouse_address
from adapters.warehouse.credentials import resolve_credentials
from tickwave.config import Settings
from tickwave.errors import ConfigurationError

DRIVER_VERSION = "0.10.0"
HERE = Path(__file__).with_name("jdbc")
PROGRAM = HERE / "JdbcConformance.java"
LOCK = HERE / f"jars-{DRIVER_VERSION}.txt"

Role = Literal["service", "analyst"]


@dataclass(frozen=True)
class Step:
    """One step of the program's run: what a tool did, whether it worked, and what it saw or the error."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class JdbcRun:
    """A run of the program as one user: its exit status, its steps in order and what it wrote to stderr."""

    returncode: int
    steps: list[Step]
    stderr: str

    def failed(self) -> dict[str, str]:
        """The failed steps, by name, with their errors."""
        return {step.name: step.detail for step in self.steps if not step.ok}

    def step(self, name: str) -> Step:
        """The step named ``name`` (KeyError when the program never reached it)."""
        return next(step for step in self.steps if step.name == name)


def default_cache_dir() -> Path:
    """The shared cache of the driver's jars (honours XDG_CACHE_HOME)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tickwave" / f"clickhouse-jdbc-{DRIVER_VERSION}"


def fetch_driver(target: Path | None = None, repository: str = MAVEN_CENTRAL) -> Path:
    """The folder of the driver's jars, fetched once by the locked list (a changed byte refused)."""
    jars = read_locked_list(LOCK)

    def fill(staging: Path) -> None:
        fallback = "or fetch the jars listed in tests/conformance/jdbc/ by hand into the cache"
        download_locked(jars, repository, staging, setting="the Maven repository", fallback=fallback)

    return fill_cache(target or default_cache_dir(), fill, DRIVER_VERSION)


def _java_tool(name: str) -> str:
    home = os.environ.get("JAVA_HOME")
    tool = str(Path(home) / "bin" / name) if home else shutil.which(name)
    if not tool or not Path(tool).exists():
        raise ConfigurationError(
            f"`{name}` is needed for the JDBC conformance test: install a JDK 17+ "
            "(Debian/Ubuntu: apt-get install openjdk-17-jdk-headless) or set JAVA_HOME"
        )
    return tool


def compile_program(jars: Path, classes: Path) -> Path:
    """Compile the program against the driver's jars into ``classes``."""
    classes.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [_java_tool("javac"), "-d", str(classes), "-cp", f"{jars}/*", str(PROGRAM)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return classes


def default_url(settings: Settings, database: str) -> str:
    """The URL a user types into DBeaver: host, port and database, no option."""
    address = warehouse_address(settings)
    return f"jdbc:clickhouse://{address.host_port}/{database}"


def run_program(
    jars: Path, classes: Path, settings: Settings, role: Role, database: str, table: str, *, url: str | None = None
) -> JdbcRun:
    """Run the program as ``role`` (its password in the environment, never in argv) and read its steps."""
    credentials = resolve_credentials(settings)
    user, password = (
        (credentials.user, credentials.password)
        if role == "service"
        else (credentials.analyst_user, credentials.analyst_password)
    )
    environment = {
        **os.environ,
        "JDBC_URL": url or default_url(settings, database),
        "JDBC_USER": user,
        "JDBC_PASSWORD": password.get_secret_value(),
        "JDBC_DATABASE": database,
        "JDBC_TABLE": table,
    }
    completed = subprocess.run(
        [_java_tool("java"), "-cp", f"{jars}/*{os.pathsep}{classes}", "JdbcConformance", role],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    steps = []
    for line in completed.stdout.splitlines():
        name, outcome, detail = [*line.split("\t", 2), "", ""][:3]
        steps.append(Step(name, outcome == "ok", detail))
    return JdbcRun(completed.returncode, steps, completed.stderr)
