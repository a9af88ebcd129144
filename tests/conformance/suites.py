"""The official clients' own test suites against ``tickwave warehouse serve``, with their counts.

``make conformance`` (``python -m tests.conformance``) starts an embedded warehouse on a free
loopback port and runs each suite against it as the service user:

- clickhouse-connect's integration tests and dbt-clickhouse's adapter tests (pytest, a test that
  hangs failed after 300 s so the run ends with its counts), each in an
  environment of its own installed by uv from a locked list with a SHA-256 for every file
  (``<suite>-<version>.txt`` beside this module: the client's version, which for dbt-clickhouse is
  that of its tests and for clickhouse-connect the one the project locks, its tests taken from the
  newest tree of them there is);
- clickhouse-go's tests (``go test``), from its module zip on the Go module proxy, checked by
  ``go`` against the checksum database and against the ``h1:`` digest pinned here.

Neither PyPI sdist carries its project's tests, so those two suites come from the project's
archive of a release tag or a commit, checked against a digest of the suite's files pinned here (the archive's own bytes
may differ from one download to the next; the files may not); ``--sources DIR`` takes them from
``DIR/<suite>-<version>/`` instead, under the same check. Nothing of theirs is kept in the
repository: everything lands in the cache (``~/.cache/tickwave/conformance``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from adapters.maven import fill_cache
from tickwave.errors import ConfigurationError, ServiceError

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Target:
    """Where the suites find the warehouse, and as whom."""

    host: str
    port: int
    user: str
    password: str
    native_port: int | None = None  # the native protocol's port, where the warehouse serves one


@dataclass
class Counts:
    """A suite's outcome: its tests by result, or why it could not run."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0
    note: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Every test the suite reported."""
        return self.passed + self.failed + self.skipped + self.errors

    def line(self, name: str) -> str:
        """The suite's closing line, as its runner would print it."""
        ran = self.total - self.skipped
        summary = f"{self.passed} of {ran} passed, {self.failed + self.errors} failed, {self.skipped} skipped"
        return f"{name}: {summary}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class PythonSuite:
    """A pytest suite: its tests' tree in the project's archive, their digest, its client's locked environment."""

    name: str
    version: str  # the client's, as locked in ``<name>-<version>.txt``
    tree: str  # the git tag or commit the tests are taken from
    paths: tuple[str, ...]  # what of the archive is the suite
    digest: str  # tree_digest() of those paths
    tests: tuple[str, ...]  # pytest's arguments
    environment: Callable[[Target], dict[str, str]]

    @property
    def archive(self) -> str:
        """The tree's archive on GitHub."""
        return f"https://github.com/ClickHouse/{self.name}/archive/{self.tree}.tar.gz"

    @property
    def label(self) -> str:
        """The suite's folder name under ``--sources``: its tag's version, or its commit's first 12 digits."""
        return f"{self.name}-{self.tree.removeprefix('v')[:12]}"

    @property
    def lock(self) -> Path:
        """The hashed requirements of the suite's environment."""
        return HERE / f"{self.name}-{self.version}.txt"


@dataclass(frozen=True)
class GoSuite:
    """A Go module's tests: the module, its version and its ``h1:`` digest (as in go.sum)."""

    name: str
    module: str
    version: str
    digest: str
    packages: tuple[str, ...]
    environment: Callable[[Target], dict[str, str]]


def _address(target: Target, prefix: str, port: int, user: str = "USER", **fixed: str) -> dict[str, str]:
    # Every suite reads where the warehouse is and as whom from <prefix>HOST, PORT, USER (or its name) and PASSWORD.
    where = {"HOST": target.host, "PORT": str(port), user: target.user, "PASSWORD": target.password}
    return {prefix + key: value for key, value in {**where, **fixed}.items()}


def pytest_suite(
    name: str,
    version: str,
    *,
    tree: str = "",
    paths: tuple[str, ...],
    digest: str,
    tests: tuple[str, ...],
    environment: Callable[[Target], dict[str, str]],
) -> PythonSuite:
    """A pytest suite of ClickHouse's repository ``name``, its client at ``version``, tests from its tag by default."""
    options = ("-p", "no:cacheprovider", "--timeout=300")  # a hung test fails after 300 s: the run ends with counts
    return PythonSuite(name, version, tree or f"v{version}", paths, digest, (*tests, *options), environment)


# The newest tree of the client's tests there is (no sdist carries the locked release's tests; this commit follows
# 1.7.2), against the client the project locks.
CLICKHOUSE_CONNECT = pytest_suite(
    "clickhouse-connect",
    "1.12.0",
    tree="842e4131e76cc44cef00052a48f695c57a5c187c",
    paths=("tests", "pyproject.toml"),
    digest="9a25a120a6acc6e929954dd4c7b1b6962a3f64c7ea1aac41b181e80352eac5cc",
    tests=("tests/integration_tests", "-o", "addopts=", "-o", "log_cli=false"),
    environment=lambda target: _address(target, "CLICKHOUSE_CONNECT_TEST_", target.port, DOCKER="False"),
)

DBT_CLICKHOUSE = pytest_suite(
    "dbt-clickhouse",
    "1.10.1",
    paths=("tests", "pytest.ini"),
    digest="a3ab0bdfdbd0d889d8cfd244b40be1f4c364038370b03811d39b75568a39bb02",
    tests=("tests/integration", "-p", "dbt_users", "-p", "dbt_cluster"),
    environment=lambda target: {
        # dbt_users.py: the conftest's grant users are not created; dbt_cluster.py: cluster tests skipped
        "PYTHONPATH": str(HERE / "plugins"),
        **_address(target, "DBT_CH_TEST_", target.port, USE_DOCKER="false"),
    },
)

CLICKHOUSE_GO = GoSuite(
    name="clickhouse-go",
    module="github.com/ClickHouse/clickhouse-go/v2",
    version="v2.51.0",
    digest="h1:aoTTC+qxKf1O2XojwC5scRtPjJ9JdRJdkLH9aEWWwWc=",
    packages=("./tests/...",),
    environment=lambda target: {
        # The suite opens every set over the native port first; its HTTP tests read CLICKHOUSE_HTTP_PORT.
        **_address(target, "CLICKHOUSE_", target.native_port or 9000, user="USERNAME", USE_DOCKER="false"),
        "CLICKHOUSE_HTTP_PORT": str(target.port),
    },
)


def cache_dir() -> Path:
    """Where the suites, their environments and their reports land (honours XDG_CACHE_HOME)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tickwave" / "conformance"


def tree_digest(root: Path, paths: tuple[str, ...]) -> str:
    """SHA-256 over every file under ``paths`` of ``root``: its path and its bytes' SHA-256, sorted."""
    digest = hashlib.sha256()
    files = sorted(
        file
        for path in paths
        for file in ([root / path] if (root / path).is_file() else (root / path).rglob("*"))
        if file.is_file() and "__pycache__" not in file.parts
    )
    for file in files:
        relative = file.relative_to(root).as_posix()
        digest.update(f"{relative}\0{hashlib.sha256(file.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def suite_source(suite: PythonSuite, sources: Path | None) -> Path:
    """The suite's files, from ``sources`` or its release archive, checked against the pinned digest."""
    label = suite.label
    if sources is not None:
        folder = sources / label
    else:

        def fill(staging: Path) -> None:
            with urllib.request.urlopen(suite.archive, timeout=120) as response:
                data = response.read()
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                archive.extractall(staging, filter="data")
            (top,) = [entry for entry in staging.iterdir() if entry.is_dir()]
            for entry in top.iterdir():
                entry.rename(staging / entry.name)
            top.rmdir()

        try:
            folder = fill_cache(cache_dir() / "sources" / label, fill, suite.tree)
        except OSError as exc:
            raise ServiceError(
                f"fetching {suite.archive} failed ({exc}); pass --sources DIR holding {label}/ instead"
            ) from exc
    found = tree_digest(folder, suite.paths) if folder.is_dir() else "(missing)"
    if found != suite.digest:
        raise ServiceError(f"{folder}: the suite's files digest {found}, not the pinned {suite.digest}: refusing them")
    return folder


def _uv() -> list[str]:
    if uv := shutil.which("uv"):
        return [uv]
    for python in (sys.executable, shutil.which("python3") or ""):
        probe = subprocess.run([python, "-m", "uv", "--version"], capture_output=True, check=False) if python else None
        if probe is not None and probe.returncode == 0:
            return [python, "-m", "uv"]
    raise ConfigurationError("uv is needed to install the suites' environments (make bootstrap installs it)")


def python_environment(suite: PythonSuite) -> Path:
    """The suite's own virtual environment, installed once from its locked, hashed list."""
    lock = suite.lock
    marker = hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
    target = cache_dir() / "venvs" / f"{suite.name}-{suite.version}-{marker}"

    def fill(staging: Path) -> None:
        uv = _uv()
        subprocess.run([*uv, "venv", "-q", "--python", sys.executable, str(staging)], check=True)
        python = str(staging / "bin" / "python")
        install = [*uv, "pip", "install", "-q", "--python", python, "--require-hashes", "-r", str(lock)]
        subprocess.run(install, check=True)

    # A virtual environment does not move: build it in place, marked complete only when installed.
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        fill(target)
        (target / ".complete").write_text(marker)
    return target / "bin" / "python"


def run_python_suite(suite: PythonSuite, target: Target, sources: Path | None, report_dir: Path) -> Counts:
    """Run a pytest suite in its own environment and count its JUnit report."""
    folder = suite_source(suite, sources)
    python = python_environment(suite)
    report = report_dir / f"{suite.name}.xml"
    completed = _run(
        [str(python), "-m", "pytest", *suite.tests, "-q", f"--junitxml={report}"], folder, suite.environment(target)
    )
    (report_dir / f"{suite.name}.log").write_text(completed.stdout + completed.stderr)
    if not report.exists():
        return Counts(note=f"pytest exit {completed.returncode}: {completed.stdout[-500:]}{completed.stderr[-500:]}")
    return junit_counts(report)


def junit_counts(report: Path) -> Counts:
    """Counts of a JUnit XML report, with the failed tests' names."""
    counts = Counts()
    for case in ET.parse(report).iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        outcomes = {child.tag for child in case}
        if "skipped" in outcomes:
            counts.skipped += 1
        elif "error" in outcomes:
            counts.errors += 1
            counts.failures.append(name)
        elif "failure" in outcomes:
            counts.failed += 1
            counts.failures.append(name)
        else:
            counts.passed += 1
    return counts


def go_module(suite: GoSuite) -> Path:
    """The module's source from the Go module proxy, in a writable copy (its digest checked)."""
    go = shutil.which("go")
    if go is None:
        raise ConfigurationError("Go is needed for clickhouse-go's suite: install Go 1.26+")
    downloaded = subprocess.run(
        [go, "mod", "download", "-json", f"{suite.module}@{suite.version}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    info = json.loads(downloaded.stdout)
    if info.get("Sum") != suite.digest:
        raise ServiceError(f"{suite.module}@{suite.version} digests {info.get('Sum')}, not the pinned {suite.digest}")
    copy = cache_dir() / "sources" / f"{suite.name}-{suite.version}"
    if not copy.exists():
        shutil.copytree(info["Dir"], copy)
        for path in [copy, *copy.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    return copy


def run_go_suite(suite: GoSuite, target: Target, report_dir: Path) -> Counts:
    """Run a Go module's tests one package at a time and count ``go test -json``'s events."""
    folder = go_module(suite)
    command = [shutil.which("go") or "go", "test", "-json", "-count=1", "-p", "1", "-timeout", "20m", *suite.packages]
    completed = _run(command, folder, suite.environment(target))
    (report_dir / f"{suite.name}.json").write_text(completed.stdout)
    (report_dir / f"{suite.name}.log").write_text(completed.stderr)
    counts = go_counts(completed.stdout)
    if counts.total == 0:
        output = [json.loads(line).get("Output", "") for line in completed.stdout.splitlines() if line.startswith("{")]
        counts.note = f"go test exit {completed.returncode}: {''.join(output)[-500:]}{completed.stderr[-300:]}"
    return counts


def go_counts(stream: str) -> Counts:
    """Counts of ``go test -json`` output: every test and subtest's final result."""
    counts = Counts()
    for line in stream.splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if not event.get("Test"):
            continue
        action = event.get("Action")
        if action == "pass":
            counts.passed += 1
        elif action == "fail":
            counts.failed += 1
            counts.failures.append(f"{event.get('Package')}::{event['Test']}")
        elif action == "skip":
            counts.skipped += 1
    return counts


def _run(command: list[str], folder: Path, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a suite's command in ``folder`` with its own variables, its output kept, within an hour."""
    # The suites read their own variables only; nothing of this project's settings leaks into them.
    clean = {key: value for key, value in os.environ.items() if not key.startswith("TICKWAVE_")}
    return subprocess.run(
        command, cwd=folder, env={**clean, **environment}, capture_output=True, text=True, timeout=3600, check=False
    )
