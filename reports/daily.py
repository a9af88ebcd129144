"""Produce one day's reports: CSV + HTML per report, the manifest chained to the previous day's, the index.

The files are written to a temporary folder and swapped in whole, so a folder either holds
a complete set or the previous one. A re-run over unchanged data writes the same bytes;
over changed data it says what changed (sources, chain heads, files) and keeps the old
manifest beside the new one as ``manifest.superseded-<sha8>.json``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from reports import html
from reports.catalog import DAILY_SUMMARY, EXECUTION_QUALITY, HTML_ROW_LIMIT, REPORTS, Report, ReportTable
from reports.events import chain_heads, day_bounds, first_event_break, source_rows
from reports.manifest import (
    MANIFEST_NAME,
    build_manifest,
    changes,
    day_dirs,
    encode_manifest,
    previous_manifest_sha256,
    sha256_file,
)

_DAY = {"day": "{day:Date}"}


@dataclass
class DayOutcome:
    """What :func:`generate_day` produced, and how it compares with an earlier run of the same day."""

    day: date
    directory: Path
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (sha256, rows)
    is_rerun: bool = False
    changed: list[str] = field(default_factory=list)  # empty on a re-run means byte-identical
    flags: list[str] = field(default_factory=list)


def versions() -> dict[str, str]:
    """Return the versions recorded in each manifest (Tickwave, dbt-core, dbt-clickhouse)."""
    return {name: metadata.version(name) for name in ("tickwave", "dbt-core", "dbt-clickhouse")}


def _read_table(client: Client, table: ReportTable, day: date) -> tuple[bytes, int, list[str], list[list[str]]]:
    where = f"FROM {table.view} WHERE report_date = {_DAY['day']}"
    parameters = {"day": day}
    data = client.raw_query(f"SELECT * EXCEPT (report_date) {where} ORDER BY {table.order_by}",
                            parameters=parameters, fmt="CSVWithNames")  # fmt: skip
    rows = int(client.query(f"SELECT count() {where}", parameters=parameters).result_rows[0][0])
    shown = client.query(f"SELECT * EXCEPT (report_date) {where} ORDER BY {table.order_by} LIMIT {HTML_ROW_LIMIT}",
                         parameters=parameters)  # fmt: skip
    return data, rows, list(shown.column_names), [[html.cell(value) for value in row] for row in shown.result_rows]


def _column(table: dict[str, Any], name: str) -> list[str]:
    index = table["columns"].index(name)
    return [row[index] for row in table["shown"]]


def _numbers(values: list[str]) -> list[float]:
    return [float(value) if value else 0.0 for value in values]


def _plots(report: Report, tables: dict[str, dict[str, Any]]) -> list[str]:
    if report is EXECUTION_QUALITY and tables["execution_quality"]["shown"]:
        quality = tables["execution_quality"]
        symbols = _column(quality, "symbol")
        return [
            html.svg_plot("bar", {"mean": (symbols, _numbers(_column(quality, "slippage_mean_pips"))),
                                  "p95": (symbols, _numbers(_column(quality, "slippage_p95_pips")))},
                          "Slippage against the arrival mid", "pips"),
            html.svg_plot("bar", {"p50": (symbols, _numbers(_column(quality, "latency_p50_ms"))),
                                  "p99": (symbols, _numbers(_column(quality, "latency_p99_ms")))},
                          "Decision to fill", "ms"),
        ]  # fmt: skip
    if report is DAILY_SUMMARY and tables["pnl_trips"]["shown"]:
        trips = tables["pnl_trips"]
        running, curve = 0.0, []
        for value in _column(trips, "net_pnl_account"):
            running += float(value or 0)
            curve.append(running)
        return [html.svg_plot("line", {"net P&L": (range(1, len(curve) + 1), curve)},
                              "Realized P&L over the day's closed round trips", "account currency")]  # fmt: skip
    return []


def _summary_facts(client: Client, day: date, counts: dict[str, int]) -> tuple[list[str], list[str]]:
    """Return (flags, facts) for the daily summary: anything abnormal, then the day's plain facts."""
    flags, facts = [], []
    found = first_event_break(client, day)
    if found is None:
        facts.append("The order audit trail's hash chain recomputes for every event of the day.")
    else:
        flags.append(f"TAMPERING SUSPECTED: {found}")
    breaches = client.query(
        "SELECT category, count() FROM compliance_risk_controls WHERE report_date = {day:Date} "
        "GROUP BY category ORDER BY category", parameters={"day": day},
    ).result_rows  # fmt: skip
    for category, count in breaches:
        if category != "pre_trade_denial":
            flags.append(f"{count} {str(category).replace('_', ' ')} event(s): see the risk controls report.")
    denials = sum(int(count) for category, count in breaches if category == "pre_trade_denial")
    facts.append(f"{denials} order(s) denied by pre-trade controls; {counts['trade_blotter']} fill(s).")
    failures = client.query(
        "SELECT sum(failures) FROM compliance_data_quality WHERE report_date = {day:Date}", parameters={"day": day}
    ).result_rows[0][0]
    if failures:
        flags.append(f"{failures} failed data-quality check run(s): see the data quality table.")
    champions = client.query(
        "SELECT subject FROM compliance_algorithm_changes WHERE change_kind = 'model' "
        "AND changed_at < {end:DateTime64(3, 'UTC')} GROUP BY subject "
        "HAVING argMax(to_stage, changed_at) = 'champion' ORDER BY subject", parameters=day_bounds(day),
    ).result_rows  # fmt: skip
    in_production = ", ".join(str(row[0]) for row in champions) or "none recorded in the model registry's trail"
    facts.append(f"Model in production at the day's close: {in_production}.")
    return flags, facts


def generate_day(client: Client, day: date, root: Path, progress: Callable[[str], None] | None = None) -> DayOutcome:
    """Write ``root/<day>/``: the seven reports (CSV + HTML), ``manifest.json``; refresh ``root/index.html``.

    ``client`` must read the database the dbt compliance views were built in.
    """
    root.mkdir(parents=True, exist_ok=True)
    directory = root / day.isoformat()
    staging = root / f".{day.isoformat()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    outcome = DayOutcome(day, directory)
    links = [(f"{report.name}.html", report.title) for report in REPORTS] + [("../index.html", "All days")]
    counts: dict[str, int] = {}
    pages: dict[str, tuple[Report, dict[str, dict[str, Any]]]] = {}
    for report in REPORTS:
        tables: dict[str, dict[str, Any]] = {}
        for table in report.tables:
            if progress:
                progress(table.name)
            data, rows, columns, shown = _read_table(client, table, day)
            (staging / f"{table.name}.csv").write_bytes(data)
            counts[table.name] = rows
            tables[table.name] = {"name": table.name, "meaning": table.meaning, "rows": rows, "columns": columns,
                                  "shown": shown}  # fmt: skip
        pages[report.name] = (report, tables)
    flags, facts = _summary_facts(client, day, counts)
    outcome.flags = flags
    for name, (report, tables) in pages.items():
        extra = {"flags": flags, "facts": facts} if report is DAILY_SUMMARY else {}
        body = html.page(report.title, day, report.summary, list(tables.values()), links, plots=_plots(report, tables),
                         **extra)  # fmt: skip
        (staging / f"{name}.html").write_bytes(body)
    for path in sorted(staging.iterdir()):
        rows = counts.get(path.stem, 0) if path.suffix == ".csv" else 0
        outcome.files[path.name] = (sha256_file(path), rows)
    manifest = build_manifest(day, outcome.files, source_rows(client, day), chain_heads(client, day),
                              previous_manifest_sha256(root, day), versions())  # fmt: skip
    (staging / MANIFEST_NAME).write_bytes(encode_manifest(manifest))
    old_path = directory / MANIFEST_NAME
    if old_path.is_file():
        outcome.is_rerun = True
        old_bytes = old_path.read_bytes()
        outcome.changed = changes(json.loads(old_bytes), manifest)
        for superseded in directory.glob("manifest.superseded-*.json"):
            shutil.copy2(superseded, staging / superseded.name)
        if outcome.changed:
            (staging / f"manifest.superseded-{sha256_file(old_path)[:8]}.json").write_bytes(old_bytes)
    backup = root / f".{day.isoformat()}.old"
    shutil.rmtree(backup, ignore_errors=True)
    if directory.exists():
        directory.rename(backup)
    staging.rename(directory)
    shutil.rmtree(backup, ignore_errors=True)
    write_index(root)
    return outcome


def write_index(root: Path) -> None:
    """Write ``root/index.html`` listing every day, newest first."""
    days = [(day.isoformat(), [report.name for report in REPORTS]) for day, _ in reversed(day_dirs(root))]
    (root / "index.html").write_bytes(html.index(days))
