"""Produce one day's reports: CSV + HTML per report, the manifest chained to the previous day's, the index.

The files are written to a temporary folder and swapped in whole, so a folder either holds
a complete set or the previous one. A re-run over unchanged data writes the same bytes;
over changed data it says what changed (sources, chain heads, files) and keeps the old
manifest beside the new one as ``manifest.superseded-<sha8>.json``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import shutil
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, cast

from clickhouse_connect.driver.client import Client

from reports import html
from reports.catalog import (
    DAILY_SUMMARY,
    EXECUTION_QUALITY,
    HTML_ROW_LIMIT,
    PRICE_COLUMNS,
    REPORTS,
    Report,
    ReportTable,
)
from reports.display import displayed_rows
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
from tickwave.audit_chain import ChainBreak
from tickwave.config import ExecutionSettings, default_symbols
from tickwave.instruments import Instrument, price_sql, registry


@dataclass
class DayOutcome:
    """What :func:`generate_day` produced, and how it compares with an earlier run of the same day."""

    day: date
    directory: Path
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (sha256, rows)
    is_rerun: bool = False
    changed: list[str] = field(default_factory=list)  # empty on a re-run means byte-identical
    flags: list[str] = field(default_factory=list)  # abnormal: tampering, breaches, blocking check failures
    warnings: list[str] = field(default_factory=list)  # worth a look: warning-level check failures


def versions() -> dict[str, str]:
    """Return the versions recorded in each manifest (Tickwave, dbt-core, dbt-clickhouse)."""
    return {name: metadata.version(name) for name in ("tickwave", "dbt-core", "dbt-clickhouse")}


def _columns(table: ReportTable, instruments: Mapping[str, Instrument]) -> str:
    """The table's columns, its prices at their symbol's digits (the warehouse writes Float64 in full)."""
    prices = PRICE_COLUMNS.get(table.name, {})
    if not prices:
        return table.columns
    shown = ", ".join(f"{price_sql(name, instruments, extra_digits=extra)} AS {name}" for name, extra in prices.items())
    return f"{table.columns} REPLACE ({shown})"


def _export_table(
    client: Client, table: ReportTable, day: date, path: Path, instruments: Mapping[str, Instrument]
) -> dict[str, Any]:
    """Stream one table's CSV into ``path`` in one read of its view; return its page table and SHA-256.

    The warehouse formats the CSV (``CSVWithNames``); the bytes are hashed as they arrive
    and the HTML preview (the first :data:`HTML_ROW_LIMIT` rows) is parsed from the same
    stream, so the view is computed once for the file. The row count is a ``count()``
    of the view (the warehouse reads only the key columns for it): counting lines would
    be wrong for a text field holding a line break.
    """
    query = f"FROM {table.view} WHERE {table.where}"
    known = {"day": day, "end": day_bounds(day)["end"]}
    parameters = {name: value for name, value in known.items() if f"{{{name}:" in table.where}
    digest, head, preview = hashlib.sha256(), bytearray(), None
    select = f"SELECT {_columns(table, instruments)} {query} ORDER BY {table.order_by}"
    response = cast(_Response, client.raw_stream(select, parameters=parameters, fmt="CSVWithNames"))
    try:
        with path.open("wb") as handle:
            for chunk in response.stream(_CHUNK_BYTES):
                handle.write(chunk)
                digest.update(chunk)
                if preview is None:
                    head += chunk
                    preview = csv_preview(head, is_complete=False)
    finally:
        response.close()
    columns, shown = preview or csv_preview(head, is_complete=True) or ([], [])
    rows = int(client.query(f"SELECT count() {query}", parameters=parameters).result_rows[0][0])
    return {
        "name": table.name,
        "meaning": table.meaning,
        "rows": rows,
        "columns": columns,
        "shown": shown,
        "sha256": digest.hexdigest(),
    }


class _Response(Protocol):
    """The streamed HTTP response ``Client.raw_stream`` returns (urllib3's), as used here."""

    def stream(self, amt: int) -> Iterator[bytes]: ...
    def close(self) -> None: ...


_CHUNK_BYTES = 1 << 20
_NULL = "\\N"  # how CSV writes NULL


def csv_preview(head: bytes | bytearray, *, is_complete: bool) -> tuple[list[str], list[list[str]]] | None:
    """Parse the header and the first rows shown in the HTML from the CSV's first bytes (None: need more bytes).

    Only complete records count: unless the stream is complete, the preview is ready once
    a record after the last one shown has begun (so the last one shown is whole).
    """
    wanted = HTML_ROW_LIMIT + 1  # the header and the rows shown
    if not is_complete and head.count(b"\n") <= wanted:
        return None
    text = bytes(head if is_complete else head[: head.rindex(b"\n") + 1]).decode()
    records = list(itertools.islice(csv.reader(io.StringIO(text, newline="")), wanted + 1))
    if not is_complete and len(records) <= wanted:
        return None
    if not records:
        return [], []
    return records[0], [["" if value == _NULL else value for value in record] for record in records[1:wanted]]


def _column(table: dict[str, Any], name: str) -> list[str]:
    index = table["columns"].index(name)
    return [row[index] for row in table["shown"]]


def _numbers(values: list[str]) -> list[float]:
    return [float(value) if value else 0.0 for value in values]


def _plots(report: Report, tables: dict[str, dict[str, Any]]) -> list[str]:
    if report is EXECUTION_QUALITY and tables["execution_quality"]["shown"]:
        quality = tables["execution_quality"]
        symbols = [
            f"{symbol} {venue}"
            for symbol, venue in zip(_column(quality, "symbol"), _column(quality, "venue"), strict=True)
        ]
        return [
            html.svg_plot(
                "bar",
                {
                    "mean": (symbols, _numbers(_column(quality, "slippage_mean_pips"))),
                    "p95": (symbols, _numbers(_column(quality, "slippage_p95_pips"))),
                },
                "Slippage against the arrival mid",
                "pips",
            ),
            html.svg_plot(
                "bar",
                {
                    "p50": (symbols, _numbers(_column(quality, "latency_p50_ms"))),
                    "p99": (symbols, _numbers(_column(quality, "latency_p99_ms"))),
                },
                "Decision to fill",
                "ms",
            ),
        ]
    if report is DAILY_SUMMARY and tables["pnl_trips"]["shown"]:
        trips = tables["pnl_trips"]
        running, curve = 0.0, []
        for value in _column(trips, "net_pnl_account"):
            running += float(value or 0)
            curve.append(running)
        # Over the day's clock: each round trip's P&L counts from its closing fill (exit_at, UTC).
        times = [datetime.fromisoformat(value).replace(tzinfo=UTC) for value in _column(trips, "exit_at")]
        return [
            html.svg_plot(
                "step",
                {"net P&L": (times, curve)},
                "Realized P&L over the day (closed round trips)",
                "account currency",
            )
        ]
    return []


def _summary_facts(
    client: Client, day: date, counts: dict[str, int], found: ChainBreak | None
) -> tuple[list[str], list[str], list[str]]:
    """Return (flags, warnings, facts) for the daily summary: anything abnormal, what is worth a look, the facts.

    ``found`` is the first break of the day's order-event chain (None: it recomputes). A data-quality
    failure is a warning only when its check's severity says so; any other severity flags it as blocking.
    """
    flags, warnings, facts = [], [], []
    if found is None:
        facts.append("The order audit trail's hash chain recomputes for every event of the day.")
    else:
        flags.append(f"TAMPERING SUSPECTED: {found}")
    breaches = client.query(
        "SELECT category, count() FROM compliance_risk_controls WHERE report_date = {day:Date} "
        "GROUP BY category ORDER BY category",
        parameters={"day": day},
    ).result_rows
    for category, count in breaches:
        if category != "pre_trade_denial":
            flags.append(f"{count} {str(category).replace('_', ' ')} event(s): see the risk controls report.")
    denials = sum(int(count) for category, count in breaches if category == "pre_trade_denial")
    facts.append(f"{denials} order(s) denied by pre-trade controls; {counts['trade_blotter']} fill(s).")
    blocking, warned, warned_checks = client.query(
        "SELECT sumIf(failures, severity != 'warning'), sumIf(failures, severity = 'warning'), "
        "arrayStringConcat(arraySort(groupUniqArrayIf(check_name, severity = 'warning' AND failures > 0)), ', ') "
        "FROM compliance_data_quality WHERE report_date = {day:Date}",
        parameters={"day": day},
    ).result_rows[0]
    if blocking:
        flags.append(f"{blocking} blocking data-quality check failure(s): see the data quality table.")
    if warned:
        warnings.append(f"{warned} warning-level data-quality check failure(s) ({warned_checks}): worth a look.")
    champions = client.query(
        "SELECT subject FROM compliance_algorithm_changes WHERE change_kind = 'model' "
        "AND changed_at < {end:DateTime64(3, 'UTC')} GROUP BY subject "
        "HAVING argMax(to_stage, changed_at) = 'champion' ORDER BY subject",
        parameters=day_bounds(day),
    ).result_rows
    in_production = ", ".join(str(row[0]) for row in champions) or "none recorded in the model registry's trail"
    facts.append(f"Model in production at the day's close: {in_production}.")
    return flags, warnings, facts


def _export_report(
    client: Client,
    report: Report,
    day: date,
    staging: Path,
    pages: dict[str, tuple[Report, dict[str, dict[str, Any]]]],
    counts: dict[str, int],
    outcome: DayOutcome,
    progress: Callable[[str], None] | None,
    instruments: Mapping[str, Instrument],
) -> None:
    """Write the report's CSV files into ``staging``; keep its page tables in ``pages``, rows and hashes."""
    tables: dict[str, dict[str, Any]] = {}
    for table in report.tables:
        if progress:
            progress(table.name)
        tables[table.name] = _export_table(client, table, day, staging / f"{table.name}.csv", instruments)
        counts[table.name] = tables[table.name]["rows"]
        outcome.files[f"{table.name}.csv"] = (tables[table.name]["sha256"], tables[table.name]["rows"])
    pages[report.name] = (report, tables)


def generate_day(
    client: Client,
    day: date,
    root: Path,
    progress: Callable[[str], None] | None = None,
    instruments: Mapping[str, Instrument] | None = None,
    account_currency: str | None = None,
) -> DayOutcome:
    """Write ``root/<day>/``: the seven reports (CSV + HTML), ``manifest.json``; refresh ``root/index.html``.

    ``client`` must read the database the dbt compliance views were built in; ``instruments``
    give the prices' digits, quote currencies and lot steps (default: the built-in symbols);
    the HTML shows money at its currency's minor unit (account currency default: the settings').
    """
    instruments = instruments if instruments is not None else registry(default_symbols())
    account = account_currency or ExecutionSettings().account_currency
    root.mkdir(parents=True, exist_ok=True)
    directory = root / day.isoformat()
    staging = root / f".{day.isoformat()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    outcome = DayOutcome(day, directory)
    links = [(f"{report.name}.html", report.title) for report in REPORTS] + [("../index.html", "All days")]
    counts: dict[str, int] = {}
    pages: dict[str, tuple[Report, dict[str, dict[str, Any]]]] = {}
    # The chain is recomputed in the warehouse while the files stream out (two queries at once, no shared state).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-chain") as background:
        chain_check = background.submit(first_event_break, client, day)
        for report in REPORTS:
            _export_report(client, report, day, staging, pages, counts, outcome, progress, instruments)
        found = chain_check.result()
    flags, warnings, facts = _summary_facts(client, day, counts, found)
    outcome.flags, outcome.warnings = flags, warnings
    for name, (report, tables) in pages.items():
        extra = {"flags": flags, "warnings": warnings, "facts": facts} if report is DAILY_SUMMARY else {}
        shown = [
            {**table, "shown": displayed_rows(table["columns"], table["shown"], instruments, account)}
            for table in tables.values()
        ]
        body = html.page(report.title, day, report.summary, shown, links, plots=_plots(report, tables), **extra)
        (staging / f"{name}.html").write_bytes(body)
        outcome.files[f"{name}.html"] = (hashlib.sha256(body).hexdigest(), 0)
    manifest = build_manifest(
        day,
        outcome.files,
        source_rows(client, day),
        chain_heads(client, day),
        previous_manifest_sha256(root, day),
        versions(),
    )
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
