"""``tickwave dashboards push`` against a FAKE Grafana HTTP API (no Grafana server can run here).

The fake (fake_grafana.py) implements the documented endpoints push calls, with their status
codes, authentication and the dashboard version check.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from dashboards.build import boards
from dashboards.dataquery import DATASOURCE_UID, PROMETHEUS_UID
from dashboards.push import ExitCode, PushError, push
from tests.integration.dashboards.fake_grafana import FakeGrafana
from tickwave.config import Settings

PASSWORD = "analyst-password-from-env"
SETTINGS = Settings(dashboards={"webhook_url": "https://hooks.example/tickwave"})


@pytest.fixture
def grafana(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGrafana]:
    monkeypatch.setenv(SETTINGS.dashboards.password_env, PASSWORD)
    fake = FakeGrafana()
    try:
        yield fake
    finally:
        fake.stop()


def test_push_when_grafana_is_empty_then_creates_folder_datasource_boards_and_alerting(grafana: FakeGrafana) -> None:
    report = push(SETTINGS, grafana.url, token=grafana.state.token)

    state = grafana.state
    assert list(state.folders) == ["tickwave"]
    assert state.datasources[DATASOURCE_UID]["jsonData"]["username"] == "analyst"
    assert state.datasource_passwords[DATASOURCE_UID] == PASSWORD
    assert "password" not in str(state.datasources[DATASOURCE_UID].get("jsonData"))
    assert sorted(state.dashboards) == sorted(board.uid for board in boards(SETTINGS))
    assert all(item["meta"]["folderUid"] == "tickwave" for item in state.dashboards.values())
    assert len(state.alert_rules) == 10 and len(state.contact_points) == 1
    assert (
        state.datasources[PROMETHEUS_UID]["type"] == "prometheus" and PROMETHEUS_UID not in state.datasource_passwords
    )
    assert report.changed == 1 + 2 + 2 + 10 + 1  # folder, two datasources, boards, rules, contact point
    assert ("dashboard", "Tickwave · Trader", "created") in report.changes


def test_push_when_the_warehouse_has_its_own_ca_then_the_datasource_verifies_against_it(
    grafana: FakeGrafana, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    settings = Settings(clickhouse={"url": "https://warehouse.internal:8443", "ca_file": ca_file})

    push(settings, grafana.url, token=grafana.state.token)

    source = grafana.state.datasources[DATASOURCE_UID]
    assert (source["jsonData"]["secure"], source["jsonData"]["tlsAuthWithCACert"]) == (True, True)
    assert source["secureJsonFields"] == {"password": True, "tlsCACert": True}
    assert grafana.state.datasource_passwords[DATASOURCE_UID] == PASSWORD


def test_push_when_run_again_then_nothing_changes(grafana: FakeGrafana) -> None:
    push(SETTINGS, grafana.url, token=grafana.state.token)
    versions = {uid: item["dashboard"]["version"] for uid, item in grafana.state.dashboards.items()}
    before = len(grafana.state.requests)

    report = push(SETTINGS, grafana.url, token=grafana.state.token)

    assert report.changed == 0
    assert {uid: item["dashboard"]["version"] for uid, item in grafana.state.dashboards.items()} == versions
    assert not any(method in ("POST", "PUT") for method, _ in grafana.state.requests[before:])


def test_push_when_a_board_changed_then_updates_it_with_the_version_read(grafana: FakeGrafana) -> None:
    push(SETTINGS, grafana.url, token=grafana.state.token)
    faster = Settings(dashboards={"webhook_url": "https://hooks.example/tickwave", "refresh": "1s", "stale_data_s": 30})

    report = push(faster, grafana.url, basic=grafana.state.basic)

    assert ("dashboard", "Tickwave · Trader", "updated (version 1 -> 2)") in report.changes
    assert ("dashboard", "Tickwave · Ops", "unchanged") in report.changes
    assert ("alert rule", "Stale market data", "updated") in report.changes
    assert grafana.state.dashboards["tickwave-trader"]["dashboard"]["refresh"] == "1s"


def test_push_when_grafana_board_changed_meanwhile_then_refused_unless_forced(grafana: FakeGrafana) -> None:
    push(SETTINGS, grafana.url, token=grafana.state.token)
    faster = Settings(dashboards={"webhook_url": "https://hooks.example/tickwave", "refresh": "1s"})
    grafana.state.edit_after_read = "tickwave-trader"

    with pytest.raises(PushError, match="changed in Grafana meanwhile") as refused:
        push(faster, grafana.url, token=grafana.state.token)
    assert refused.value.exit_code is ExitCode.REFUSED
    assert grafana.state.dashboards["tickwave-trader"]["dashboard"]["refresh"] == "5s"

    push(faster, grafana.url, token=grafana.state.token, force=True)
    assert grafana.state.dashboards["tickwave-trader"]["dashboard"]["refresh"] == "1s"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_push_command_when_token_wrong_or_grafana_down_then_documented_exit_codes(
    grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)

    wrong = runner.invoke(app, ["dashboards", "push", "--url", grafana.url, "--token", "wrong"])
    down = runner.invoke(app, ["dashboards", "push", "--url", f"http://127.0.0.1:{_closed_port()}", "--token", "t"])
    missing = runner.invoke(app, ["dashboards", "push", "--url", grafana.url])
    monkeypatch.setenv("GRAFANA_PASSWORD", grafana.state.basic[1])
    done = runner.invoke(app, ["dashboards", "push", "--url", grafana.url, "--user", grafana.state.basic[0]])

    assert wrong.exit_code == ExitCode.AUTHENTICATION, wrong.output
    assert "authentication failed" in wrong.output
    assert down.exit_code == ExitCode.UNREACHABLE, down.output
    assert "unreachable" in down.output
    assert missing.exit_code == ExitCode.CONFIGURATION
    assert done.exit_code == ExitCode.OK, done.output
    assert "created or updated" in done.output
    assert not grafana.state.folders or PASSWORD not in done.output
