"""``tickwave dashboards build``: write the boards and every provisioning file, deterministically."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dashboards.board import dashboard_json, render
from dashboards.ops import ops_board
from dashboards.panels import BoardSpec
from dashboards.provisioning import (
    alert_rules_document,
    contact_points_document,
    dashboard_provider_document,
    datasource_document,
    render_yaml,
)
from dashboards.trader import trader_board
from tickwave.config import Settings


def boards(settings: Settings) -> tuple[BoardSpec, ...]:
    """Every board Tickwave provisions."""
    return trader_board(settings), ops_board(settings)


@dataclass
class BuildResult:
    """What ``build`` wrote (paths relative to the output directory) and what it left out, and why."""

    out: Path
    written: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def build_files(settings: Settings) -> tuple[dict[str, str], list[str]]:
    """Every file's relative path and text (no I/O), and notes for the user."""
    files: dict[str, str] = {}
    notes: list[str] = []
    for board in boards(settings):
        files[f"dashboards/{board.uid}.json"] = render(dashboard_json(board))
    files["provisioning/datasources/tickwave.yaml"] = render_yaml(datasource_document(settings))
    files["provisioning/alerting/tickwave-rules.yaml"] = render_yaml(alert_rules_document(settings))
    if settings.dashboards.webhook_url:
        files["provisioning/alerting/tickwave-contact-points.yaml"] = render_yaml(
            contact_points_document(settings.dashboards.webhook_url)
        )
    else:
        notes.append("dashboards.webhook_url is not set: no contact point written (alerts use Grafana's default)")
    return files, notes


def build(settings: Settings, out: Path) -> BuildResult:
    """Write every file under ``out``; the dashboard provider points at ``out/dashboards``."""
    out = out.expanduser().resolve()
    files, notes = build_files(settings)
    provider = dashboard_provider_document(out / "dashboards", settings.dashboards.folder)
    files["provisioning/dashboards/tickwave.yaml"] = render_yaml(provider)
    result = BuildResult(out=out, notes=notes)
    for relative in sorted(files):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[relative], encoding="utf-8")
        result.written.append(relative)
    return result
