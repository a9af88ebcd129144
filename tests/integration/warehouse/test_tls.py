"""HTTPS to the warehouse: a second embedded warehouse with ``clickhouse.tls`` on, and every client against it.

Each client reaches it through the one address rule (``adapters.warehouse.address``) and
verifies the certificate against the generated CA; a client trusting another CA, or only
the system's roots, is refused, and plain HTTP to the TLS port gets no answer.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import certifi
import pytest
from clickhouse_connect.driver.exceptions import ClickHouseError

from adapters.endpoints import Endpoint
from adapters.warehouse.address import warehouse_address
from adapters.warehouse.client import connect
from adapters.warehouse.tls import generated_ca_file, server_tls
from app.services.warehouse import WarehouseService
from dashboards.dataquery import PLUGIN_TYPE
from dashboards.gocheck import build_checker, run_checker
from dashboards.provisioning import datasource_document
from dashboards.runner import AnalystRunner
from orchestration.dbt_project import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_environment
from tests.plugins.warehouse import start_warehouse
from tickwave.config import Settings, load_settings

QUERY = [{"title": "one", "sql": "SELECT toUInt8(1) AS value", "columns": [{"name": "value", "type": "number"}]}]


@dataclass(frozen=True)
class TlsWarehouse:
    """The running TLS warehouse, its service, and settings whose clients reach it."""

    endpoint: Endpoint
    service: WarehouseService
    settings: Settings
    state_dir: Path

    def with_ca(self, ca_file: Path) -> Settings:
        """The same settings, verifying against ``ca_file`` instead."""
        return load_settings(state_dir=self.state_dir, clickhouse={"tls": True, "ca_file": ca_file})


@pytest.fixture(scope="module")
def tls_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsWarehouse]:
    state_dir = tmp_path_factory.mktemp("tls-state")
    supervisor, service, endpoint = start_warehouse(state_dir, tls=True)
    try:
        yield TlsWarehouse(endpoint, service, load_settings(state_dir=state_dir, clickhouse={"tls": True}), state_dir)
    finally:
        supervisor.stop(service)


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA of another state dir: well formed, and not the one that signed the warehouse's certificate."""
    other = load_settings(state_dir=tmp_path_factory.mktemp("other-ca"), clickhouse={"tls": True})
    server_tls(other, create=True)
    return generated_ca_file(other)


def test_client_when_tls_is_on_then_queries_over_https_verified_against_the_generated_ca(
    tls_warehouse: TlsWarehouse,
) -> None:
    address = warehouse_address(tls_warehouse.settings)

    client = connect(tls_warehouse.settings, database="default")
    try:
        answer = client.command("SELECT 1")
    finally:
        client.close()

    assert answer == 1
    assert (address.scheme, address.ca_file) == ("https", generated_ca_file(tls_warehouse.settings))
    assert tls_warehouse.service.probe(tls_warehouse.endpoint.address)


@pytest.mark.parametrize("trusted", ["other CA", "system roots"])
def test_client_when_it_trusts_another_ca_then_certificate_verify_failed(
    tls_warehouse: TlsWarehouse, other_ca: Path, trusted: str
) -> None:
    settings = tls_warehouse.with_ca(other_ca if trusted == "other CA" else Path(certifi.where()))

    with pytest.raises(ClickHouseError) as refused:
        connect(settings, database="default").command("SELECT 1")

    assert "certificate verify failed" in str(refused.value).lower()


def test_plain_http_when_sent_to_the_tls_port_then_no_answer(tls_warehouse: TlsWarehouse) -> None:
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
        urllib.request.urlopen(f"http://{tls_warehouse.endpoint.address}/ping", timeout=5.0)


def test_grafana_datasource_when_tls_then_secure_with_a_ca_that_verifies_the_server(
    tls_warehouse: TlsWarehouse, tmp_path: Path
) -> None:
    port = tls_warehouse.endpoint.ports["http"]
    settings = load_settings(state_dir=tls_warehouse.state_dir, clickhouse={"tls": True, "port": port})

    [source] = [d for d in datasource_document(settings)["datasources"] if d["type"] == PLUGIN_TYPE]

    json_data, secure_json_data = source["jsonData"], source["secureJsonData"]
    assert (json_data["protocol"], json_data["secure"], json_data["tlsAuthWithCACert"]) == ("http", True, True)
    assert "tlsSkipVerify" not in json_data
    ca_file = tmp_path / "grafana-ca.pem"
    ca_file.write_text(secure_json_data["tlsCACert"])
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection((json_data["host"], json_data["port"]), timeout=5.0) as raw,
        context.wrap_socket(raw, server_hostname=json_data["host"]) as wrapped,
    ):
        assert wrapped.version() in ("TLSv1.2", "TLSv1.3")


def test_dashboards_runner_when_tls_then_runs_as_the_analyst_over_https(tls_warehouse: TlsWarehouse) -> None:
    runner = AnalystRunner(tls_warehouse.settings)  # the analyst reads the warehouse's own database
    try:
        result = runner.query("SELECT 1 AS value")
    finally:
        runner.close()

    assert (runner.url.split(":")[0], result.rows) == ("https", [[1]])


def _dbt_debug(environment: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    command = [
        DBT_EXECUTABLE,
        "debug",
        "--connection",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--log-path",
        str(tmp_path / "logs"),
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **environment},
    )


def test_dbt_when_tls_then_its_profile_connects_verified_and_fails_without_the_ca(
    tls_warehouse: TlsWarehouse, tmp_path: Path
) -> None:
    environment = dbt_environment(tls_warehouse.settings, "default")
    without_ca = {name: value for name, value in environment.items() if name != "SSL_CERT_FILE"}

    verified = _dbt_debug(environment, tmp_path)
    refused = _dbt_debug(without_ca, tmp_path)

    assert environment["DBT_CLICKHOUSE_SECURE"] == "True"
    assert verified.returncode == 0, verified.stdout[-3000:]
    assert "OK connection ok" in verified.stdout
    assert refused.returncode != 0
    assert "certificate verify failed" in refused.stdout.lower(), refused.stdout[-3000:]


def test_go_checker_when_tls_then_clickhouse_go_verifies_the_ca_and_refuses_another(
    tls_warehouse: TlsWarehouse, other_ca: Path, tmp_path: Path
) -> None:
    checker = build_checker(tmp_path / "checker")

    database = tls_warehouse.settings.clickhouse.database  # the analyst's: never the engine's default
    verified = run_checker(checker, tls_warehouse.settings, database, QUERY, tmp_path)
    refused = run_checker(checker, tls_warehouse.with_ca(other_ca), database, QUERY, tmp_path)

    assert verified.returncode == 0, verified.stderr + str(verified.outcomes)
    assert verified.outcomes[0]["rows"] == 1
    assert refused.returncode == 1
    assert "certificate" in refused.outcomes[0]["error"], refused.outcomes
