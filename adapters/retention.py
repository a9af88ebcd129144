"""The retention table: how long every warehouse table and Kafka topic keeps its data, in one place.

Everything that applies or shows retention reads it: the warehouse's TTLs
(:func:`adapters.warehouse.retention.apply_table_retention`, run after the migrations), the dbt marts'
TTLs (:func:`mart_retention`, passed to dbt as the ``mart_ttls`` variable), the topics'
``retention.ms`` and ``retention.bytes`` (:func:`adapters.topics.create_topics`), and docs/operations.md
(:func:`retention_markdown`, checked by a test). Report folders, Dagster runs and their compute logs are
pruned by the weekly maintenance job after ``retention.reports_days`` and ``retention.dagster_runs_days``.

Defaults are below; the ``[retention]`` settings override them per table and per topic. A TTL counts
from the column named here: ``inserted_at`` (arrival) where a table has it, so replayed or back-filled
history (an MT5 export, a backtest's orders) is never deleted on arrival; a compliance table keeps rows
``retention.compliance_days`` (five years by default, MiFID II) and refuses less unless
``retention.allow_short_compliance`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tickwave import topics
from tickwave.config import REGULATORY_MINIMUM_DAYS, RetentionSettings
from tickwave.config.retention import SERVICE_LOG_GENERATIONS
from tickwave.errors import ConfigurationError

DAY_MS = 86_400_000
FOREVER = 0  # days: no TTL
GIB = 1 << 30
NO_LIMIT = -1  # Kafka's "no limit" for retention.ms and retention.bytes


def _limit(value: int, unit: int, name: str) -> str:
    return "no limit" if value == NO_LIMIT else f"{value / unit:g} {name}"


@dataclass(frozen=True)
class TableRetention:
    """One warehouse table's retention: the TTL's column and days (0: kept forever)."""

    table: str
    column: str
    days: int
    is_compliance: bool
    why: str

    @property
    def ttl(self) -> str | None:
        """The TTL expression as the engine prints it in the table's DDL (None: no TTL)."""
        return None if self.days == FOREVER else f"toDateTime({self.column}) + toIntervalDay({self.days})"


@dataclass(frozen=True)
class TopicRetention:
    """One topic's retention: by time (``retention.ms``) and by size per partition (``retention.bytes``)."""

    topic: str
    ms: int
    bytes: int
    why: str

    @property
    def config(self) -> dict[str, str]:
        """The topic configuration Kafka is given."""
        return {"retention.ms": str(self.ms), "retention.bytes": str(self.bytes)}

    @property
    def time_text(self) -> str:
        """``retention.ms`` in days, for people."""
        return _limit(self.ms, DAY_MS, "days")

    @property
    def size_text(self) -> str:
        """``retention.bytes`` in GiB, for people."""
        return _limit(self.bytes, GIB, "GiB")


_ARRIVAL = "inserted_at"
_MARKET = "market data, counted from arrival"
_RECORD = "compliance record (MiFID II Art. 16(6), 25(1))"
_REGISTRY = "compliance record; a serving model's entry must outlive every order it made"

_COMPLIANCE_DAYS = -2  # a default of retention.compliance_days
_TABLES: tuple[TableRetention, ...] = (
    TableRetention("ticks", _ARRIVAL, 365, False, _MARKET),
    TableRetention("bars_1s", _ARRIVAL, 90, False, _MARKET),
    TableRetention("bars_1m", _ARRIVAL, FOREVER, False, _MARKET + "; small, the training set"),
    TableRetention("bars_5m", _ARRIVAL, 730, False, _MARKET),
    TableRetention("bars_15m", _ARRIVAL, 1095, False, _MARKET),
    TableRetention("bars_30m", _ARRIVAL, 1825, False, _MARKET),
    TableRetention("bars_1h", _ARRIVAL, FOREVER, False, _MARKET + "; 24 or fewer a day per symbol"),
    TableRetention("bars_4h", _ARRIVAL, FOREVER, False, _MARKET + "; 6 or fewer a day per symbol"),
    TableRetention("bars_1d", _ARRIVAL, FOREVER, False, _MARKET + "; one a day per symbol"),
    TableRetention("features", _ARRIVAL, 180, False, "derived from bars; rebuilt by a replay"),
    TableRetention("predictions", _ARRIVAL, 365, False, "the decision log's report files keep traded ones"),
    TableRetention("signals", _ARRIVAL, _COMPLIANCE_DAYS, True, _RECORD + ": what each order was decided on"),
    TableRetention("orders", _ARRIVAL, _COMPLIANCE_DAYS, True, _RECORD),
    TableRetention("order_events", _ARRIVAL, _COMPLIANCE_DAYS, True, _RECORD + ": the hash-chained audit trail"),
    TableRetention("fills", _ARRIVAL, _COMPLIANCE_DAYS, True, _RECORD),
    TableRetention(
        "fill_positions",
        "last_fill_at",
        FOREVER,
        False,
        "each symbol's latest booking, one row per symbol: a TTL would drop a position still open",
    ),
    TableRetention(
        "fill_positions_daily",
        "last_fill_at",
        FOREVER,
        False,
        "each symbol's last booking of each day, the start of a day's P&L: a TTL would lose a quiet symbol's",
    ),
    TableRetention("risk_events", _ARRIVAL, _COMPLIANCE_DAYS, True, _RECORD + ": controls and breaches"),
    TableRetention("model_registry", "updated_at_ms", FOREVER, True, _REGISTRY),
    TableRetention("model_registry_events", _ARRIVAL, FOREVER, True, _REGISTRY),
    TableRetention("dq_results", "checked_at_ms", 365, False, "data-quality history"),
    TableRetention("quarantine", "received_at_ms", 90, False, "rejected input, kept for diagnosis"),
    TableRetention("query_log", _ARRIVAL, 90, False, "the warehouse's access log"),
    TableRetention("service_events", "event_at_ms", 365, False, "service lifecycle for the ops board"),
    TableRetention("pipeline_runs", "updated_at_ms", 365, False, "Dagster run outcomes for the ops board"),
    TableRetention("model_drift", "measured_at_ms", 365, False, "drift measurements"),
)
# The dbt marts (tables dbt rebuilds from the staging views; the compliance views are views over them):
# counted from the day or time the row is about, since a mart has no arrival time. The marts the
# compliance views read keep compliance records; the others are summaries a rebuild can restore while
# their sources last.
_SUMMARY = "a daily summary, rebuilt from the warehouse tables"
_READ_BY_REPORTS = "compliance record: read by the compliance reports"
_MARTS: tuple[TableRetention, ...] = (
    TableRetention("fct_orders", "created_at", _COMPLIANCE_DAYS, True, _READ_BY_REPORTS),
    TableRetention("fct_fills", "filled_at", _COMPLIANCE_DAYS, True, _READ_BY_REPORTS),
    TableRetention("fct_round_trips", "exit_at", _COMPLIANCE_DAYS, True, _READ_BY_REPORTS),
    TableRetention("decision_log", "created_at", _COMPLIANCE_DAYS, True, _READ_BY_REPORTS),
    TableRetention("execution_quality", "assumeNotNull(submitted_at)", _COMPLIANCE_DAYS, True, _READ_BY_REPORTS),
    TableRetention("positions_daily", "day", _COMPLIANCE_DAYS, True, _READ_BY_REPORTS),
    TableRetention("pnl_daily", "day", 1827, False, _SUMMARY + "; five years of results"),
    TableRetention("risk_events_daily", "day", 365, False, _SUMMARY),
    TableRetention("execution_quality_daily", "day", 730, False, _SUMMARY + " (incremental: kept by partition)"),
    TableRetention("model_performance_daily", "day", 730, False, _SUMMARY + " (incremental: kept by partition)"),
    TableRetention("data_quality_daily", "day", 365, False, _SUMMARY + " (incremental), as `dq_results`"),
)
_TOPICS: tuple[TopicRetention, ...] = (
    TopicRetention(topics.TICKS, 7 * DAY_MS, 8 * GIB, "replayable for a week; the warehouse keeps the ticks"),
    TopicRetention(topics.TICKS_DLQ, 30 * DAY_MS, GIB, "rejected input; the warehouse quarantine keeps it too"),
    TopicRetention(topics.SIGNALS, 7 * DAY_MS, GIB, "consumed at once by execution"),
    TopicRetention(topics.STREAMS_RECORDS, 7 * DAY_MS, 8 * GIB, "the dataflow's rows, loaded within seconds"),
    TopicRetention(topics.ORDERS_EVENTS, 365 * DAY_MS, NO_LIMIT, "the audit trail until loaded; never cut by size"),
    TopicRetention(topics.EXECUTION_CONTROL, 365 * DAY_MS, NO_LIMIT, "operator commands; never cut by size"),
)


def _refuse_unknown(kind: str, key: str, given: dict[str, int], known: list[str]) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigurationError(f"retention.{key}: unknown {kind} {', '.join(unknown)} (known: {', '.join(known)})")


def table_retention(retention: RetentionSettings) -> list[TableRetention]:
    """Return every warehouse table's retention: the defaults with the ``[retention]`` settings applied.

    Raises:
        ConfigurationError: for an unknown table, negative days, or a compliance table kept under the
            regulatory minimum without ``retention.allow_short_compliance``.
    """
    return _resolve(_TABLES, retention)


def mart_retention(retention: RetentionSettings) -> list[TableRetention]:
    """Return every dbt mart's retention: the defaults with the ``[retention]`` settings applied (``table_days``).

    Raises:
        ConfigurationError: as :func:`table_retention`.
    """
    return _resolve(_MARTS, retention)


def _resolve(rules: tuple[TableRetention, ...], retention: RetentionSettings) -> list[TableRetention]:
    _refuse_unknown("tables", "table_days", retention.table_days, [rule.table for rule in (*_TABLES, *_MARTS)])
    resolved = []
    for rule in rules:
        days = retention.compliance_days if rule.days == _COMPLIANCE_DAYS else rule.days
        days = retention.table_days.get(rule.table, days)
        if days < 0:
            raise ConfigurationError(f"retention.table_days.{rule.table} = {days}: days, 0 for forever")
        if rule.is_compliance and days != FOREVER and days < REGULATORY_MINIMUM_DAYS:
            if not retention.allow_short_compliance:
                raise ConfigurationError(
                    f"retention.table_days.{rule.table} = {days}: a compliance table keeps rows at least "
                    f"{REGULATORY_MINIMUM_DAYS} days (set retention.allow_short_compliance = true to accept it)"
                )
        resolved.append(replace(rule, days=days))
    return resolved


def topic_retention(retention: RetentionSettings) -> list[TopicRetention]:
    """Return every topic's retention (by base name): the defaults with the ``[retention]`` settings applied.

    Raises:
        ConfigurationError: for an unknown topic or a value under -1.
    """
    names = [rule.topic for rule in _TOPICS]
    resolved = []
    for key, overrides in (
        ("topic_retention_ms", retention.topic_retention_ms),
        ("topic_retention_bytes", retention.topic_retention_bytes),
    ):
        _refuse_unknown("topics", key, overrides, names)
        bad = [f"{topic} = {value}" for topic, value in overrides.items() if value < NO_LIMIT or value == 0]
        if bad:
            raise ConfigurationError(f"retention.{key}: {', '.join(bad)}: a positive value, or -1 for no limit")
    for rule in _TOPICS:
        ms = retention.topic_retention_ms.get(rule.topic, rule.ms)
        resolved.append(replace(rule, ms=ms, bytes=retention.topic_retention_bytes.get(rule.topic, rule.bytes)))
    return resolved


def _days(days: int) -> str:
    return "forever" if days == FOREVER else f"{days} days"


def retention_summary_markdown(retention: RetentionSettings) -> str:
    """Return the retention at a glance, for the README: one row per period, longest first, naming what keeps it."""
    kept: dict[int, list[str]] = {}
    for rule in table_retention(retention):
        kept.setdefault(rule.days, []).append(f"`{rule.table}`")
    for rule in mart_retention(retention):
        kept.setdefault(rule.days, []).append(f"mart `{rule.table}`")
    for topic in topic_retention(retention):
        size = "" if topic.bytes == NO_LIMIT else f" (or {topic.size_text} a partition)"
        days = FOREVER if topic.ms == NO_LIMIT else -(-topic.ms // DAY_MS)
        kept.setdefault(days, []).append(f"topic `{topic.topic}`{size}")
    kept.setdefault(retention.reports_days, []).append("report folders")
    kept.setdefault(retention.dagster_runs_days, []).append("Dagster runs and their logs")
    kept.setdefault(FOREVER, []).append("the execution journal")
    lines = ["| kept | what |", "|---|---|"]
    for days in sorted(kept, key=lambda days: (days != FOREVER, -days)):
        lines.append(f"| {_days(days)} | {', '.join(kept[days])} |")
    return "\n".join(lines) + "\n"


def retention_markdown(retention: RetentionSettings) -> str:
    """Return the retention tables (warehouse, topics, files) as Markdown, for docs/operations.md."""
    lines = []
    for kind, rules in (("warehouse table", table_retention(retention)), ("dbt mart", mart_retention(retention))):
        lines += [f"| {kind} | kept | counted from | compliance | why |", "|---|---|---|---|---|"]
        for rule in rules:
            mark = "yes" if rule.is_compliance else ""
            lines.append(f"| `{rule.table}` | {_days(rule.days)} | `{rule.column}` | {mark} | {rule.why} |")
        lines.append("")
    lines += ["| Kafka topic | retention.ms | retention.bytes (per partition) | why |", "|---|---|---|---|"]
    for topic in topic_retention(retention):
        lines.append(f"| `{topic.topic}` | {topic.time_text} | {topic.size_text} | {topic.why} |")
    lines += ["", "| files | kept | setting |", "|---|---|---|"]
    folders = "report folders (`<state dir>/reports/<day>/`)"
    lines.append(f"| {folders} | {_days(retention.reports_days)} | `retention.reports_days` |")
    lines.append(f"| Dagster runs | {_days(retention.dagster_runs_days)} | `retention.dagster_runs_days` |")
    logs = "Dagster compute logs (`<state dir>/data/dagster/storage/<run id>/`)"
    lines.append(f"| {logs} | {_days(retention.dagster_runs_days)} | `retention.dagster_runs_days` |")
    service_logs, rolled = "service logs (`<state dir>/logs/<name>.log`)", f"the last {SERVICE_LOG_GENERATIONS} rolled"
    lines.append(
        f"| {service_logs} | rolled at {retention.service_log_mb} MB, {rolled} files kept | "
        "`retention.service_log_mb` |"
    )
    journal = "execution journal (`<state dir>/execution/<instance>/journal*.jsonl*`)"
    lines.append(
        f"| {journal} | forever: the state is rebuilt from it; sealed segments compressed | "
        "`execution.journal_segment_mb` |"
    )
    return "\n".join(lines) + "\n"
