"""The demo's dashboards step: it builds the files and every board query answers as the analyst."""

from __future__ import annotations

import pytest

from app import demo
from dashboards.build import boards
from tests.integration.dashboards.conftest import BoardData
from tickwave.config import load_settings


def test_demo_step_when_warehouse_has_data_then_every_panel_query_answers(
    board_data: BoardData, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(state_dir=board_data.settings.state_dir, clickhouse={"database": board_data.database})
    monkeypatch.setattr(demo.console, "width", 400)

    demo._dashboards(settings)

    out = capsys.readouterr().out
    total = sum(len(board.queries) for board in boards(settings))
    assert total >= 28
    assert f"{total}/{total} panel queries answered as the analyst" in out, out
    assert (settings.state_path / "grafana" / "dashboards" / "tickwave-trader.json").is_file()
