from __future__ import annotations

from rich.console import Console

from app.views import comparison_table
from models.shadow import LivePerformance

ROWS = [
    LivePerformance(
        "ensemble_direction",
        "1s",
        1,
        "champion",
        "champion",
        "ensemble_direction",
        "",
        1,
        78,
        48,
        0.25,
        0.4,
        1.2345,
    ),
    LivePerformance(
        "lgbm_direction", "1s", 1, "challenger", "challenger", "ensemble_direction", "", 1, 78, 48, 0.3, 0.41, 1.2456
    ),
]


def test_comparison_table_when_compact_then_both_names_and_the_difference_fit_80_columns() -> None:
    console = Console(width=80, record=True, color_system=None)

    console.print(comparison_table(ROWS, 1, is_compact=True))

    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "ensemble_direction" in text and "lgbm_direction" in text and "+0.0111" in text


def test_comparison_table_when_full_then_every_column_is_there() -> None:
    table = comparison_table(ROWS, 1)

    assert [column.header for column in table.columns][:3] == ["model", "slot", "timeframe"]
    assert len(table.columns) == 13
