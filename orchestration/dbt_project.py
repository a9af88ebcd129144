"""Where the dbt project is, and the environment its ``profiles.yml`` reads the warehouse from.

The profile holds no address or secret: ``dbt_environment`` turns Tickwave's settings into
the ``DBT_CLICKHOUSE_*`` variables it reads, for dbt run by Dagster, tests or by hand.

Over HTTPS the profile sets ``secure`` and ``verify``; dbt-clickhouse (1.10) has no profile
key for a CA file, but with ``verify`` and no CA clickhouse-connect
verifies against OpenSSL's default trust store, which ``SSL_CERT_FILE`` names: so the
warehouse's CA, when there is one, is passed as ``SSL_CERT_FILE`` to dbt's process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.warehouse.address import warehouse_address
from adapters.warehouse.credentials import resolve_credentials
from tickwave.config import Settings, secret_env_names

if TYPE_CHECKING:
    from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt"
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))  # the venv's dbt, found without an activated venv
MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"  # where DbtProject reads it (its default target path)
_SOURCES = ("models", "macros", "tests", "dbt_project.yml", "profiles.yml")
# The tag on every job that runs `dbt build`; the instance's run queue lets one such run go at a time.
DBT_RUN_TAG = "tickwave/dbt"
DBT_RUN_TAGS = {DBT_RUN_TAG: "build"}


@lru_cache(maxsize=1)
def dbt_project() -> DbtProject:
    """Return the project, its manifest parsed now if missing or older than any project file.

    ``dbt parse`` needs no warehouse (the profile's variables have defaults), so loading the
    definitions works anywhere; under ``dagster dev`` dagster-dbt would re-parse anyway.
    """
    from dagster_dbt import DbtProject

    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    project.prepare_if_dev()
    prepare_manifest()
    return project


def prepare_manifest() -> Path:
    """Parse the project now if its manifest is missing or older than any project file; return the manifest.

    Imports neither Dagster nor dbt: ``tickwave orchestrate`` calls it before starting the code
    server, so the manifest is parsed once and the parent process stays small (dagster-dbt is ~50 MB).
    Two processes starting together parse once, and never read a half-written manifest (a file lock).
    """
    with _project_lock():
        if _is_stale(MANIFEST):
            parse_project()
    return MANIFEST


@contextmanager
def _project_lock() -> Iterator[None]:
    target = DBT_PROJECT_DIR / "target"
    target.mkdir(exist_ok=True)
    fd = os.open(target / ".parse.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# The profile's variables dbt hashes into a parse (its connection keys; not the password).
PROFILE_VARIABLES = (
    "DBT_CLICKHOUSE_HOST",
    "DBT_CLICKHOUSE_PORT",
    "DBT_CLICKHOUSE_USER",
    "DBT_CLICKHOUSE_DATABASE",
    "DBT_CLICKHOUSE_SECURE",
)
PARTIAL_PARSE = "partial_parse.msgpack"
PARSES = DBT_PROJECT_DIR / "target" / "parses"  # partial parses by what they were parsed for
PARSES_KEPT = 8
FAILED_KEPT = 5  # the target folders of failed invocations kept for a person to read


def parse_key(variables: str, environment: Mapping[str, str]) -> str:
    """Name what a partial parse is valid for besides the project's files: ``--vars`` and the profile.

    dbt parses the whole project again when either differs from the saved parse's (``Unable
    to do partial parsing because config vars, config profile, or config target have
    changed``): a parse made without them is no seed for a run with them.
    """
    profile = [environment.get(name, "") for name in PROFILE_VARIABLES]
    return hashlib.sha256(json.dumps([variables, profile]).encode()).hexdigest()[:16]


@contextmanager
def private_target(name: str, key: str | None = None) -> Iterator[Path]:
    """Yield a target folder of one dbt invocation's own, removed afterwards (kept if the body raised).

    dbt writes ``run_results.json``, the manifest and its logs into the target folder: two
    invocations sharing one (the compliance views built while the marts job runs) overwrite
    each other's files mid-run. dagster-dbt gives each of its invocations a folder of its own
    the same way, but leaves it behind (~7 MB a run). The last :data:`FAILED_KEPT` folders of
    invocations that raised stay, renamed ``failed-...``, for their logs and compiled SQL.

    With ``key`` (:func:`parse_key`), the partial parse last saved for that key is copied in,
    and the one this invocation writes is saved for the next, so an invocation with the same
    variables and warehouse parses only the files changed since. Without it, the project's
    own parse (no variables) is copied in.
    """
    target = DBT_PROJECT_DIR / "target"
    seed = PARSES / f"{key}.msgpack" if key else target / PARTIAL_PARSE
    if key is None and not seed.is_file():
        prepare_manifest()  # parses the project once (under its lock), leaving the partial parse to copy
    path = target / f"{name}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    with contextlib.suppress(FileNotFoundError):  # pruned meanwhile, or never saved: dbt parses it all
        shutil.copy2(seed, path / PARTIAL_PARSE)
    try:
        yield path
    except BaseException:
        failed = path.rename(target / f"failed-{path.name}")
        _keep_newest(target.glob("failed-*"), FAILED_KEPT, failed)
        raise
    else:
        if key:
            _save_parse(path / PARTIAL_PARSE, key)
        shutil.rmtree(path, ignore_errors=True)


def _save_parse(parse: Path, key: str) -> None:
    if not parse.is_file():
        return
    PARSES.mkdir(parents=True, exist_ok=True)
    saved = PARSES / f"{key}.msgpack"
    staged = PARSES / f".{key}-{uuid.uuid4().hex[:8]}"
    shutil.copy2(parse, staged)
    os.replace(staged, saved)  # a reader sees the old parse or the new one, never half of one
    _keep_newest(PARSES.glob("*.msgpack"), PARSES_KEPT, saved)


def _keep_newest(paths: Iterable[Path], count: int, newest: Path) -> None:
    def modified(path: Path) -> float:
        try:
            return float("inf") if path == newest else path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    for old in sorted(paths, key=modified, reverse=True)[count:]:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def run_dbt(
    settings: Settings,
    arguments: Sequence[str],
    database: str | None = None,
    timeout_s: float = 1800,
    variables: Mapping[str, Any] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``dbt <arguments>`` on the project against the configured warehouse, in a target folder of its own.

    The settings give the warehouse (:func:`dbt_environment`) and the marts' variables (:func:`dbt_vars`),
    to which ``variables`` (such as ``partition_day``) are added.
    """
    environment = child_environment(dbt_environment(settings, database))
    merged = json.dumps({**dbt_vars(settings), **(variables or {})})
    with private_target(arguments[0], parse_key(merged, environment)) as target:
        return subprocess.run(
            [
                DBT_EXECUTABLE,
                *arguments,
                "--project-dir",
                str(DBT_PROJECT_DIR),
                "--target-path",
                str(target),
                "--log-path",
                str(target),
                "--vars",
                merged,
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env=environment,
        )


def parse_project() -> None:
    """Write ``dbt/target/manifest.json`` with ``dbt parse`` (no warehouse needed).

    Raises:
        ConfigurationError: with dbt's output when the project does not parse.
    """
    from tickwave.errors import ConfigurationError

    quiet = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR)}
    environment = child_environment(quiet)
    done = subprocess.run(
        [DBT_EXECUTABLE, "parse", "--project-dir", str(DBT_PROJECT_DIR), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=environment,
    )
    if done.returncode != 0:
        raise ConfigurationError(f"dbt parse failed in {DBT_PROJECT_DIR}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def _is_stale(manifest: Path) -> bool:
    if not manifest.is_file():
        return True
    built = manifest.stat().st_mtime
    files = (path for name in _SOURCES for path in [DBT_PROJECT_DIR / name, *(DBT_PROJECT_DIR / name).rglob("*")])
    return any(path.is_file() and path.stat().st_mtime > built for path in files)


def dbt_environment(settings: Settings, database: str | None = None) -> dict[str, str]:
    """Return the variables ``dbt/profiles.yml`` reads: the warehouse's address, user, password and database.

    Raises:
        ServiceError: when the warehouse cannot be located or no password is known yet.
    """
    address = warehouse_address(settings)
    credentials = resolve_credentials(settings)
    environment = {
        "DBT_CLICKHOUSE_HOST": address.host,
        "DBT_CLICKHOUSE_PORT": str(address.port),
        "DBT_CLICKHOUSE_USER": credentials.user,
        "DBT_CLICKHOUSE_PASSWORD": credentials.password.get_secret_value(),
        "DBT_CLICKHOUSE_DATABASE": database or settings.clickhouse.database,
        "DBT_CLICKHOUSE_SECURE": str(address.is_secure),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
    }
    if address.ca_file is not None:  # the profile cannot name a CA: OpenSSL's default store is this file
        environment["SSL_CERT_FILE"] = str(address.ca_file)
    return environment


# Placeholders of the price_at_digits variable (filled by the dbt macro of that name).
PRICE_PLACEHOLDER = "__price__"
SYMBOL_PLACEHOLDER = "__symbol__"


def dbt_vars(settings: Settings) -> dict[str, Any]:
    """Return the variables the marts read from the settings: each symbol's units per lot, pip and currencies.

    ``mart_ttls`` is each mart's TTL from the retention table (:func:`adapters.retention.mart_retention`;
    None: kept forever), which the ``retention_ttl`` macro gives the mart's table.

    ``price_at_digits`` is :func:`tickwave.instruments.price_sql` with placeholders for the price and
    the symbol column (the ``price_at_digits`` macro fills them), so the marts round a shown price as
    the reports do, from the same registry.
    """
    from adapters.retention import mart_retention
    from tickwave.instruments import price_sql, registry

    def number(value: float) -> float | int:
        return int(value) if float(value).is_integer() else value  # ClickHouse multiplies Decimal by integers

    instruments = {
        name: {
            "contract_size": number(spec.contract_size),
            "pip_size": spec.pip_size,
            "base": spec.base,
            "quote": spec.quote,
        }
        for name, spec in registry(settings.symbols).items()
    }
    return {
        "instruments": instruments,
        "account_currency": settings.execution.account_currency,
        "price_at_digits": price_sql(PRICE_PLACEHOLDER, registry(settings.symbols), symbol=SYMBOL_PLACEHOLDER),
        "mart_ttls": {rule.table: rule.ttl for rule in mart_retention(settings.retention)},
    }


def child_environment(variables: Mapping[str, str]) -> dict[str, str]:
    """Return the environment dbt starts with: this one without Tickwave's secret settings, plus ``variables``.

    dbt needs the warehouse's password (``DBT_CLICKHOUSE_PASSWORD``, in ``variables``), and no other
    secret: not Kafka's, MT5's or the PostgreSQL URL Dagster's processes hold (``secret_env_names``).
    """
    secrets = secret_env_names()
    return {**{name: value for name, value in os.environ.items() if name.upper() not in secrets}, **variables}


@contextmanager
def dbt_environment_applied(variables: Mapping[str, str]) -> Iterator[None]:
    """Make this process's environment :func:`child_environment` of ``variables`` for the body only, then restore it.

    dagster-dbt starts dbt with a copy of ``os.environ`` and takes no environment of its own, so
    the warehouse's password has to be there while it starts dbt (and reads the profile); left
    there, every later step of the run and every program it starts would inherit it. Wrap only
    the call that starts dbt.
    """
    wanted = child_environment(variables)
    saved = {name: os.environ.get(name) for name in {*variables, *os.environ}}
    for name in set(os.environ) - set(wanted):
        del os.environ[name]
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
