"""Tables the command line and the demo print."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.table import Table

if TYPE_CHECKING:
    from models.shadow import LivePerformance


def figure(value: float | None) -> str:
    """Return a metric with four significant digits, or an empty cell."""
    return "" if value is None else f"{value:.4g}"


def comparison_table(rows: list[LivePerformance], days: int, is_compact: bool = False) -> Table:
    """Return the rows as a table: each challenger's log loss beside its slot's champion's (negative: it does better).

    The champion of a slot ``(slot, timeframe)`` may have another model id than its challengers.
    ``is_compact`` keeps the columns that fit an 80-column terminal (model, version, role,
    predictions, hit rate, log loss, the difference to the champion's), as the demo prints it.
    """
    champions = {(row.slot, row.timeframe, row.day): row.log_loss for row in rows if row.role == "champion"}
    title = f"live champion / challenger, last {days} days (model_performance_daily)"
    headers = [
        "model",
        "slot",
        "timeframe",
        "version",
        "role",
        "stage now",
        "day" if rows[0].day else "days",
        "predictions",
        "scored",
        "hit rate",
        "accuracy",
        "log loss",
        "vs champion",
    ]
    kept = [0, 3, 4, 7, 9, 11, 12] if is_compact else list(range(len(headers)))
    if is_compact:
        headers = [*headers[:3], "v", "role", *headers[5:7], "preds", headers[8], "hit", headers[10], "log loss", "Δ"]
    table = Table(
        *(headers[index] for index in kept), title=title, box=box.SIMPLE_HEAD if is_compact else box.HEAVY_HEAD
    )
    for row in rows:
        reference = champions.get((row.slot, row.timeframe, row.day))
        delta = (
            ""
            if row.role == "champion" or reference is None or row.log_loss is None
            else (f"{row.log_loss - reference:+.4f}")
        )
        role = f"[bold green]{row.role}[/]" if row.role == "champion" else row.role
        cells = [
            row.model_id,
            row.slot,
            row.timeframe,
            str(row.model_version),
            role,
            row.stage,
            row.day or str(row.days),
            f"{row.predictions:,}",
            f"{row.scored:,}",
            figure(row.hit_rate),
            figure(row.accuracy),
            figure(row.log_loss),
            delta,
        ]
        table.add_row(*(cells[index] for index in kept))
    if is_compact:  # names and roles whole; the figures' headers wrap instead
        table.columns[0].min_width = max(len(row.model_id) for row in rows)
        table.columns[2].min_width = max(len(row.role) for row in rows)
    return table
