"""tickwave report daily | list | verify on a real execution run: seven reports, tie-outs, re-runs, tampering.

Every total is recomputed twice without the dbt SQL: from what the execution process
published (the journal's view) and from the raw warehouse tables; both must equal the
CSVs exactly.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from app.cli import app
from orchestration.compliance_views import build_compliance_views
from reports.catalog import REPORTS
from reports.manifest import MANIFEST_NAME, sha256_file
from tests.integration.chromium import artifact, chromium
from tests.integration.reports.conftest import SECOND_VENUE, TradedDatabase, drop, traded_database
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS
from tickwave.config import Settings, default_symbols
from tickwave.contracts import (
    Fill,
    Message,
    OrderCanceled,
    OrderDenied,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    RiskEvent,
)
from tickwave.instruments import registry
from tickwave.money import display_amount, display_lots

DAY = datetime.fromtimestamp(WEDNESDAY_NOON_MS / 1000, tz=UTC).date().isoformat()


@dataclass(frozen=True)
class Reported:
    traded: TradedDatabase
    root: Path
    env: dict[str, str]

    def run(self, *arguments: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["report", *arguments, "--out", str(self.root)], env=self.env)
        return result.exit_code, result.output

    def csv(self, name: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO((self.root / DAY / f"{name}.csv").read_text())))

    def html_table(self, report: str, name: str) -> list[dict[str, str]]:
        """The rows of the table ``name`` as the HTML page ``report`` shows them."""
        return html_table((self.root / DAY / f"{report}.html").read_text(), name)


def html_table(page: str, name: str) -> list[dict[str, str]]:
    """The rows of the page's table headed ``name`` (its <h2>), as shown."""
    section = page[page.index(f"<h2>{name}</h2>") :]
    section = section[: section.index("</table>")]
    columns = re.findall(r"<th>(.*?)</th>", section)
    return [
        dict(zip(columns, re.findall(r"<td>(.*?)</td>", row, re.S), strict=True))
        for row in re.findall(r"<tr>(.*?)</tr>", section, re.S)[1:]
    ]


@pytest.fixture(scope="module")
def reported(warehouse_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reported]:
    traded, database = traded_database(warehouse_settings, tmp_path_factory.mktemp("execution"))
    env = {"TICKWAVE_STATE_DIR": str(warehouse_settings.state_path), "COLUMNS": "300"}  # no wrapped lines
    found = Reported(traded, tmp_path_factory.mktemp("reports"), env)
    try:
        code, output = found.run("daily", "--date", DAY, "--database", database)
        assert code == 0, output
        yield found
    finally:
        drop(traded)


def test_daily_when_run_then_seven_reports_as_csv_and_html_with_a_manifest(reported: Reported) -> None:
    folder = reported.root / DAY
    manifest = json.loads((folder / MANIFEST_NAME).read_bytes())

    expected = {f"{report.name}.html" for report in REPORTS} | {
        f"{table.name}.csv" for report in REPORTS for table in report.tables
    }
    assert len(REPORTS) == 7
    assert set(manifest["files"]) == expected
    assert all(sha256_file(folder / name) == entry["sha256"] for name, entry in manifest["files"].items())
    assert manifest["source_rows"]["order_events"] == len(reported.traded.events)
    assert set(manifest["chain_heads"]) == {"execution-1"}
    assert {"tickwave", "dbt-core", "dbt-clickhouse"} <= set(manifest["versions"])
    assert (reported.root / "index.html").is_file()
    summary = (folder / "daily_summary.html").read_text()
    assert "hash chain recomputes" in summary and "kill switch" in summary and "<svg" in summary
    # self-contained: nothing is loaded from elsewhere (namespace URIs inside the SVG fetch nothing)
    assert re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", summary) is None
    assert "<link" not in summary and "<script" not in summary and "@import" not in summary


def test_daily_when_run_then_mark_prices_at_their_digits_and_pnl_over_the_days_clock(
    reported: Reported,
) -> None:
    digits = {name: instrument.digits for name, instrument in registry(default_symbols()).items()}
    summary = (reported.root / DAY / "daily_summary.html").read_text()

    marks = [(row["symbol"], row["mark_price"]) for row in reported.csv("positions_close") if row["mark_price"]]

    assert marks  # booked fill prices are written as booked (the blotter's tie-out checks them exactly)
    assert all(len(text.partition(".")[2]) <= digits[symbol] + 1 for symbol, text in marks), marks  # a mid: +1
    curve = summary[summary.index("<svg") : summary.index("</svg>")]
    assert "time (UTC)" in curve and re.search(r">\d\d:\d\d(:\d\d)?<", curve), "the P&L curve's x-axis: time of day"


def test_daily_summary_when_rendered_in_headless_chromium_then_it_shows_the_day_and_prints(
    reported: Reported, tmp_path: Path
) -> None:
    url = (reported.root / DAY / "daily_summary.html").as_uri()
    profile, window = tmp_path / "chromium", "1400,1800"
    dom = chromium(url, profile, "--dump-dom", window=window)
    screenshot = artifact("compliance_daily_summary.png")
    chromium(url, profile, f"--screenshot={screenshot}", window=window)
    pdf = tmp_path / "daily_summary.pdf"
    chromium(url, profile, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", window=window)

    assert "Daily summary" in dom and DAY in dom and "<svg" in dom and "kill switch" in dom, dom[-2000:]
    shown = html_table(dom, "pnl_trips")  # what the browser shows: P&L at the cent
    assert [row["net_pnl_account"] for row in shown] == [
        display_amount(row["net_pnl_account"], "USD") for row in reported.csv("pnl_trips")
    ][: len(shown)]
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000
    assert pdf.is_file() and pdf.read_bytes().startswith(b"%PDF")


def test_daily_html_when_shown_then_money_at_the_minor_unit_and_lots_at_the_step_while_the_csv_keeps_exact_values(
    reported: Reported,
) -> None:
    steps = {name: instrument.volume_step for name, instrument in registry(default_symbols()).items()}
    exact_pnl = [row["net_pnl_account"] for row in reported.csv("pnl_trips")]
    exact_positions = reported.csv("positions_close")

    shown_pnl = [row["net_pnl_account"] for row in reported.html_table("daily_summary", "pnl_trips")]
    shown_positions = reported.html_table("daily_summary", "positions_close")
    shown_blotter = reported.html_table("trade_blotter", "trade_blotter")

    assert any(len(text.partition(".")[2]) > 2 for text in exact_pnl), exact_pnl  # the CSV: exact, past the cent
    assert shown_pnl == [display_amount(text, "USD") for text in exact_pnl]
    assert all(re.fullmatch(r"-?\d+\.\d\d", text) for text in shown_pnl), shown_pnl
    assert [(row["unrealized_pnl_account"], row["position_lots"]) for row in shown_positions] == [
        (
            display_amount(row["unrealized_pnl_account"], "USD") if row["unrealized_pnl_account"] else "",
            display_lots(row["position_lots"], steps[row["symbol"]]),
        )
        for row in exact_positions
    ]
    assert {row["fill_id"]: row["quantity_lots"] for row in shown_blotter} == {
        row["fill_id"]: display_lots(row["quantity_lots"], steps[row["symbol"]])
        for row in reported.csv("trade_blotter")
    }
    assert all(re.fullmatch(r"\d+\.\d\d", row["commission_account"]) for row in shown_blotter)


def test_trade_blotter_when_recomputed_from_the_journal_and_raw_fills_then_it_ties_out(reported: Reported) -> None:
    blotter = reported.csv("trade_blotter")
    fills = [message for message in reported.traded.published if isinstance(message, Fill)]
    raw = reported.traded.client.query("SELECT count(), sum(quantity_lots), sum(commission) FROM fills FINAL")
    raw_count, raw_lots, raw_commission = raw.result_rows[0]

    assert len(blotter) == len(fills) == raw_count > 0
    assert {row["fill_id"] for row in blotter} == {fill.fill_id for fill in fills}
    assert sum(float(row["quantity_lots"]) for row in blotter) == pytest.approx(raw_lots, abs=1e-12)
    assert sum(float(row["quantity_lots"]) for row in blotter) == pytest.approx(sum(f.quantity_lots for f in fills))
    assert sum(float(row["commission_account"]) for row in blotter) == pytest.approx(raw_commission, abs=1e-12)
    by_id = {fill.fill_id: fill for fill in fills}
    for row in blotter:  # each fill's price, side and notional, exactly
        fill = by_id[row["fill_id"]]
        assert (float(row["price"]), row["side"], row["client_order_id"]) == (
            fill.price,
            fill.side,
            fill.client_order_id,
        )
        assert float(row["notional_account"]) == round(fill.price * fill.quantity_lots * 100_000, 2)


def test_pnl_when_recomputed_from_the_engines_bookings_then_trips_and_closing_positions_equal_them(
    reported: Reported,
) -> None:
    # The run reverses (long, short, long...): flips through zero close one trip and open the next. The
    # second venue's orders are sent by the fixture beside the engine (no booking): the marts leave them out.
    fills = [message for message in reported.traded.published if isinstance(message, Fill) and message.is_booked]
    trips: dict[str, Decimal] = {}
    closed: set[str] = set()
    positions: dict[str, Decimal] = {}
    for fill in fills:  # in journal order
        assert isinstance(fill.realized_pnl_account, Decimal)
        trip = str(fill.round_trip_id)
        trips[trip] = trips.get(trip, Decimal(0)) + fill.realized_pnl_account - Decimal(repr(fill.commission))
        if fill.position_after_lots == 0 or fill.opens_round_trip_id not in ("", fill.round_trip_id):
            closed.add(trip)
        positions[fill.symbol] = Decimal(fill.position_after_lots)  # type: ignore[arg-type]
    flips = [fill for fill in fills if fill.opens_round_trip_id not in ("", fill.round_trip_id)]

    pnl_trips = {row["round_trip_id"]: Decimal(row["net_pnl_account"]) for row in reported.csv("pnl_trips")}
    closes = {row["symbol"]: Decimal(row["position_lots"]) for row in reported.csv("positions_close")}
    assert len(flips) >= 3 and len(closed) >= 4
    assert pnl_trips == {trip: trips[trip] for trip in closed}
    assert {symbol: closes[symbol] for symbol in positions} == positions


def test_audit_trail_when_recomputed_from_the_journal_then_every_event_is_there_in_order(reported: Reported) -> None:
    trail = reported.csv("order_audit_trail")
    events = reported.traded.events
    raw_count = reported.traded.client.query("SELECT count() FROM order_events FINAL").result_rows[0][0]

    assert len(trail) == len(events) == raw_count
    assert [row["event_id"] for row in trail] == [event.event_id for event in events], "journal order"  # type: ignore[attr-defined]
    assert [int(row["chain_seq"]) for row in trail] == list(range(len(events)))
    kinds = Counter(row["lifecycle_event"] for row in trail)
    assert kinds["submitted"] == sum(isinstance(e, OrderSubmitted) for e in events)
    assert kinds["denied"] == sum(isinstance(e, OrderDenied) for e in events)
    assert kinds["filled"] + kinds["partially_filled"] == sum(isinstance(e, OrderFilled) for e in events)
    assert kinds["rejected"] == sum(isinstance(e, OrderRejected) for e in events)
    assert kinds["canceled"] + kinds["expired"] == sum(isinstance(e, OrderCanceled) for e in events)
    denied = [row for row in trail if row["lifecycle_event"] == "denied"]
    assert denied and all(row["denied_by_check"] for row in denied)


def test_risk_controls_when_recomputed_from_the_journal_then_denials_and_operator_actions_tie_out(
    reported: Reported,
) -> None:
    controls = Counter(row["category"] for row in reported.csv("risk_controls"))
    published = reported.traded.published
    risk = [m for m in published if isinstance(m, RiskEvent)]

    assert controls["pre_trade_denial"] == sum(isinstance(m, OrderDenied) for m in published) > 0
    assert controls["kill_switch"] == sum(m.kind == "trading_state" and m.trading_state == "HALTED" for m in risk) == 1
    overrides = [
        m
        for m in risk
        if m.kind in ("limit_changed", "limit_refused")
        or (m.kind == "trading_state" and m.trading_state != "HALTED" and m.check == "operator")
    ]
    assert controls["operator_override"] == len(overrides) == 2
    # the drill's halt: issued by ops@desk at the engine's own now (manual clock), so it took 0 ms to halt
    halts = [row for row in reported.csv("risk_controls") if row["category"] == "kill_switch"]
    assert [(row["issued_by"], row["time_to_halt_ms"]) for row in halts] == [("ops@desk", "0")]
    changes = reported.csv("algorithm_changes")
    assert [row["action"] for row in changes] == ["limit_changed"]


def test_algorithm_inventory_when_recomputed_from_the_raw_tables_then_it_lists_what_ran_at_the_close(
    reported: Reported,
) -> None:
    inventory = reported.csv("algorithm_inventory")
    close = {"end": datetime.fromisoformat(DAY).replace(tzinfo=UTC) + timedelta(days=1)}
    client = reported.traded.client
    limits = client.query(  # the execution limits in force: the last accepted change before the close
        "SELECT argMax(risk_event_id, occurred_at_ms) FROM risk_events FINAL WHERE kind = 'limit_changed' "
        "AND occurred_at_ms < {end:DateTime64(3, 'UTC')}",
        parameters=close,
    ).result_rows[0][0]
    champions = client.query(  # every version whose latest stage change before the close made it champion
        "SELECT concat(model_id, ' v', toString(model_version)) FROM model_registry_events FINAL "
        "WHERE occurred_at_ms < {end:DateTime64(3, 'UTC')} GROUP BY model_id, model_version "
        "HAVING argMax(to_stage, (occurred_at_ms, event_id)) = 'champion' ORDER BY 1",
        parameters=close,
    ).result_rows

    assert [row["inventory_id"] for row in inventory if row["inventory_kind"] == "configuration"] == [
        f"execution limits @ {limits}"
    ] and limits
    assert sorted(row["subject"] for row in inventory if row["inventory_kind"] == "model") == [r[0] for r in champions]
    assert all(row["has_passed_checks"] == "true" for row in inventory)


REQUOTES = (10004, 10020, 10021)  # MT5 requote, price changed, price off


def _per_venue_from_the_journal(published: list[Message]) -> dict[str, tuple[int, int, int, int]]:
    """(submitted, rejected, requoted, filled) orders per venue, from what the execution process published."""
    venue = {m.client_order_id: m.venue_name or "unknown" for m in published if isinstance(m, OrderSubmitted)}
    counts: dict[str, list[set[str]]] = {name: [set(), set(), set(), set()] for name in venue.values()}
    for message in published:
        if isinstance(message, OrderSubmitted):
            counts[venue[message.client_order_id]][0].add(message.client_order_id)
        elif isinstance(message, OrderRejected):
            counts[venue[message.client_order_id]][1].add(message.client_order_id)
            if message.broker_code in REQUOTES:
                counts[venue[message.client_order_id]][2].add(message.client_order_id)
        elif isinstance(message, Fill):
            counts[venue[message.client_order_id]][3].add(message.client_order_id)
    return {name: (len(a), len(b), len(c), len(d)) for name, (a, b, c, d) in counts.items()}


def test_execution_quality_when_recomputed_per_venue_from_the_journal_and_raw_tables_then_rates_tie_out(
    reported: Reported,
) -> None:
    quality = reported.csv("execution_quality")
    journal = _per_venue_from_the_journal(reported.traded.published)
    raw = reported.traded.client.query(  # the raw tables, without the dbt SQL: orders, their rejections' codes, fills
        "SELECT if(venue = '', 'unknown', venue), count(), countIf(status = 'rejected'), countIf(status = 'rejected' "
        "AND client_order_id IN (SELECT client_order_id FROM order_events FINAL WHERE event_type = 'order_rejected.v1' "
        "AND broker_code IN (10004, 10020, 10021))), countIf(client_order_id IN (SELECT client_order_id FROM fills "
        "FINAL)) FROM orders FINAL GROUP BY 1 ORDER BY 1"
    ).result_rows
    by_venue = {row["venue"]: row for row in quality}

    assert [(row["symbol"], row["venue"]) for row in quality] == [("EURUSD", SECOND_VENUE), ("EURUSD", "paper")]
    assert {venue: tuple(int(n) for n in counts) for venue, *counts in raw} == journal
    for venue, (submitted, rejected, requoted, filled) in journal.items():
        row = by_venue[venue]
        assert (
            int(row["submitted_orders"]),
            int(row["rejected_orders"]),
            int(row["requoted_orders"]),
            int(row["filled_orders"]),
        ) == (submitted, rejected, requoted, filled), venue
        assert float(row["reject_rate"]) == round(rejected / submitted, 6), venue
        assert float(row["requote_rate"]) == round(requoted / submitted, 6), venue
    # the second venue: 1 of 3 filled, one requoted past its retries (10004), one refused for money (10019)
    assert journal[SECOND_VENUE] == (3, 2, 1, 1)
    assert by_venue[SECOND_VENUE]["reject_rate"] != by_venue["paper"]["reject_rate"]


def test_decision_log_when_recomputed_from_the_journal_then_every_order_is_there(reported: Reported) -> None:
    decisions = reported.csv("decision_log")
    submitted = [m for m in reported.traded.published if isinstance(m, OrderSubmitted)]

    assert sorted(row["client_order_id"] for row in decisions) == sorted(m.client_order_id for m in submitted)


def test_compliance_models_when_dbt_tests_run_then_they_pass(reported: Reported, warehouse_settings: Settings) -> None:
    # unique / not_null / relationships / accepted_values / expression_is_true and the hand-computed unit tests
    build_compliance_views(warehouse_settings, reported.traded.database, command="test")


def test_daily_when_rerun_on_the_same_data_then_byte_identical(reported: Reported) -> None:
    folder = reported.root / DAY
    before = {path.name: path.read_bytes() for path in folder.iterdir()}

    code, output = reported.run("daily", "--date", DAY, "--database", reported.traded.database, "--no-build")

    assert code == 0 and "byte-identical" in output, output
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before


def test_verify_when_untouched_then_passes_and_a_changed_file_is_named(reported: Reported, tmp_path: Path) -> None:
    code, output = reported.run("verify", "--database", reported.traded.database)
    assert code == 0, output
    code, output = reported.run("list")
    assert code == 0 and DAY in output

    copy = tmp_path / "reports"
    shutil.copytree(reported.root, copy)
    blotter = copy / DAY / "trade_blotter.csv"
    original = blotter.read_text()
    blotter.write_text(original.replace('"buy"', '"sell"', 1))
    assert blotter.read_text() != original
    result = CliRunner().invoke(
        app, ["report", "verify", "--out", str(copy), "--database", reported.traded.database], env=reported.env
    )

    assert result.exit_code == 1 and "trade_blotter.csv does not match its SHA-256" in result.output, result.output


def test_dagster_when_the_days_partition_runs_then_seven_materializations_link_files_equal_to_the_cli_ones(
    reported: Reported, warehouse_settings: Settings
) -> None:
    from orchestration.defs.reports.assets import compliance_reports
    from orchestration.resources import TickwaveResource

    state_dir = str(warehouse_settings.state_path)
    resources = {"tickwave": TickwaveResource(state_dir=state_dir, database=reported.traded.database)}

    result = dg.materialize(
        [compliance_reports], partition_key=DAY, resources=resources, instance=dg.DagsterInstance.ephemeral()
    )

    assert result.success
    events = result.get_asset_materialization_events()
    assert sorted(event.asset_key.to_user_string() for event in events) == sorted(
        f"compliance/{report.name}" for report in REPORTS
    )
    for event in events:
        metadata = event.materialization.metadata
        assert Path(str(metadata["html"].value)).is_file()
        files = metadata["files"].value
        assert isinstance(files, dict) and all(Path(entry["path"]).is_file() for entry in files.values())
    folder = warehouse_settings.state_path / "reports" / DAY
    for name in ("trade_blotter.csv", "order_audit_trail.csv", "daily_summary.html"):  # same data, same bytes
        assert (folder / name).read_bytes() == (reported.root / DAY / name).read_bytes()


def test_dagster_when_a_report_run_fails_then_the_failure_is_recorded_for_the_ops_board(
    reported: Reported, warehouse_settings: Settings
) -> None:
    from orchestration.defs.reports.assets import compliance_reports, compliance_reports_failed
    from orchestration.resources import TickwaveResource

    state_dir = str(warehouse_settings.state_path)
    instance = dg.DagsterInstance.ephemeral()
    broken = {"tickwave": TickwaveResource(state_dir=state_dir, database="no_such_database")}
    result = dg.materialize(
        [compliance_reports], partition_key=DAY, resources=broken, instance=instance, raise_on_error=False
    )
    assert not result.success
    recorder = {"tickwave": TickwaveResource(state_dir=state_dir, database=reported.traded.database)}
    context = dg.build_run_status_sensor_context(
        sensor_name="compliance_reports_failed",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources=recorder,
    ).for_run_failure()

    compliance_reports_failed(context)

    query = "SELECT status, partition_key, detail FROM pipeline_runs FINAL WHERE run_id = {run:String}"
    rows = reported.traded.client.query(query, parameters={"run": result.run_id}).result_rows
    assert len(rows) == 1 and rows[0][:2] == ("failure", DAY) and rows[0][2]


def test_dagster_late_sensor_when_yesterdays_reports_are_missing_after_due_then_one_report_late_event(
    reported: Reported, warehouse_settings: Settings
) -> None:
    from orchestration.defs.reports import assets
    from orchestration.resources import TickwaveResource

    def resources(at: datetime) -> dict[str, TickwaveResource]:
        resource = TickwaveResource(
            state_dir=str(warehouse_settings.state_path),
            database=reported.traded.database,
            clock_ms=int(at.timestamp() * 1000),
        )
        return {"tickwave": resource}

    instance = dg.DagsterInstance.ephemeral()
    # a day no test reports, inside service_events' TTL (the event is stamped at the sensor's clock)
    missing = (datetime.now(UTC) - timedelta(days=30)).date()
    after = datetime.combine(missing + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=2)
    query = (
        "SELECT count(), any(detail) FROM service_events FINAL WHERE event = 'report_late' AND event_id = {id:String}"
    )

    early = assets.compliance_reports_late(  # 00:30: not due yet
        dg.build_sensor_context(instance=instance, resources=resources(after - timedelta(hours=1, minutes=30)))
    )
    context = dg.build_sensor_context(instance=instance, resources=resources(after))  # 02:00: due at 01:00, missing
    first = assets.compliance_reports_late(context)
    again = assets.compliance_reports_late(
        dg.build_sensor_context(instance=instance, resources=resources(after), cursor=context.cursor)
    )

    assert isinstance(early, dg.SkipReason) and "not due" in str(early.skip_message)
    assert "recorded as a report_late service event" in str(first.skip_message)  # type: ignore[union-attr]
    assert "recorded already" in str(again.skip_message)  # type: ignore[union-attr]
    count, detail = reported.traded.client.query(query, parameters={"id": f"report-late-{missing}"}).result_rows[0]
    assert count == 1 and str(missing) in detail


def test_manifests_when_a_past_manifest_is_rewritten_then_the_next_day_names_the_break(
    reported: Reported, tmp_path: Path
) -> None:
    following = (datetime.fromisoformat(DAY) + timedelta(days=1)).date().isoformat()
    code, output = reported.run("daily", "--date", following, "--database", reported.traded.database, "--no-build")
    assert code == 0, output
    manifest = json.loads((reported.root / following / MANIFEST_NAME).read_bytes())
    assert manifest["previous_manifest_sha256"] == sha256_file(reported.root / DAY / MANIFEST_NAME)
    assert reported.run("verify", "--database", reported.traded.database)[0] == 0

    copy = tmp_path / "reports"
    shutil.copytree(reported.root, copy)
    rewritten = copy / DAY / MANIFEST_NAME
    rewritten.write_text(rewritten.read_text().replace('"order_events": ', '"order_events": 1'))
    result = CliRunner().invoke(
        app, ["report", "verify", "--out", str(copy), "--database", reported.traded.database], env=reported.env
    )

    assert result.exit_code == 1, result.output
    assert f"{following}: the manifest does not chain to the previous day's manifest" in result.output


def test_verify_when_an_order_event_is_deleted_then_it_fails_and_a_rerun_says_what_changed(reported: Reported) -> None:
    # last: this test changes the module's warehouse
    client = reported.traded.client
    client.command("ALTER TABLE order_events DELETE WHERE chain_seq = 4 SETTINGS mutations_sync = 2")

    code, output = reported.run("verify", "--date", DAY, "--database", reported.traded.database)
    assert code == 1 and "event seq 4 is missing" in output, output

    code, output = reported.run("daily", "--date", DAY, "--database", reported.traded.database, "--no-build")
    assert code == 0 and "source changed" in output, output
    total = len(reported.traded.events)
    assert f"source order_events: {total} -> {total - 1} rows" in output
    assert "TAMPERING SUSPECTED" in output


def test_export_when_a_mark_carries_float_noise_then_the_csv_shows_it_at_the_symbols_digits_plus_one(
    warehouse_settings: Settings, fresh_database: str, tmp_path: Path
) -> None:
    from adapters.warehouse.client import connect
    from reports.catalog import DAILY_SUMMARY
    from reports.daily import _export_table

    table = next(table for table in DAILY_SUMMARY.tables if table.name == "positions_close")
    client = connect(warehouse_settings, database=fresh_database)
    try:  # the view's shape, holding a mid as Float64 arithmetic leaves it ((1.08507 + 1.0851) / 2)
        client.command(
            f"CREATE TABLE {table.view} (report_date Date, symbol String, position_lots Float64, "
            "mark_price Nullable(Float64), unrealized_pnl_account Float64) ENGINE = Memory"
        )
        client.command(
            f"INSERT INTO {table.view} VALUES ('{DAY}', 'EURUSD', 1, 1.0850849999999999, 0), "
            f"('{DAY}', 'USDJPY', 0, NULL, 0), ('{DAY}', 'XAUUSD', -1, 2345.6749999999997, 0)"
        )
        exported = _export_table(
            client,
            table,
            datetime.fromisoformat(DAY).date(),
            tmp_path / "positions_close.csv",
            registry(default_symbols()),
        )
    finally:
        client.close()

    rows = list(csv.DictReader(io.StringIO((tmp_path / "positions_close.csv").read_text())))
    assert [(row["symbol"], row["mark_price"]) for row in rows] == [
        ("EURUSD", "1.085085"),
        ("USDJPY", "\\N"),
        ("XAUUSD", "2345.675"),
    ]
    assert exported["shown"][0][exported["columns"].index("mark_price")] == "1.085085"  # the HTML shows the same


def test_daily_summary_banner_when_checks_fail_then_blocking_failures_are_flags_and_warnings_a_line_apart(
    warehouse_settings: Settings, fresh_database: str
) -> None:
    from adapters.warehouse.client import connect
    from reports import html
    from reports.daily import _summary_facts

    day = datetime.fromisoformat(DAY).date()
    client = connect(warehouse_settings, database=fresh_database)
    try:  # the three views the banner reads, in their shape: two stale-data warnings, one blocking failure
        client.command(
            "CREATE TABLE compliance_data_quality (report_date Date, dataset String, check_name String, "
            "severity String, runs UInt64, failures UInt64) ENGINE = Memory"
        )
        client.command("CREATE TABLE compliance_risk_controls (report_date Date, category String) ENGINE = Memory")
        client.command(
            "CREATE TABLE compliance_algorithm_changes (change_kind String, subject String, to_stage String, "
            "changed_at DateTime64(3, 'UTC')) ENGINE = Memory"
        )
        client.command(
            f"INSERT INTO compliance_data_quality VALUES ('{DAY}', 'ticks', 'freshness', 'warning', 5, 5), "
            f"('{DAY}', 'bars_1m', 'freshness', 'warning', 3, 3), ('{DAY}', 'ticks', 'keys', 'blocking', 4, 1), "
            f"('{DAY}', 'bars_1s', 'spread', 'warning', 2, 0)"
        )
        flags, warnings, facts = _summary_facts(client, day, {"trade_blotter": 0}, None)
        client.command("TRUNCATE TABLE compliance_data_quality")
        client.command(f"INSERT INTO compliance_data_quality VALUES ('{DAY}', 'ticks', 'freshness', 'warning', 8, 8)")
        fresh_flags, fresh_warnings, _ = _summary_facts(client, day, {"trade_blotter": 0}, None)
    finally:
        client.close()
    page = html.page("Daily summary", day, "", [], [], flags=flags, warnings=warnings, facts=facts).decode()

    assert flags == ["1 blocking data-quality check failure(s): see the data quality table."]
    assert warnings == ["8 warning-level data-quality check failure(s) (freshness): worth a look."]
    assert (fresh_flags, len(fresh_warnings)) == ([], 1)  # a fresh demo's stale data: no flag
    assert f'<div class="flag">{flags[0]}</div>' in page and f'<div class="warning">{warnings[0]}</div>' in page
    styles = dict(re.findall(r"\.(flag|warning) \{ background: (#[0-9a-f]{6})", page))
    assert styles["flag"] != styles["warning"]
