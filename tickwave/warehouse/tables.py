"""The warehouse tables as Arrow schemas, and how each bus message becomes a row.

Column names are the contract fields (``tickwave.contracts``); ``_ms`` fields are Arrow
``timestamp[ms, UTC]`` (ClickHouse ``DateTime64(3, 'UTC')``), filled from the integer
milliseconds the messages carry. Columns the server fills itself (``inserted_at``) are
not listed. Pure data and functions: the integration tests check these schemas against
the migrated tables, so a migration and its writer cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import pyarrow as pa

from tickwave.contracts import (
    Bar,
    DeadLetter,
    FeatureVector,
    Fill,
    Message,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    Prediction,
    RiskEvent,
    Signal,
    Tick,
    encode,
)
from tickwave.timeframes import TIMEFRAMES

TIMESTAMP = pa.timestamp("ms", tz="UTC")
STRING = pa.string()
FLOAT = pa.float64()
LOTS = pa.decimal128(18, 8)  # ClickHouse Decimal(18, 8): a position in lots, exact
MONEY = pa.decimal128(38, 18)  # ClickHouse Decimal(38, 18): prices x lots and P&L, exact


@dataclass(frozen=True)
class Table:
    """A warehouse table as the writer sees it: its name and Arrow schema."""

    name: str
    schema: pa.Schema

    @property
    def column_names(self) -> list[str]:
        """The columns, in insert order."""
        return list(self.schema.names)


def _table(name: str, *columns: tuple[str, pa.DataType]) -> Table:
    return Table(name, pa.schema([pa.field(column, kind) for column, kind in columns]))


_BAR_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("symbol", STRING),
    ("timeframe", STRING),
    ("start_ms", TIMESTAMP),
    ("end_ms", TIMESTAMP),
    *((f"{side}_{point}", FLOAT) for side in ("bid", "ask", "mid") for point in ("open", "high", "low", "close")),
    ("tick_count", pa.uint32()),
    ("volume", FLOAT),
    ("spread_mean", FLOAT),
    ("spread_max", FLOAT),
)

TICKS = _table(
    "ticks",
    ("symbol", STRING),
    ("time_ms", TIMESTAMP),
    ("seq", pa.uint32()),
    ("bid", FLOAT),
    ("ask", FLOAT),
    ("last", FLOAT),
    ("volume", FLOAT),
    ("flags", pa.uint32()),
    ("source", STRING),
)
# One table per timeframe, bars_<timeframe> (tickwave.timeframes; README.md says why).
BAR_TABLES: dict[str, Table] = {timeframe: _table(f"bars_{timeframe}", *_BAR_COLUMNS) for timeframe in TIMEFRAMES}
BARS_1M = BAR_TABLES["1m"]
FEATURES = _table(
    "features",
    ("symbol", STRING),
    ("timeframe", STRING),
    ("bar_start_ms", TIMESTAMP),
    ("values", pa.map_(STRING, FLOAT)),
    ("is_warm", pa.bool_()),
    ("schema_hash", STRING),
)
PREDICTIONS = _table(
    "predictions",
    ("symbol", STRING),
    ("timeframe", STRING),
    ("bar_start_ms", TIMESTAMP),
    ("model_id", STRING),
    ("model_version", pa.uint32()),
    ("probabilities", pa.map_(STRING, FLOAT)),
    ("inference_latency_us", FLOAT),
    ("predicted_at_ms", TIMESTAMP),
    ("confidence", FLOAT),
    ("members", pa.list_(STRING)),
    ("role", STRING),
)
SIGNALS = _table(
    "signals",
    ("signal_id", STRING),
    ("symbol", STRING),
    ("timeframe", STRING),
    ("bar_start_ms", TIMESTAMP),
    ("direction", STRING),
    ("strength", FLOAT),
    ("confidence", FLOAT),
    ("model_id", STRING),
    ("model_version", pa.uint32()),
    ("created_at_ms", TIMESTAMP),
    ("members", pa.list_(STRING)),
)
ORDERS = _table(
    "orders",
    ("client_order_id", STRING),
    ("signal_id", STRING),
    ("symbol", STRING),
    ("side", STRING),
    ("quantity_lots", FLOAT),
    ("order_type", STRING),
    ("limit_price", FLOAT),
    ("model_id", STRING),
    ("model_version", pa.uint32()),
    ("status", STRING),
    ("broker_order_id", STRING),
    ("filled_lots", FLOAT),
    ("average_fill_price", FLOAT),
    ("reason", STRING),
    ("created_at_ms", TIMESTAMP),
    ("updated_at_ms", TIMESTAMP),
    ("venue", STRING),
)
ORDER_EVENTS = _table(
    "order_events",
    ("event_id", STRING),
    ("event_type", STRING),
    ("client_order_id", STRING),
    ("signal_id", STRING),
    ("symbol", STRING),
    ("model_id", STRING),
    ("model_version", pa.uint32()),
    ("event_at_ms", TIMESTAMP),
    ("side", STRING),
    ("quantity_lots", FLOAT),
    ("order_type", STRING),
    ("limit_price", FLOAT),
    ("broker_order_id", STRING),
    ("reason", STRING),
    ("broker_code", pa.int32()),
    ("check", STRING),
    ("fill_id", STRING),
    ("fill_price", FLOAT),
    ("fill_lots", FLOAT),
    ("cumulative_lots", FLOAT),
    ("is_final", pa.bool_()),
    ("payload", STRING),
    ("chain_id", STRING),
    ("chain_seq", pa.uint64()),
    ("chain_prev_hash", STRING),
    ("chain_hash", STRING),
    ("venue", STRING),
)
FILLS = _table(
    "fills",
    ("fill_id", STRING),
    ("client_order_id", STRING),
    ("signal_id", STRING),
    ("symbol", STRING),
    ("side", STRING),
    ("price", FLOAT),
    ("quantity_lots", FLOAT),
    ("commission", FLOAT),
    ("filled_at_ms", TIMESTAMP),
    ("model_id", STRING),
    ("model_version", pa.uint32()),
    ("broker_deal_id", STRING),
    ("position_before_lots", LOTS),
    ("position_after_lots", LOTS),
    ("entry_value_after", MONEY),
    ("realized_pnl_quote", MONEY),
    ("realized_pnl_account", MONEY),
    ("round_trip_id", STRING),
    ("opens_round_trip_id", STRING),
)
RISK_EVENTS = _table(
    "risk_events",
    ("risk_event_id", STRING),
    ("kind", STRING),
    ("severity", STRING),
    ("trading_state", STRING),
    ("detail", STRING),
    ("occurred_at_ms", TIMESTAMP),
    ("symbol", STRING),
    ("check", STRING),
)
MODEL_REGISTRY = _table(
    "model_registry",
    ("model_id", STRING),
    ("model_version", pa.uint32()),
    ("stage", STRING),
    ("framework", STRING),
    ("artifact_uri", STRING),
    ("artifact_sha256", STRING),
    ("feature_schema_hash", STRING),
    ("metrics", pa.map_(STRING, FLOAT)),
    ("params", pa.map_(STRING, STRING)),
    ("trained_from_ms", TIMESTAMP),
    ("trained_to_ms", TIMESTAMP),
    ("created_at_ms", TIMESTAMP),
    ("updated_at_ms", TIMESTAMP),
    ("stage_changed_by", STRING),
    ("stage_reason", STRING),
)
MODEL_REGISTRY_EVENTS = _table(
    "model_registry_events",
    ("event_id", STRING),
    ("model_id", STRING),
    ("model_version", pa.uint32()),
    ("action", STRING),
    ("from_stage", STRING),
    ("to_stage", STRING),
    ("actor", STRING),
    ("reason", STRING),
    ("metrics", pa.map_(STRING, FLOAT)),
    ("occurred_at_ms", TIMESTAMP),
)
DQ_RESULTS = _table(
    "dq_results",
    ("run_id", STRING),
    ("dataset", STRING),
    ("check_name", STRING),
    ("is_success", pa.bool_()),
    ("observed_value", FLOAT),
    ("element_count", pa.uint64()),
    ("unexpected_count", pa.uint64()),
    ("details", STRING),
    ("checked_at_ms", TIMESTAMP),
)
QUARANTINE = _table(
    "quarantine",
    ("dead_letter_id", STRING),
    ("source", STRING),
    ("reason", STRING),
    ("raw", STRING),
    ("raw_encoding", STRING),
    ("received_at_ms", TIMESTAMP),
    ("symbol", STRING),
)
SERVICE_EVENTS = _table(
    "service_events",
    ("event_id", STRING),
    ("event_at_ms", TIMESTAMP),
    ("service", STRING),
    ("event", STRING),
    ("pid", pa.uint32()),
    ("exit_code", pa.int32()),
    ("restarts", pa.uint32()),
    ("detail", STRING),
    ("host", STRING),
)
PIPELINE_RUNS = _table(
    "pipeline_runs",
    ("run_id", STRING),
    ("job_name", STRING),
    ("status", STRING),
    ("partition_key", STRING),
    ("asset_keys", pa.list_(STRING)),
    ("started_at_ms", TIMESTAMP),
    ("ended_at_ms", TIMESTAMP),
    ("detail", STRING),
    ("updated_at_ms", TIMESTAMP),
)
MODEL_DRIFT = _table(
    "model_drift",
    ("model_id", STRING),
    ("model_version", pa.uint32()),
    ("timeframe", STRING),
    ("window_from_ms", TIMESTAMP),
    ("window_to_ms", TIMESTAMP),
    ("training_rows", pa.uint64()),
    ("live_rows", pa.uint64()),
    ("psi", pa.map_(STRING, FLOAT)),
    ("max_psi", FLOAT),
    ("worst_input", STRING),
    ("live_scored", pa.uint64()),
    ("live_log_loss", FLOAT),
    ("live_accuracy", FLOAT),
    ("holdout_log_loss", FLOAT),
    ("holdout_accuracy", FLOAT),
    ("is_retrain_due", pa.bool_()),
    ("reasons", STRING),
    ("measured_at_ms", TIMESTAMP),
)

TABLES: dict[str, Table] = {
    table.name: table
    for table in (
        TICKS,
        *BAR_TABLES.values(),
        FEATURES,
        PREDICTIONS,
        SIGNALS,
        ORDERS,
        ORDER_EVENTS,
        FILLS,
        RISK_EVENTS,
        MODEL_REGISTRY,
        MODEL_REGISTRY_EVENTS,
        DQ_RESULTS,
        QUARANTINE,
        SERVICE_EVENTS,
        PIPELINE_RUNS,
        MODEL_DRIFT,
    )
}

_ORDER_EVENT_TYPES = (OrderSubmitted, OrderAccepted, OrderRejected, OrderFilled, OrderCanceled, OrderDenied)


def _fields(message: Message) -> dict[str, Any]:
    return msgspec.structs.asdict(message)


def _order_event_row(message: Message) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(ORDER_EVENTS.column_names)
    row.update({"side": "", "order_type": "", "broker_order_id": "", "reason": "", "check": "", "fill_id": ""})
    row.update(_fields(message))
    row["venue"] = getattr(message, "venue", None) or ""  # OrderSubmitted only; unset on events that predate it
    row["event_id"] = message.event_id  # type: ignore[attr-defined]
    row["event_type"] = type(message).__struct_config__.tag
    row["payload"] = encode(message).decode()
    row.update(chain_id="", chain_seq=0, chain_prev_hash="", chain_hash="")  # set by the audit loader from the link
    return row


def _fill_row(message: Message) -> dict[str, Any]:
    """A fill's columns; a record written before the engine booked fills has NULL figures and no trip."""
    row = {name: None if value is msgspec.UNSET else value for name, value in _fields(message).items()}
    row["round_trip_id"] = row["round_trip_id"] or ""
    row["opens_round_trip_id"] = row["opens_round_trip_id"] or ""
    return row


def _dead_letter_row(message: Message) -> dict[str, Any]:
    return {**_fields(message), "dead_letter_id": message.dead_letter_id}  # type: ignore[attr-defined]


_ROWS: dict[type[Message], tuple[Callable[[Message], Table], Callable[[Message], dict[str, Any]]]] = {
    Tick: (lambda _: TICKS, _fields),
    Bar: (lambda message: _bar_table(message), _fields),
    FeatureVector: (lambda _: FEATURES, _fields),
    Prediction: (lambda _: PREDICTIONS, _fields),
    Signal: (lambda _: SIGNALS, _fields),
    Fill: (lambda _: FILLS, _fill_row),
    RiskEvent: (lambda _: RISK_EVENTS, _fields),
    DeadLetter: (lambda _: QUARANTINE, _dead_letter_row),
    **{kind: (lambda _: ORDER_EVENTS, _order_event_row) for kind in _ORDER_EVENT_TYPES},
}


def _bar_table(message: Message) -> Table:
    return bar_table(message.timeframe)  # type: ignore[attr-defined]


def bar_table(timeframe: str) -> Table:
    """Return the table of ``timeframe``'s bars, ``bars_<timeframe>``.

    Raises:
        KeyError: for a timeframe the warehouse does not store (configuration rejects those).
    """
    if timeframe not in BAR_TABLES:
        raise KeyError(f"no warehouse table for {timeframe!r} bars (known: {', '.join(BAR_TABLES)})")
    return BAR_TABLES[timeframe]


def table_for(message: Message) -> Table:
    """Return the table a message is stored in.

    Raises:
        KeyError: for a message type (or bar timeframe) the warehouse does not store.
    """
    route = _ROWS.get(type(message))
    if route is None:
        raise KeyError(f"no warehouse table for {type(message).__name__}")
    return route[0](message)


def row_for(message: Message) -> dict[str, Any]:
    """Return the message as a row of :func:`table_for`'s table (column name to value)."""
    route = _ROWS.get(type(message))
    if route is None:
        raise KeyError(f"no warehouse table for {type(message).__name__}")
    row = route[1](message)
    return {name: row.get(name) for name in route[0](message).column_names}


def to_arrow(table: Table, columns: Mapping[str, list[Any]]) -> pa.Table:
    """Build an Arrow table in ``table``'s schema from column lists (missing columns become nulls)."""
    length = len(next(iter(columns.values()))) if columns else 0
    arrays = [pa.array(columns.get(field.name, [None] * length), type=field.type) for field in table.schema]
    return pa.Table.from_arrays(arrays, schema=table.schema)
