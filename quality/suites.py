"""One data-quality suite per raw warehouse table, as code: the slice to read and what must hold in it.

A suite is pure description: the SQL of a bounded slice (one time window of the table,
read ``FINAL`` so duplicates left after deduplication show up as such), with derived
columns computed server-side (spread in pips against the symbol's bound, probability
sums, lots against the lot step, whether an order's signal exists), and the Great
Expectations expectations over it, each *blocking* (GX severity ``critical``: a failure
stops the work downstream) or *warning*. Freshness and volume are checked on a small
summary frame (see :mod:`quality.runner`). Building a suite imports GX (3-8 s): only
:mod:`quality.runner` does, never the CLI's start-up.
"""

# ruff: noqa: S608 - the SQL is built from table and column names fixed here and numeric limits

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

    from tickwave.config import Settings

HOUR_MS = 3_600_000
BLOCKING = "critical"
ORDER_STATES = ("new", "submitted", "accepted", "partially_filled", "filled", "canceled", "rejected", "expired")
WARNING = "warning"

RAW_TABLES = (
    "ticks",
    "bars_1s",
    "bars_1m",
    "features",
    "predictions",
    "signals",
    "orders",
    "fills",
    "risk_events",
    "model_registry",
)


@dataclass(frozen=True)
class QualityLimits:
    """Bounds the suites check against (pips per symbol, lot step, freshness, volume)."""

    max_spread_pips: Mapping[str, float] = field(
        default_factory=lambda: {"XAUUSD": 100.0, "USDJPY": 10.0, "EURJPY": 15.0}
    )
    default_max_spread_pips: float = 10.0
    pip_sizes: Mapping[str, float] = field(default_factory=dict)  # from the symbol registry; default FX rule
    lot_step: float = 0.01
    freshness_minutes: float = 15.0
    volume_ratio_bounds: tuple[float, float] = (0.1, 10.0)  # an hour's rows against the trailing 24 h median

    @classmethod
    def from_settings(cls, settings: Settings) -> QualityLimits:
        """Pips from the symbol registry (``tickwave.instruments``), the lot step from execution."""
        from tickwave.instruments import registry

        pips = {name: instrument.pip_size for name, instrument in registry(settings.symbols).items()}
        return cls(pip_sizes=pips, lot_step=settings.execution.risk.lot_step)


@dataclass(frozen=True)
class TableSuite:
    """What to read from one table and what must hold in it."""

    dataset: str
    time_column: str | None  # None: the whole table is the slice (small tables)
    keys: tuple[str, ...]
    select: str  # the columns and derived columns of the slice (SQL)
    expectations: Callable[[QualityLimits], list[Expectation]]
    window_ms: int = 24 * 3_600_000  # the slice: this long up to the newest row (ticks: 1 h, ~0.4M rows a day of 10M)

    def slice_sql(self, start_ms: int | None, end_ms: int | None) -> str:
        """Return the slice's SQL: the table ``FINAL`` within ``[start, end)`` of its time column."""
        where = ""
        if self.time_column and start_ms is not None and end_ms is not None:
            where = (
                f" WHERE {self.time_column} >= fromUnixTimestamp64Milli(toInt64({start_ms}), 'UTC')"
                f" AND {self.time_column} < fromUnixTimestamp64Milli(toInt64({end_ms}), 'UTC')"
            )
        return f"SELECT {self.select} FROM {self.dataset} FINAL{where}"


def pip_sql(limits: QualityLimits) -> str:
    """SQL for the pip of ``symbol`` (the registry's, else 0.01 for JPY quotes and 0.0001 otherwise)."""
    cases = "".join(f"symbol = '{name}', {size}, " for name, size in limits.pip_sizes.items())
    return f"multiIf({cases}endsWith(symbol, 'JPY'), 0.01, 0.0001)"


def spread_bound_sql(limits: QualityLimits) -> str:
    """SQL for the largest spread allowed for ``symbol`` (pips)."""
    cases = "".join(f"symbol = '{name}', {bound}, " for name, bound in limits.max_spread_pips.items())
    return f"multiIf({cases}{limits.default_max_spread_pips})"


def _gx() -> Any:
    from great_expectations import expectations as gxe

    return gxe


def _keys(columns: tuple[str, ...], severity: str = BLOCKING) -> list[Expectation]:
    gxe = _gx()
    checks: list[Expectation] = [gxe.ExpectColumnToExist(column=name, severity=severity) for name in columns]
    checks += [gxe.ExpectColumnValuesToNotBeNull(column=name, severity=severity) for name in columns]
    if len(columns) > 1:
        checks.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(columns), severity=severity))
    else:
        checks.append(gxe.ExpectColumnValuesToBeUnique(column=columns[0], severity=severity))
    return checks


def _ticks(limits: QualityLimits) -> list[Expectation]:
    gxe = _gx()
    return [
        *_keys(("symbol", "time_ms", "seq")),
        gxe.ExpectColumnValuesToBeBetween(column="bid", min_value=0, strict_min=True, severity=BLOCKING),
        gxe.ExpectColumnValuesToBeBetween(column="ask", min_value=0, strict_min=True, severity=BLOCKING),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="ask", column_B="bid", or_equal=True, ignore_row_if="either_value_is_missing", severity=BLOCKING
        ),
        gxe.ExpectColumnValuesToBeBetween(column="spread_excess_pips", max_value=0, severity=WARNING),
    ]


def _bars(limits: QualityLimits) -> list[Expectation]:
    gxe = _gx()
    return [
        *_keys(("symbol", "start_ms")),
        gxe.ExpectColumnValuesToBeBetween(column="mid_low", min_value=0, strict_min=True, severity=BLOCKING),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="mid_high", column_B="mid_low", or_equal=True, severity=BLOCKING
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="ask_close", column_B="bid_close", or_equal=True, severity=BLOCKING
        ),
        gxe.ExpectColumnValuesToBeBetween(column="tick_count", min_value=1, severity=BLOCKING),
        gxe.ExpectColumnValuesToBeBetween(column="spread_excess_pips", max_value=0, severity=WARNING),
    ]


def _features(limits: QualityLimits) -> list[Expectation]:
    gxe = _gx()
    return [
        *_keys(("symbol", "timeframe", "bar_start_ms")),
        gxe.ExpectColumnValuesToNotBeNull(column="schema_hash", severity=BLOCKING),
        # a warm vector with a NaN, an infinity or a missing value would poison training
        gxe.ExpectColumnValuesToBeBetween(column="non_finite_warm_values", max_value=0, severity=BLOCKING),
    ]


def _predictions(limits: QualityLimits) -> list[Expectation]:
    gxe = _gx()
    return [
        *_keys(("symbol", "timeframe", "model_id", "model_version", "bar_start_ms")),
        gxe.ExpectColumnValuesToBeBetween(column="probability_min", min_value=0, severity=BLOCKING),
        gxe.ExpectColumnValuesToBeBetween(column="probability_max", max_value=1, severity=BLOCKING),
        gxe.ExpectColumnValuesToBeBetween(
            column="probability_sum", min_value=0.999, max_value=1.001, severity=BLOCKING
        ),
    ]


def _signals(limits: QualityLimits) -> list[Expectation]:
    gxe = _gx()
    return [
        *_keys(("signal_id",)),
        gxe.ExpectColumnValuesToBeInSet(column="direction", value_set=["long", "short", "flat"], severity=BLOCKING),
        gxe.ExpectColumnValuesToBeBetween(column="strength", min_value=0, max_value=1, severity=WARNING),
        gxe.ExpectColumnValuesToBeBetween(column="confidence", min_value=0, max_value=1, severity=WARNING),
    ]


def _orders(limits: QualityLimits) -> list[Expectation]:
    gxe = _gx()
    return [
        *_keys(("client_order_id",)),
        gxe.ExpectColumnValuesToBeInSet(column="side", value_set=["buy", "sell"], severity=BLOCKING),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(ORDER_STATES), severity=BLOCKING),
        gxe.ExpectColumnValuesToBeBetween(column="quantity_lots", min_value=0, strict_min=True, severity=BLOCKING),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="quantity_lots", column_B="filled_lots", or_equal=True, severity=BLOCKING
        ),
        gxe.ExpectColumnValuesToBeBetween(column="lot_step_error", max_value=1e-6, severity=WARNING),
        # cross-table: every order has its signal
        gxe.ExpectColumnValuesToBeInSet(column="has_signal", value_set=[1], severity=BLOCKING),
    ]


def _fills(limits: QualityLimits) -> list[Expectation]:
    gxe = _gx()
    return [
        *_keys(("fill_id",)),
        gxe.ExpectColumnValuesToBeInSet(column="side", value_set=["buy", "sell"], severity=BLOCKING),
        gxe.ExpectColumnValuesToBeBetween(column="price", min_value=0, strict_min=True, severity=BLOCKING),
        gxe.ExpectColumnValuesToBeBetween(column="quantity_lots", min_value=0, strict_min=True, severity=BLOCKING),
        gxe.ExpectColumnValuesToBeBetween(column="lot_step_error", max_value=1e-6, severity=WARNING),
        gxe.ExpectColumnValuesToBeInSet(column="has_order", value_set=[1], severity=BLOCKING),
    ]


def _risk_events(limits: QualityLimits) -> list[Expectation]:
    gxe = _gx()
    return [
        *_keys(("risk_event_id",)),
        gxe.ExpectColumnValuesToBeInSet(
            column="severity", value_set=["info", "warning", "critical"], severity=BLOCKING
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="trading_state", value_set=["ACTIVE", "REDUCING", "HALTED"], severity=BLOCKING
        ),
    ]


def _model_registry(limits: QualityLimits) -> list[Expectation]:
    gxe = _gx()
    return [
        *_keys(("model_id", "model_version")),
        gxe.ExpectColumnValuesToBeInSet(
            column="stage", value_set=["candidate", "challenger", "champion", "retired"], severity=BLOCKING
        ),
        gxe.ExpectColumnValuesToBeBetween(column="champions_of_model", max_value=1, severity=BLOCKING),
    ]


def _lot_step(limits: QualityLimits, column: str) -> str:
    step = limits.lot_step
    return f"abs({column} / {step} - round({column} / {step})) AS lot_step_error"


def suites(limits: QualityLimits) -> dict[str, TableSuite]:
    """Return the suite of every raw table, by table name."""
    spread_excess = f"(ask - bid) / {pip_sql(limits)} - {spread_bound_sql(limits)} AS spread_excess_pips"
    bar_excess = f"spread_max / {pip_sql(limits)} - {spread_bound_sql(limits)} AS spread_excess_pips"
    bar_columns = "symbol, start_ms, mid_low, mid_high, ask_close, bid_close, tick_count, " + bar_excess
    probability_values = "mapValues(probabilities)"
    return {
        "ticks": TableSuite(
            "ticks",
            "time_ms",
            ("symbol", "time_ms", "seq"),
            f"symbol, time_ms, seq, bid, ask, {spread_excess}",
            _ticks,
            HOUR_MS,
        ),
        "bars_1s": TableSuite("bars_1s", "start_ms", ("symbol", "start_ms"), bar_columns, _bars, HOUR_MS),
        "bars_1m": TableSuite("bars_1m", "start_ms", ("symbol", "start_ms"), bar_columns, _bars),
        "features": TableSuite(
            "features",
            "bar_start_ms",
            ("symbol", "timeframe", "bar_start_ms"),
            "symbol, timeframe, bar_start_ms, schema_hash, "
            "if(is_warm, arrayCount(v -> isNull(v) OR NOT isFinite(assumeNotNull(v)), mapValues(values)), 0) "
            "AS non_finite_warm_values",
            _features,
        ),
        "predictions": TableSuite(
            "predictions",
            "bar_start_ms",
            ("symbol", "timeframe", "model_id", "model_version", "bar_start_ms"),
            f"symbol, timeframe, model_id, model_version, bar_start_ms, arrayMin({probability_values}) AS "
            f"probability_min, arrayMax({probability_values}) AS probability_max, arraySum({probability_values}) "
            "AS probability_sum",
            _predictions,
        ),
        "signals": TableSuite(
            "signals", "created_at_ms", ("signal_id",), "signal_id, direction, strength, confidence", _signals
        ),
        "orders": TableSuite(
            "orders",
            "created_at_ms",
            ("client_order_id",),
            f"client_order_id, side, status, quantity_lots, filled_lots, {_lot_step(limits, 'quantity_lots')}, "
            "toUInt8(signal_id IN (SELECT signal_id FROM signals)) AS has_signal",
            _orders,
        ),
        "fills": TableSuite(
            "fills",
            "filled_at_ms",
            ("fill_id",),
            f"fill_id, side, price, quantity_lots, {_lot_step(limits, 'quantity_lots')}, "
            "toUInt8(client_order_id IN (SELECT client_order_id FROM orders)) AS has_order",
            _fills,
        ),
        "risk_events": TableSuite(
            "risk_events", "occurred_at_ms", ("risk_event_id",), "risk_event_id, severity, trading_state", _risk_events
        ),
        "model_registry": TableSuite(
            "model_registry",
            None,
            ("model_id", "model_version"),
            "model_id, model_version, stage, "
            "countIf(stage = 'champion') OVER (PARTITION BY model_id) AS champions_of_model",
            _model_registry,
        ),
    }
