"""DBeaver's, DataGrip's and Metabase's driver: ClickHouse's JDBC driver with its default URL, as both users.

The driver (com.clickhouse:clickhouse-jdbc 0.10.0, which hands the URL to jdbc-v2) comes from Maven
Central by a locked list with digests; the program doing what those tools do is compiled with
javac here (``tests/conformance/jdbc_driver.py``). Its default URL asks for ClickHouse's block compression
on every response, so nothing here passes a setting a user would not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.maven import read_locked_list
from tests.conformance.jdbc_driver import LOCK as JDBC_LOCK
from tests.conformance.jdbc_driver import JdbcRun, compile_program, default_url, fetch_driver, run_program
from tests.plugins.warehouse import scratch_database
from tickwave.config import Settings

TABLE = "every_type"


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    jars = fetch_driver()
    return jars, compile_program(jars, tmp_path_factory.mktemp("jdbc") / "classes")


@pytest.fixture(scope="module")
def database(warehouse_settings: Settings) -> Iterator[str]:
    with scratch_database(warehouse_settings, "jdbc") as name:
        yield name


@pytest.fixture(scope="module")
def runs(program: tuple[Path, Path], warehouse_settings: Settings, database: str) -> dict[str, JdbcRun]:
    # The service user creates and fills the table first; the analyst then reads what it wrote.
    jars, classes = program
    service = run_program(jars, classes, warehouse_settings, "service", database, TABLE)
    analyst = run_program(jars, classes, warehouse_settings, "analyst", database, TABLE)
    return {"service": service, "analyst": analyst}


def _report(run: JdbcRun, steps: dict[str, str]) -> str:
    passed = sum(step.ok for step in run.steps)
    lines = [f"{name}: {error}" for name, error in steps.items()]
    return f"{passed} of {len(run.steps)} steps passed; failed:\n" + "\n".join(lines) + "\n" + run.stderr[-2000:]


def test_locked_list_when_read_then_names_the_driver_and_jdbc_v2_each_with_a_digest() -> None:
    names = {jar.name for jar in read_locked_list(JDBC_LOCK)}

    assert {"clickhouse-jdbc-0.10.0.jar", "jdbc-v2-0.10.0.jar", "client-v2-0.10.0.jar"} <= names
    assert all(len(jar.sha256) == 64 for jar in read_locked_list(JDBC_LOCK))


def test_default_url_when_built_then_names_host_port_and_database_with_no_option(warehouse_settings: Settings) -> None:
    url = default_url(warehouse_settings, "tickwave")

    assert url.startswith("jdbc:clickhouse://127.0.0.1:") and url.endswith("/tickwave")
    assert "?" not in url  # compress, like every option, stays at the driver's default


def test_jdbc_when_the_service_user_writes_a_batch_then_every_row_lands(runs: dict[str, JdbcRun]) -> None:
    run = runs["service"]
    failed = run.failed()

    assert "create table" not in failed and "batch insert" not in failed, _report(run, failed)
    assert run.step("batch insert").detail.endswith("1000 rows landed")


@pytest.mark.parametrize("role", ["service", "analyst"])
def test_jdbc_when_dbeaver_connects_and_browses_a_table_then_every_step_works(
    runs: dict[str, JdbcRun], role: str
) -> None:
    run = runs[role]
    failed = {name: error for name, error in run.failed().items() if not name.startswith("type ")}

    assert run.step("getConnection").ok, _report(run, run.failed())
    assert failed == {}, _report(run, failed)


@pytest.mark.parametrize("role", ["service", "analyst"])
def test_jdbc_when_every_common_type_is_read_back_then_each_value_is_what_was_written(
    runs: dict[str, JdbcRun], role: str
) -> None:
    run = runs[role]
    types = [step for step in run.steps if step.name.startswith("type ")]
    failed = {step.name: step.detail for step in types if not step.ok}

    assert len(types) == 30, _report(run, run.failed())
    assert failed == {}, _report(run, failed)


def test_jdbc_when_the_analyst_writes_then_it_is_refused_as_read_only(runs: dict[str, JdbcRun]) -> None:
    step = runs["analyst"].step("write refused")

    assert step.ok, step.detail
