"""Run a table's suite over a bounded slice of the real warehouse and record the results in ``dq_results``.

Path (decision): the slice is read with clickhouse-connect into pandas and validated by
Great Expectations' pandas datasource in an ephemeral context (no YAML on disk). GX's SQL
datasource reaches ClickHouse only through ``clickhouse-sqlalchemy`` (SQLAlchemy < 2.1),
which GX labels experimental and whose regex expectations are unsupported; the pandas path
runs the same expectations on any ClickHouse, and the slice is bounded, so memory is too.

The slice is a time window that ends at the table's newest row (24 h; 1 h for ticks and
1 s bars, whose day can hold ten million rows), so a check
judges the data that exists; whether that newest row is recent enough is the separate
freshness expectation (judged only while the configured market calendar is open). Volume compares each
whole hour of the slice with the median hour of the 24 h before it.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from quality.suites import BLOCKING, HOUR_MS, WARNING, QualityLimits, TableSuite, suites

if TYPE_CHECKING:
    import pandas as pd
    from clickhouse_connect.driver.client import Client

    from tickwave.market import MarketCalendar

DEFAULT_WINDOW_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's result in one run."""

    check_name: str
    severity: str  # "blocking" or "warning"
    is_success: bool
    observed_value: float | None
    element_count: int
    unexpected_count: int
    details: dict[str, Any]


@dataclass(frozen=True)
class SuiteOutcome:
    """A table's run: its window and every expectation's outcome."""

    run_id: str
    dataset: str
    window_ms: tuple[int, int] | None
    rows: int
    outcomes: tuple[ExpectationOutcome, ...]
    checked_at: datetime

    @property
    def blocking_failures(self) -> list[ExpectationOutcome]:
        """The failed expectations that must stop work downstream."""
        return [item for item in self.outcomes if not item.is_success and item.severity == "blocking"]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        """The failed expectations that only warn."""
        return [item for item in self.outcomes if not item.is_success and item.severity == "warning"]

    @property
    def passed(self) -> bool:
        """True when no blocking expectation failed."""
        return not self.blocking_failures

    def summary(self) -> dict[str, Any]:
        """Return the figures shown in a Dagster check's metadata."""
        return {
            "run_id": self.run_id,
            "rows": self.rows,
            "expectations": len(self.outcomes),
            "blocking_failures": [item.check_name for item in self.blocking_failures],
            "warnings": [item.check_name for item in self.warnings],
            "window": None if self.window_ms is None else [_iso(edge) for edge in self.window_ms],
        }


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def is_fx_market_open(at: datetime, calendar: MarketCalendar) -> bool:
    """Return whether ``calendar`` (the configured ``tickwave.market`` rule) has the market open at ``at``.

    The execution process's own calendar, with the configured zone, hours and holidays, so
    freshness is judged in the hours execution trades: no tick is due on a weekend or a holiday.
    """
    return calendar.is_open(int(at.timestamp() * 1000))


@lru_cache(maxsize=1)
def _context() -> Any:
    # One ephemeral context per process: no files, no analytics (set before GX is imported).
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _validate(name: str, frame: pd.DataFrame, expectations: Sequence[Any]) -> list[ExpectationOutcome]:
    import great_expectations as gx

    context = _context()
    source_name = f"slice_{name}_{uuid.uuid4().hex[:8]}"
    source = context.data_sources.add_pandas(source_name)
    try:
        batch = (
            source.add_dataframe_asset(name=name)
            .add_batch_definition_whole_dataframe("slice")
            .get_batch(batch_parameters={"dataframe": frame})
        )
        result = batch.validate(gx.ExpectationSuite(name=name, expectations=list(expectations)))
    finally:
        context.data_sources.delete(source_name)
    return [_outcome(item) for item in result.results]


def _check_name(config: Any) -> str:
    kwargs = config.kwargs
    columns = kwargs.get("column") or kwargs.get("column_list") or [kwargs.get("column_A"), kwargs.get("column_B")]
    if isinstance(columns, list):
        columns = ",".join(str(column) for column in columns if column)
    return f"{config.type}({columns})" if columns else str(config.type)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _outcome(item: Any) -> ExpectationOutcome:
    config, result = item.expectation_config, item.result or {}
    severity = "blocking" if str(config.severity.value) == BLOCKING else "warning"
    kwargs = {key: value for key, value in config.kwargs.items() if key != "batch_id"}
    details = {
        "severity": severity,
        "kwargs": kwargs,
        "partial_unexpected": [str(value) for value in (result.get("partial_unexpected_list") or [])[:5]],
        "exception": (item.exception_info or {}).get("exception_message") if not item.success else None,
    }
    return ExpectationOutcome(
        check_name=_check_name(config),
        severity=severity,
        is_success=bool(item.success),
        observed_value=_number(result.get("observed_value", result.get("unexpected_percent"))),
        element_count=int(result.get("element_count") or 0),
        unexpected_count=int(result.get("unexpected_count") or 0),
        details=json.loads(json.dumps(details, default=str)),
    )


def _read_slice(client: Client, sql: str) -> pd.DataFrame:
    import pandas as pd

    frame = client.query_df(sql)
    if frame.empty:  # an empty answer has no columns: keep the slice's, so the schema checks still judge
        frame = pd.DataFrame(columns=client.query(f"{sql} LIMIT 0").column_names)
    return frame


def _has_rows() -> Any:
    from great_expectations import expectations as gxe
    from great_expectations.expectations.metadata_types import FailureSeverity

    return gxe.ExpectTableRowCountToBeBetween(min_value=1, severity=FailureSeverity(WARNING))


def newest_ms(client: Client, suite: TableSuite) -> int | None:
    """Return the table's newest time (epoch ms), or None when it is empty."""
    if suite.time_column is None:
        return None
    newest = client.command(
        f"SELECT if(count() = 0, -1, toUnixTimestamp64Milli(max({suite.time_column}))) FROM {suite.dataset}"  # noqa: S608
    )
    value = int(str(newest))
    return None if value < 0 else value


def _health(
    client: Client, suite: TableSuite, window: tuple[int, int], newest: int, now: datetime, calendar: MarketCalendar
) -> pd.DataFrame:
    import pandas as pd

    start, end = window
    column = suite.time_column
    hours = client.query(
        f"SELECT intDiv(toUnixTimestamp64Milli({column}), {HOUR_MS}) AS hour, count() FROM {suite.dataset} "  # noqa: S608
        f"WHERE {column} >= fromUnixTimestamp64Milli(toInt64({start - DEFAULT_WINDOW_MS}), 'UTC') "
        f"AND {column} < fromUnixTimestamp64Milli(toInt64({end}), 'UTC') GROUP BY hour"
    ).result_rows
    trailing = sorted(count for hour, count in hours if hour * HOUR_MS < start)
    # only whole hours inside the window: the newest hour is still filling, the oldest cut by the window
    current = [count for hour, count in hours if hour * HOUR_MS >= start and (hour + 1) * HOUR_MS <= end]
    median = trailing[len(trailing) // 2] if trailing else None
    ratios = [count / median for count in current] if median else [1.0]
    now_ms = int(now.timestamp() * 1000)
    age_minutes = (now_ms - newest) / 60_000 if is_fx_market_open(now, calendar) else 0.0
    return pd.DataFrame(
        {
            "newest_age_minutes": [age_minutes],
            "min_hour_ratio": [min(ratios or [1.0])],
            "max_hour_ratio": [max(ratios or [1.0])],
        }
    )


def _health_expectations(limits: QualityLimits) -> list[Any]:
    from great_expectations import expectations as gxe
    from great_expectations.expectations.metadata_types import FailureSeverity

    low, high = limits.volume_ratio_bounds
    return [
        gxe.ExpectColumnValuesToBeBetween(
            column="newest_age_minutes", max_value=limits.freshness_minutes, severity=FailureSeverity(WARNING)
        ),
        gxe.ExpectColumnValuesToBeBetween(column="min_hour_ratio", min_value=low, severity=FailureSeverity(WARNING)),
        gxe.ExpectColumnValuesToBeBetween(column="max_hour_ratio", max_value=high, severity=FailureSeverity(WARNING)),
    ]


def validate_table(
    client: Client,
    dataset: str,
    *,
    calendar: MarketCalendar,
    limits: QualityLimits | None = None,
    window_ms: tuple[int, int] | None = None,
    now: datetime | None = None,
    run_id: str | None = None,
) -> SuiteOutcome:
    """Validate one table's slice with its suite.

    Args:
        client: a client on the database holding the table.
        dataset: the table (one of :data:`quality.suites.RAW_TABLES`).
        calendar: the configured market calendar; freshness is judged only while it is open.
        limits: the bounds (default :class:`QualityLimits`).
        window_ms: ``[start, end)`` to read (default: the suite's window up to the table's newest row).
        now: the time freshness is judged at (default: now).
        run_id: the run's id (default: a new one).
    """
    limits = limits or QualityLimits()
    suite = suites(limits)[dataset]
    now = now or datetime.now(UTC)
    newest = newest_ms(client, suite)
    if window_ms is None and newest is not None:
        window_ms = (newest + 1 - suite.window_ms, newest + 1)
    frame = _read_slice(client, suite.slice_sql(*(window_ms or (None, None))))
    outcomes = _validate(dataset, frame, [*suite.expectations(limits), _has_rows()])
    if suite.time_column is not None and newest is not None and window_ms is not None:
        outcomes += _validate(
            f"{dataset}_health", _health(client, suite, window_ms, newest, now, calendar), _health_expectations(limits)
        )
    return SuiteOutcome(run_id or uuid.uuid4().hex, dataset, window_ms, len(frame), tuple(outcomes), now)


def write_results(client: Client, outcome: SuiteOutcome) -> int:
    """Insert one ``dq_results`` row per expectation of ``outcome``; return how many."""
    rows = [
        [
            outcome.run_id,
            outcome.dataset,
            item.check_name,
            item.is_success,
            item.observed_value,
            item.element_count,
            item.unexpected_count,
            json.dumps(item.details, sort_keys=True),
            outcome.checked_at,
        ]
        for item in outcome.outcomes
    ]
    client.insert(
        "dq_results",
        rows,
        column_names=[
            "run_id",
            "dataset",
            "check_name",
            "is_success",
            "observed_value",
            "element_count",
            "unexpected_count",
            "details",
            "checked_at_ms",
        ],
    )
    return len(rows)
