"""The seven daily reports: which dbt view each table reads, in what order, and what it means in plain words.

Every table reads one ``compliance_*`` view (``dbt/models/compliance/``) for one UTC day
(``report_date``) in a total order (its key last), so the same data always gives the same
bytes. Pure data; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReportTable:
    """One CSV file of a report: a dbt view read for one day, in a stable order."""

    name: str  # the file stem: ``<name>.csv``
    view: str
    order_by: str
    meaning: str  # what the table means, in plain words (shown above it in the HTML)
    # which rows belong to the day: {day:Date} is the day, {end:DateTime64(3, 'UTC')} its close (next midnight)
    where: str = "report_date = {day:Date}"
    columns: str = "* EXCEPT (report_date)"


@dataclass(frozen=True)
class Report:
    """One report: its HTML page (``<name>.html``) and its tables."""

    name: str
    title: str
    summary: str
    tables: tuple[ReportTable, ...]


TRADE_BLOTTER = Report(
    "trade_blotter",
    "Trade blotter",
    "Every fill of the day: when (UTC, to the millisecond), what, how much, at what price, what it cost, and which "
    "order, signal and model version it came from.",
    (
        ReportTable(
            "trade_blotter",
            "compliance_trade_blotter",
            "filled_at, fill_id",
            "One row per fill. Notional is price x lots x the contract size, in the quote currency and, where "
            "the symbol's base or quote is the account currency, in the account currency. Commission is in the "
            "account currency.",
        ),
    ),
)
ORDER_AUDIT_TRAIL = Report(
    "order_audit_trail",
    "Order audit trail",
    "Every order's full lifecycle, one row per event, in the order the execution process recorded them. Each row "
    "carries its link of the hash chain: changing, removing or adding an event afterwards breaks the chain.",
    (
        ReportTable(
            "order_audit_trail",
            "compliance_order_audit_trail",
            "chain_id, chain_seq, event_at, event_id",
            "One row per order event: submitted, accepted, partially filled, filled, rejected (with the "
            "broker's code), canceled, expired, or denied (with the risk check that denied it). The decision "
            "maker is the model version; the strategy is the model id.",
        ),
    ),
)
RISK_CONTROLS = Report(
    "risk_controls",
    "Risk controls and breaches",
    "What the pre-trade controls stopped, when breakers tripped, every use of the kill switch and flatten, and "
    "every operator override.",
    (
        ReportTable(
            "risk_controls",
            "compliance_risk_controls",
            "event_at, control_event_id",
            "One row per control action. pre_trade_denial: an order refused before it reached the broker, by "
            "the named control. breaker_trip: trading halted or reduced by a limit. kill_switch: an operator "
            "halted trading. flatten: positions closed on command. operator_override: a limit changed or "
            "trading resumed; what changed is in the detail. issued_by is the operator who gave the command. "
            "time_to_halt_ms (kill switch and flatten) is from the command's issue to the execution process "
            "acting on it. closing_orders (flatten) counts the closing orders it sent, from the order journal; "
            "canceled_orders the working orders it canceled, as the execution process recorded it.",
        ),
    ),
)
EXECUTION_QUALITY = Report(
    "execution_quality",
    "Execution quality",
    "Best-execution monitoring per symbol and venue: the price paid against the mid at the moment the order was "
    "sent, the spread paid, the time from decision to fill, and how often each venue refused or requoted orders.",
    (
        ReportTable(
            "execution_quality",
            "compliance_execution_quality",
            "symbol, venue",
            "One row per symbol and venue. The venue is where the orders were sent: paper (simulated) or "
            "mt5:<trade server>; unknown for orders recorded before venues were. Slippage is the fill price "
            "minus the arrival mid, positive when it cost us, in "
            "pips and basis points (mean, median, 95th percentile). Latency is from the decision to the fill, in "
            "milliseconds. Reject rate is rejected over submitted orders; requote rate is the rejections whose "
            "broker code says the price moved (MT5 10004 requote, 10020 price changed, 10021 price off) over "
            "submitted orders.",
        ),
    ),
)
DECISION_LOG = Report(
    "decision_log",
    "Model decision log",
    "For every order: the signal, the model's prediction, the model version and its registry record, and the "
    "features the decision used.",
    (
        ReportTable(
            "decision_log",
            "compliance_decision_log",
            "created_at, client_order_id",
            "One row per order. Probabilities and features are as the model saw them; trained_from/to is the "
            "data window the model was trained on; walk-forward metrics are from its registry record; "
            "promoted_by is who or what made it the champion.",
        ),
    ),
)
ALGORITHM_CHANGES = Report(
    "algorithm_changes",
    "Algorithm inventory and change log",
    "What was in production at the day's close (the inventory), and every model version and configuration change "
    "that reached production this day, who approved it, the checks it passed, and rollbacks.",
    (
        ReportTable(
            "algorithm_inventory",
            "compliance_algorithm_inventory",
            "inventory_kind, subject, inventory_id",
            "The inventory at the day's close: one row per model version in production (champion) and the "
            "execution limits in force, since when, approved by whom, whether it passed its checks (a model: "
            "the promotion rules, with the figures they judged; a limit: the execution process's validation), "
            "and the model's artifact hash and training window. Limits never changed by an operator are the "
            "configured defaults and have no row.",
            where="in_production_from < {end:DateTime64(3, 'UTC')} AND (in_production_to IS NULL "
            "OR in_production_to >= {end:DateTime64(3, 'UTC')})",
            columns="*",
        ),
        ReportTable(
            "algorithm_changes",
            "compliance_algorithm_changes",
            "changed_at, change_id",
            "One row per change. Model changes come from the model registry (registration, promotion, refusal, "
            "retirement, rollback, restore) with the approver, whether the promotion rules passed and the "
            "figures they judged; configuration changes are the execution process's limit changes (set_limit), "
            "accepted or refused.",
        ),
    ),
)
DAILY_SUMMARY = Report(
    "daily_summary",
    "Daily summary",
    "The day at a glance: anything abnormal first, then the P&L curve, positions at the close, breaches, data "
    "quality and the model in production, with links to the other reports.",
    (
        ReportTable(
            "pnl_trips",
            "compliance_pnl_trips",
            "exit_at, round_trip_id",
            "One row per round trip closed this day (flat to flat), its net P&L in the account currency; the "
            "curve above is their running sum.",
        ),
        ReportTable(
            "positions_close",
            "compliance_positions_close",
            "symbol",
            "One row per symbol: the position at the day's close (lots, positive long), the mark price and the "
            "unrealized P&L in the account currency.",
        ),
        ReportTable(
            "data_quality",
            "compliance_data_quality",
            "dataset, check_name",
            "One row per data-quality check run this day: how many runs, how many failed, rows flagged.",
        ),
    ),
)

REPORTS: tuple[Report, ...] = (
    TRADE_BLOTTER,
    ORDER_AUDIT_TRAIL,
    RISK_CONTROLS,
    EXECUTION_QUALITY,
    DECISION_LOG,
    ALGORITHM_CHANGES,
    DAILY_SUMMARY,
)
HTML_ROW_LIMIT = 500  # rows shown per table in the HTML; the CSV holds them all
# Prices computed in SQL, shown at their symbol's digits + this many (a mid lies on the half-point grid), so
# Float64 arithmetic's noise (1.0850849999999999) never reaches a report. Booked fill prices are written as the
# execution process recorded them: a paper fill's slippage puts them off the grid, and rounding would misstate them.
PRICE_COLUMNS: dict[str, dict[str, int]] = {"positions_close": {"mark_price": 1}}
