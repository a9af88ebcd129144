"""The trader board: price, signals and fills, positions, P&L today, orders, latency, trading state.

Refresh 1-5 s (``dashboards.refresh``), last hour by default, one ``symbol`` variable (the
configured symbols). Live panels read the source tables with their exact query patterns
(``FINAL`` / ``argMax``) over short time ranges; the dbt marts are built every 15 minutes
and so are too late for a live board.
"""

# ruff: noqa: S608, E501 - SQL built from this module's constants and typed settings, never from input; SQL lines kept whole

from __future__ import annotations

from dashboards.dataquery import QueryFormat
from dashboards.panels import BoardSpec, Kind, PanelSpec, T
from dashboards.sqlparts import contract_size_expression, quote_currency_expression, rollover_expression
from tickwave.config import Settings
from tickwave.instruments import lots_sql, price_sql, quote_amount_sql, registry
from tickwave.money import minor_units
from tickwave.timeframes import timeframe_seconds_sql

UID = "tickwave-trader"
TRADER_BUDGET_MS = 100.0
BAR_COLUMNS = "start_ms AS time, mid_open AS open, mid_high AS high, mid_low AS low, mid_close AS close, volume"
OHLC = (("time", T.TIME), ("open", T.NUMBER), ("high", T.NUMBER), ("low", T.NUMBER), ("close", T.NUMBER))
# Each fill's booking by the execution engine (execution.core.positions.Book.book): the position after it,
# the open lots' entry value after it and the realized P&L it booked, exact decimals (fills written
# before the engine booked them have no round trip and are left out).
BOOKED_FILLS = (
    "SELECT symbol, fill_id, filled_at_ms, commission, position_after_lots, entry_value_after, realized_pnl_quote "
    "FROM fills FINAL WHERE round_trip_id != ''"
)
# Each symbol's latest booking (fill_positions, kept by a materialized view on fills): one row per
# symbol, whatever the fills' history.
LATEST_BOOKINGS = (
    "SELECT symbol, toNullable(argMaxMerge(position_lots)) AS lots, toNullable(argMaxMerge(entry_value)) AS entry_value, "
    "CAST(max(last_fill_at) AS DateTime64(3, 'UTC')) AS last_fill_at FROM fill_positions GROUP BY symbol"
)
# Each symbol's bookings for the P&L of the trading day that started at ``rollover`` (a WITH alias of
# the query), from fill_positions_daily (its last booking of each UTC day, kept by a materialized view
# on fills) and the fills of the rollover's UTC day up to the rollover: the latest booking (as
# LATEST_BOOKINGS) and the latest before the rollover. One row per symbol and UTC day is read, not
# every fill booked. argMax states give the same answer when a row is read twice, so the fills are
# read without FINAL, their states built with the table's materialized view's order.
DAY_BOOKINGS = (
    "SELECT symbol, toNullable(argMaxMerge(lots_state)) AS lots, toNullable(argMaxMerge(value_state)) AS entry_value, "
    "argMaxMergeIf(lots_state, is_before_rollover) AS lots_at_rollover, "
    "argMaxMergeIf(value_state, is_before_rollover) AS entry_value_at_rollover "
    "FROM ("
    "SELECT symbol, position_lots AS lots_state, entry_value AS value_state, "
    "day < toDate(rollover, 'UTC') AS is_before_rollover FROM fill_positions_daily "
    "UNION ALL "
    "SELECT symbol, argMaxState(assumeNotNull(position_after_lots), (filled_at_ms, fill_id, inserted_at)), "
    "argMaxState(assumeNotNull(entry_value_after), (filled_at_ms, fill_id, inserted_at)), true "
    "FROM fills WHERE round_trip_id != '' AND filled_at_ms >= toStartOfDay(rollover, 'UTC') AND filled_at_ms < rollover "
    "GROUP BY symbol"
    ") GROUP BY symbol"
)
# The seconds a bar of each timeframe spans (its end = start + this).
TIMEFRAME_SECONDS = timeframe_seconds_sql("timeframe")


def _price() -> PanelSpec:
    return PanelSpec(
        title="Price",
        kind=Kind.CANDLESTICK,
        sql=f"""SELECT * FROM (
  SELECT {BAR_COLUMNS} FROM bars_1s FINAL
  WHERE $__interval_s < 60 AND symbol = '${{symbol}}' AND $__timeFilter(start_ms)
  UNION ALL
  SELECT {BAR_COLUMNS} FROM bars_1m FINAL
  WHERE $__interval_s >= 60 AND symbol = '${{symbol}}' AND $__timeFilter(start_ms)
) ORDER BY time""",
        format=QueryFormat.TIME_SERIES,
        unit="none",
        columns=(*OHLC, ("volume", T.NUMBER)),
        description="Mid-price candles of the selected symbol: 1-second bars (bars_1s) while Grafana's interval "
        "is under a minute, 1-minute bars (bars_1m) when zoomed out. Buy/sell signals and fills are the "
        "board's annotations.",
        budget_ms=TRADER_BUDGET_MS,
        width=24,
        height=10,
    )


def _annotations(settings: Settings) -> tuple[PanelSpec, ...]:
    signals = PanelSpec(
        title="Signals",
        kind=Kind.ANNOTATION,
        sql="""SELECT created_at_ms AS time,
       concat(upper(toString(direction)), ' conf ', toString(round(confidence, 2)), ' ', toString(model_id), ' v', toString(model_version)) AS text,
       [toString(direction)] AS tags
FROM signals FINAL
WHERE symbol = '${symbol}' AND $__timeFilter(bar_start_ms)
ORDER BY time""",
        format=QueryFormat.TABLE,
        unit="none",
        columns=(("time", T.TIME), ("text", T.STRING), ("tags", T.ANY)),
        description="Signals of the selected symbol (direction, confidence, model version) at the time they were made.",
        budget_ms=TRADER_BUDGET_MS,
    )
    fills = PanelSpec(
        title="Fills",
        kind=Kind.ANNOTATION,
        sql=f"""SELECT filled_at_ms AS time,
       concat(upper(toString(side)), ' ', toString({lots_sql("quantity_lots", registry(settings.symbols))}), ' lots @ ',
         toString(price)) AS text,
       [toString(side)] AS tags
FROM fills FINAL
WHERE symbol = '${{symbol}}' AND $__timeFilter(filled_at_ms)
ORDER BY time""",
        format=QueryFormat.TABLE,
        unit="none",
        columns=(("time", T.TIME), ("text", T.STRING), ("tags", T.ANY)),
        description="Fills of the selected symbol (side, lots at the lot step, price).",
        budget_ms=TRADER_BUDGET_MS,
    )
    return signals, fills


def exact(value: str, scale: int = 18) -> str:
    """A Float64 expression as an exact decimal of its shortest text (as ``tickwave.money.to_decimal``)."""
    return f"toDecimal256(toString({value}), {scale})"


def _positions(settings: Settings) -> PanelSpec:
    # The engine's booking of each symbol's last fill: the position and its open lots' entry value; the
    # average entry price at the symbol's digits (as MetaTrader shows a position's price).
    instruments = registry(settings.symbols)
    average = price_sql("entry_value / toFloat64(lots)", instruments)
    return PanelSpec(
        title="Positions",
        kind=Kind.TABLE,
        sql=f"""SELECT symbol, {lots_sql("lots", instruments)} AS position_lots,
       if(lots = 0, NULL, {average}) AS average_price, last_fill_at
FROM (
  SELECT symbol, lots, toFloat64(entry_value) AS entry_value, last_fill_at FROM ({LATEST_BOOKINGS})
)
ORDER BY symbol""",
        format=QueryFormat.TABLE,
        unit="none",
        columns=(
            ("symbol", T.STRING),
            ("position_lots", T.NUMBER),
            ("average_price", T.NUMBER),
            ("last_fill_at", T.TIME),
        ),
        description="Net position per symbol (lots, + long / - short, at the symbol's lot step) as the execution "
        "engine booked its last fill, and the average entry price of the open lots (first-in first-out, as execution books them) at "
        "the symbol's digits.",
        budget_ms=TRADER_BUDGET_MS,
    )


def _pnl_today(settings: Settings) -> PanelSpec:
    rollover = rollover_expression(settings.market)
    contract = exact(contract_size_expression(settings.symbols, "f.symbol"), 8)
    currency = quote_currency_expression(settings.symbols, "f.symbol")
    mark_now = exact("if(n.symbol = '', s.mark_minute, n.mark_second)")
    instruments = registry(settings.symbols)
    return PanelSpec(
        title="P&L today",
        kind=Kind.TABLE,
        sql=f"""SELECT symbol, currency, {lots_sql("lots", instruments)} AS position_lots,
       {quote_amount_sql("pnl", instruments)} AS pnl_today, commission_today
FROM (
WITH {rollover} AS rollover
SELECT f.symbol AS symbol,
       {currency} AS currency,
       f.position_now AS lots,
       toDecimal128(f.realized_today
         + ({mark_now} * f.position_now - f.value_now
            - {exact("s.mark_start")} * f.position_start + f.value_start) * {contract}, 18) AS pnl,
       f.today_commission AS commission_today
FROM (
  SELECT l.symbol AS symbol,
         t.realized_today AS realized_today,
         t.today_commission AS today_commission,
         l.lots AS position_now,
         l.entry_value AS value_now,
         l.lots_at_rollover AS position_start,
         l.entry_value_at_rollover AS value_start
  FROM ({DAY_BOOKINGS}) AS l
  LEFT JOIN (
    SELECT symbol,
           sum(realized_pnl_quote) AS realized_today,
           sum(toDecimal128(toString(commission), 18)) AS today_commission
    FROM ({BOOKED_FILLS} AND filled_at_ms >= rollover)
    GROUP BY symbol
  ) AS t ON t.symbol = l.symbol
) AS f
LEFT JOIN (
  SELECT symbol, argMax(mid_close, start_ms) AS mark_second FROM bars_1s
  WHERE start_ms >= now() - INTERVAL 5 MINUTE GROUP BY symbol
) AS n ON n.symbol = f.symbol
LEFT JOIN (
  SELECT symbol, argMaxIf(mid_close, start_ms, start_ms < rollover) AS mark_start,
         argMax(mid_close, start_ms) AS mark_minute
  FROM bars_1m WHERE start_ms >= rollover - INTERVAL 4 DAY GROUP BY symbol
) AS s ON s.symbol = f.symbol
)
ORDER BY symbol""",
        format=QueryFormat.TABLE,
        unit="none",  # per symbol in its quote currency (the currency column): no single currency unit
        columns=(
            ("symbol", T.STRING),
            ("currency", T.STRING),
            ("position_lots", T.NUMBER),
            ("pnl_today", T.NUMBER),
            ("commission_today", T.NUMBER),
        ),
        description="P&L of the trading day per symbol, in its quote currency: realized today + (unrealized now - "
        "unrealized at the rollover), execution's definition (execution/README.md), from what the engine booked "
        "on each fill (exact decimals): the realized P&L of today's fills, and the open lots valued at a mark "
        "(mark x position - their entry value, times the contract size) now and at the rollover; the mark now is "
        "the last 1 s bar close of the last 5 minutes (else the last 1 min bar's), the mark at the rollover the "
        "last 1 min bar close before it. The rollover is market.rollover_time in market.timezone. "
        "Shown at the quote currency's minor unit (rounded half even), lots at the lot step. Commissions are "
        "shown apart, in the account currency.",
        budget_ms=TRADER_BUDGET_MS,
        decimals=(("commission_today", minor_units(settings.execution.account_currency)),),
    )


def _orders(settings: Settings) -> tuple[PanelSpec, ...]:
    instruments = registry(settings.symbols)
    working = PanelSpec(
        title="Working orders",
        kind=Kind.TABLE,
        sql=f"""SELECT client_order_id, symbol, side, {lots_sql("ordered_lots", instruments)} AS quantity_lots,
       {lots_sql("done_lots", instruments)} AS filled_lots, status,
       first_created_at AS created_at_ms, last_updated_at AS updated_at_ms
FROM (
  SELECT client_order_id, any(symbol) AS symbol, any(side) AS side, any(quantity_lots) AS ordered_lots,
         argMax(filled_lots, updated_at_ms) AS done_lots, argMax(status, updated_at_ms) AS status,
         min(created_at_ms) AS first_created_at, max(updated_at_ms) AS last_updated_at
  FROM orders
  WHERE created_at_ms >= now() - INTERVAL 2 DAY
  GROUP BY client_order_id
)
WHERE status IN ('new', 'submitted', 'accepted', 'partially_filled')
ORDER BY first_created_at DESC
LIMIT 100""",
        format=QueryFormat.TABLE,
        unit="none",
        columns=(
            ("client_order_id", T.STRING),
            ("symbol", T.STRING),
            ("side", T.STRING),
            ("quantity_lots", T.NUMBER),
            ("filled_lots", T.NUMBER),
            ("status", T.STRING),
            ("created_at_ms", T.TIME),
            ("updated_at_ms", T.TIME),
        ),
        description="Orders not yet final (new, submitted, accepted, partially filled) created in the last two "
        "days, newest first, lots at the lot step; the current state is the newest row per client_order_id (argMax; measured cheaper "
        "here than FINAL over the same rows).",
        budget_ms=TRADER_BUDGET_MS,
    )
    fills = PanelSpec(
        title="Last fills",
        kind=Kind.TABLE,
        sql=f"""SELECT time, symbol, side, {lots_sql("lots", instruments)} AS quantity_lots, price, commission,
       client_order_id
FROM (
  SELECT filled_at_ms AS time, symbol, side, quantity_lots AS lots, price, commission, client_order_id
  FROM fills FINAL
  WHERE filled_at_ms >= now() - INTERVAL 1 DAY
  ORDER BY filled_at_ms DESC
  LIMIT 50
)
ORDER BY time DESC""",
        format=QueryFormat.TABLE,
        unit="none",
        columns=(
            ("time", T.TIME),
            ("symbol", T.STRING),
            ("side", T.STRING),
            ("quantity_lots", T.NUMBER),
            ("price", T.NUMBER),
            ("commission", T.NUMBER),
            ("client_order_id", T.STRING),
        ),
        description="The 50 latest fills of every symbol (last 24 h); lots at the lot step, the commission in "
        "the account currency at its minor unit.",
        budget_ms=TRADER_BUDGET_MS,
        decimals=(("commission", minor_units(settings.execution.account_currency)),),
    )
    return working, fills


def _signals() -> tuple[PanelSpec, ...]:
    confidence = PanelSpec(
        title="Signal confidence",
        kind=Kind.TIME_SERIES,
        sql="""SELECT $__timeInterval(created_at_ms) AS time, avg(confidence) AS confidence
FROM signals
WHERE symbol = '${symbol}' AND $__timeFilter(bar_start_ms)
GROUP BY time
ORDER BY time""",
        format=QueryFormat.TIME_SERIES,
        unit="percentunit",
        columns=(("time", T.TIME), ("confidence", T.NUMBER)),
        description="Mean confidence of the selected symbol's signals per interval.",
        budget_ms=TRADER_BUDGET_MS,
        width=16,
    )
    model = PanelSpec(
        title="Model serving",
        kind=Kind.STAT,
        sql="""SELECT concat(toString(model_id), ' v', toString(model_version)) AS model, max(created_at_ms) AS last_signal_at
FROM signals
WHERE $__timeFilter(bar_start_ms)
GROUP BY model
ORDER BY last_signal_at DESC
LIMIT 1""",
        format=QueryFormat.TABLE,
        unit="string",
        columns=(("model", T.STRING), ("last_signal_at", T.TIME)),
        description="The model id and version behind the latest signal in the time range.",
        budget_ms=TRADER_BUDGET_MS,
        width=8,
    )
    return confidence, model


def _latency() -> tuple[PanelSpec, ...]:
    tick_to_signal = PanelSpec(
        title="Tick-to-signal latency",
        kind=Kind.HEATMAP,
        sql=f"""SELECT created_at_ms AS time,
       dateDiff('millisecond', bar_start_ms + toIntervalSecond({TIMEFRAME_SECONDS}), created_at_ms) AS latency_ms
FROM signals
WHERE $__timeFilter(bar_start_ms)
ORDER BY time""",
        format=QueryFormat.TIME_SERIES,
        unit="ms",
        columns=(("time", T.TIME), ("latency_ms", T.NUMBER)),
        description="From the close of the bar a signal was made on (its last tick's window end) to the signal, "
        "per signal; Grafana buckets them into the heatmap.",
        budget_ms=TRADER_BUDGET_MS,
    )
    signal_to_fill = PanelSpec(
        title="Signal-to-fill latency",
        kind=Kind.HEATMAP,
        sql="""SELECT f.filled_at_ms AS time, dateDiff('millisecond', s.created_at_ms, f.filled_at_ms) AS latency_ms
FROM (SELECT signal_id, filled_at_ms FROM fills WHERE $__timeFilter(filled_at_ms)) AS f
INNER JOIN (
  SELECT signal_id, created_at_ms FROM signals
  WHERE bar_start_ms >= $__fromTime - INTERVAL 1 DAY AND bar_start_ms <= $__toTime
) AS s ON s.signal_id = f.signal_id
ORDER BY time""",
        format=QueryFormat.TIME_SERIES,
        unit="ms",
        columns=(("time", T.TIME), ("latency_ms", T.NUMBER)),
        description="From a signal to each fill of the order it caused, per fill.",
        budget_ms=TRADER_BUDGET_MS,
    )
    return tick_to_signal, signal_to_fill


def _risk() -> tuple[PanelSpec, ...]:
    state = PanelSpec(
        title="Trading state",
        kind=Kind.STAT,
        sql="""SELECT argMax(trading_state, (occurred_at_ms, risk_event_id)) AS trading_state, max(occurred_at_ms) AS since
FROM risk_events""",
        format=QueryFormat.TABLE,
        unit="string",
        columns=(("trading_state", T.STRING), ("since", T.TIME)),
        description="ACTIVE / REDUCING / HALTED: the state recorded with the latest risk event (green, orange, red).",
        budget_ms=TRADER_BUDGET_MS,
        width=6,
    )
    halted = PanelSpec(
        title="Halted symbols",
        kind=Kind.TABLE,
        sql="""SELECT symbol, max(occurred_at_ms) AS since, argMax(detail, occurred_at_ms) AS detail
FROM risk_events FINAL
WHERE kind IN ('symbol_halted', 'symbol_resumed') AND symbol != ''
GROUP BY symbol
HAVING argMax(kind, occurred_at_ms) = 'symbol_halted'
ORDER BY since DESC""",
        format=QueryFormat.TABLE,
        unit="none",
        columns=(("symbol", T.STRING), ("since", T.TIME), ("detail", T.STRING)),
        description="Symbols whose latest halt/resume risk event is a halt (e.g. the flash-crash breaker).",
        budget_ms=TRADER_BUDGET_MS,
        width=6,
    )
    events = PanelSpec(
        title="Latest risk events",
        kind=Kind.TABLE,
        sql="""SELECT occurred_at_ms AS time, severity, kind, `check`, symbol, trading_state, detail
FROM risk_events FINAL
ORDER BY occurred_at_ms DESC
LIMIT 50""",
        format=QueryFormat.TABLE,
        unit="none",
        columns=(
            ("time", T.TIME),
            ("severity", T.STRING),
            ("kind", T.STRING),
            ("check", T.STRING),
            ("symbol", T.STRING),
            ("trading_state", T.STRING),
            ("detail", T.STRING),
        ),
        description="The 50 latest risk events: breaches, halts and resumes, rollovers, limit changes.",
        budget_ms=TRADER_BUDGET_MS,
    )
    return state, halted, events


def trader_board(settings: Settings) -> BoardSpec:
    """The trader board for ``settings`` (symbols, rollover, refresh)."""
    return BoardSpec(
        uid=UID,
        title="Tickwave · Trader",
        description="Live trading: price with signals and fills, positions, P&L today, orders, latency, risk state.",
        refresh=settings.dashboards.refresh,
        time_from="now-1h",
        panels=(
            _price(),
            _positions(settings),
            _pnl_today(settings),
            *_orders(settings),
            *_signals(),
            *_latency(),
            *_risk(),
        ),
        annotations=_annotations(settings),
        symbols=tuple(settings.symbols),
    )
