"""A throwaway PostgreSQL cluster from the system's server binaries (``initdb``, ``pg_ctl``).

Started once per run, only when a test asks for it, under a temp directory of its own
(data dir, unix socket dir, server log), listening on 127.0.0.1 on a free port, every
connection authenticated by password (SCRAM). ``initdb`` refuses to run as root, so under
root (CI) the cluster runs as Debian's ``postgres`` user, else as ``nobody``; its directory
is then made directly under the system temp dir and given to that user (pytest's temp dirs
are private to root). Stopped with ``pg_ctl stop -m fast`` and removed at the end of the run.
The binaries come from ``pg_config --bindir``, ``/usr/lib/postgresql/<version>/bin`` (newest
first) or the PATH: ``make prereqs`` installs Debian's ``postgresql`` when they are missing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.endpoints import LOOPBACK, free_port

ADMIN = "tickwave_admin"
SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"  # throwaway: no durability
START_TIMEOUT_S = 60


def postgres_bindir() -> Path | None:
    """Return the directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None when not installed."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip():
            candidates.append(Path(found.stdout.strip()))
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(
        versions, key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0, reverse=True
    )
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    return next((path for path in candidates if all((path / name).is_file() for name in ("initdb", "pg_ctl"))), None)


def _unprivileged_user() -> tuple[int, int] | None:
    """The user the cluster runs as: None when this process is not root, else ``postgres`` or ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root, and neither a postgres nor a nobody user exists to run PostgreSQL as")


@dataclass(frozen=True)
class PostgresCluster:
    """A running cluster: where it listens, its administrator's password, and its files."""

    bindir: Path
    root: Path
    port: int
    admin_password: str
    owner: tuple[int, int] | None  # (uid, gid) it runs as, None: this process's user

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def create_database(self, name: str) -> str:
        """Create database ``name`` owned by a new login role ``name`` with a password of its own; return its URL."""
        from psycopg2 import sql

        password = secrets.token_urlsafe(24)
        self.execute("postgres", sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(name)), (password,))
        self.execute("postgres", sql.SQL("CREATE DATABASE {0} OWNER {0}").format(sql.Identifier(name)))
        return f"postgresql://{name}:{password}@{LOOPBACK}:{self.port}/{name}"

    def execute(self, database: str, statement: Any, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement as the administrator over TCP (autocommit); return its rows (none for DDL)."""
        import psycopg2

        connection = psycopg2.connect(
            host=LOOPBACK, port=self.port, user=ADMIN, password=self.admin_password, dbname=database, connect_timeout=10
        )
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement, parameters)
                return list(cursor.fetchall()) if cursor.description else []
        finally:
            connection.close()

    def run(self, program: str, *arguments: str) -> None:
        """Run one of the cluster's programs as its owner; raise with its output when it fails."""
        done = subprocess.run(
            [str(self.bindir / program), *arguments],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.root,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC"},
            user=self.owner[0] if self.owner else None,
            group=self.owner[1] if self.owner else None,
            extra_groups=[] if self.owner else None,
            timeout=START_TIMEOUT_S + 30,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{program} {' '.join(arguments)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )


def start_cluster(bindir: Path) -> PostgresCluster:
    """Create and start a cluster under a new temp directory (the caller stops it with :func:`stop_cluster`)."""
    owner = _unprivileged_user()
    root = Path(tempfile.mkdtemp(prefix="tickwave-postgres-"))
    cluster = PostgresCluster(bindir, root, free_port(), secrets.token_urlsafe(24), owner)
    password_file = root / "admin.password"
    password_file.write_text(cluster.admin_password)
    cluster.socket_dir.mkdir()
    if owner is not None:
        for path in (root, password_file, cluster.socket_dir):
            os.chown(path, *owner)
    try:
        cluster.run(
            "initdb",
            "-D",
            str(cluster.data_dir),
            "-U",
            ADMIN,
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        password_file.unlink()
        options = f"-k {cluster.socket_dir} -h {LOOPBACK} -p {cluster.port} {SERVER_OPTIONS}"
        cluster.run(
            "pg_ctl",
            "-D",
            str(cluster.data_dir),
            "-l",
            str(cluster.log),
            "-o",
            options,
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "start",
        )
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: PostgresCluster) -> None:
    """Stop the server (fast shutdown: open sessions are ended) and remove its directory."""
    try:
        if (cluster.data_dir / "postmaster.pid").exists():
            cluster.run("pg_ctl", "-D", str(cluster.data_dir), "-m", "fast", "-w", "-t", "30", "stop")
    except (RuntimeError, subprocess.TimeoutExpired):
        with contextlib.suppress(OSError, ValueError, IndexError):  # pg_ctl failed: the postmaster itself, at once
            os.kill(int((cluster.data_dir / "postmaster.pid").read_text().split()[0]), signal.SIGQUIT)
    finally:
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """The run's throwaway PostgreSQL cluster (tests isolate by database: ``create_database``)."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.fail(
            "PostgreSQL's server binaries (initdb, pg_ctl) are missing: `make prereqs` installs them "
            "(apt-get install postgresql)"
        )
    cluster = start_cluster(bindir)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)
