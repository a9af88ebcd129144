"""A synthetic trading day written straight into the warehouse, for tests and ``bench/orchestration.py``.

Everything is generated server-side with ``INSERT ... SELECT FROM numbers()``, so ten
million ticks cost one request. The day is deterministic (no randomness) and consistent
across tables: each order has its signal, its prediction and its feature vector; orders
come in pairs per symbol (open, then close), so every filled pair is one closed round
trip; every 40th pair is rejected (no fills); every 50th signal is denied by the risk
gate; ``orders`` holds each order's submitted row *and* its final row (staging must
resolve them). Prices follow a smooth deterministic path around each symbol's base.
"""

# ruff: noqa: S608 - every statement is built from this module's constants and integers, never from input

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from tickwave.config.symbols import SymbolSpec
from tickwave.instruments import instrument_for
from tickwave.timeframes import SESSION_TIMEFRAMES, TIMEFRAMES_MS, SessionAlignment, window_of

DAY_MS = 86_400_000
# symbol -> (base mid, quoted digits, pip size, spread in pips)
SYMBOLS: dict[str, tuple[float, int, float, float]] = {
    "EURUSD": (1.08500, 5, 0.0001, 1.2),
    "USDJPY": (151.250, 3, 0.01, 1.4),
}
MODEL_ID = "xgb_direction"
MODEL_VERSION = 1
CHALLENGER_ID = "lgbm_direction"  # the challenger's own model id, shadowed against MODEL_ID's champion
COMMISSION_PER_LOT = 3.5
SLIPPAGE_PIPS = 0.1


@dataclass(frozen=True)
class SyntheticDay:
    """What :func:`write_synthetic_day` wrote."""

    day_start_ms: int
    ticks: int
    orders: int
    fills: int
    denials: int


def _arrays(symbols: Mapping[str, tuple[float, int, float, float]]) -> tuple[str, ...]:
    names = list(symbols)
    bases = ", ".join(repr(symbols[name][0]) for name in names)
    digits = ", ".join(str(symbols[name][1]) for name in names)
    pips = ", ".join(repr(symbols[name][2]) for name in names)
    spreads = ", ".join(repr(symbols[name][3]) for name in names)
    # Per symbol from the kernel's instrument facts: units per lot, and whether a USD amount is the quote's / price.
    instruments = [
        instrument_for(name, SymbolSpec(digits=symbols[name][1], tick_size=10.0 ** -symbols[name][1])) for name in names
    ]
    for instrument in instruments:
        if "USD" not in (instrument.base, instrument.quote):
            raise ValueError(f"{instrument.symbol}: the synthetic day books P&L in USD, so each symbol trades USD")
    contracts = ", ".join(repr(instrument.contract_size) for instrument in instruments)
    divides = ", ".join("1" if instrument.base == "USD" else "0" for instrument in instruments)
    return ", ".join(f"'{name}'" for name in names), bases, digits, pips, spreads, contracts, divides


def _mid(base: str, position: str) -> str:
    # The deterministic price path: two slow waves around the base (position = per-symbol tick index).
    return f"({base} * (1 + 0.002 * sin({position} / 50000.0) + 0.0004 * sin({position} / 377.0)))"


def write_synthetic_day(
    client: Client,
    day: datetime,
    ticks: int,
    orders: int,
    challenger: bool = False,
    *,
    span_ms: int = DAY_MS,
    symbols: Mapping[str, tuple[float, int, float, float]] = SYMBOLS,
    timeframes: Sequence[str] = ("1m",),
    alignment: SessionAlignment | None = None,
) -> SyntheticDay:
    """Write one synthetic day (or ``span_ms`` from ``day``) into the client's database (migrated, ideally empty there).

    Args:
        client: a read-write client whose database has Tickwave's schema.
        day: the UTC day (its midnight).
        ticks: how many ticks, all symbols together (a multiple of the symbol count).
        orders: how many orders, all symbols together (a multiple of twice the symbol count).
        challenger: also a challenger (``CHALLENGER_ID`` v1, in ``MODEL_ID``'s slot) scored in shadow on
            every bar the champion predicted (its predictions with role ``challenger``; no signal, no order).
        span_ms: how long the data lasts from ``day`` (a day by default; a whole number of minutes).
        symbols: symbol -> (base mid, quoted digits, pip size, spread in pips); each trades USD.
        timeframes: the bars written from the ticks (``tickwave.timeframes``; 1m is always written).
        alignment: where 4h and 1d bars start (the streams' rollover), or None for UTC boundaries.
    """
    count = len(symbols)
    if ticks % count or orders % (2 * count) or ticks <= 0 or orders <= 0:
        raise ValueError(f"ticks must be a multiple of {count} and orders of {2 * count}")
    start_ms = int(day.replace(tzinfo=UTC).timestamp() * 1000)
    arrays = _arrays(symbols)
    per_symbol_ticks, per_symbol_orders = ticks // count, orders // count
    pick = "arrayElement([{}], toUInt32(number % {}) + 1)"
    symbol, base, digit, pip, spread, contract, divides = (pick.format(values, count) for values in arrays)
    tick_ms = f"{start_ms} + intDiv(intDiv(number, {count}) * {span_ms}, {per_symbol_ticks})"
    mid = _mid(base, f"intDiv(number, {count})")
    client.command(f"""
        INSERT INTO ticks (symbol, time_ms, seq, bid, ask, last, volume, flags, source)
        SELECT {symbol}, fromUnixTimestamp64Milli(toInt64({tick_ms}), 'UTC'), 0,
               round({mid} - {spread} * {pip} / 2, {digit}), round({mid} + {spread} * {pip} / 2, {digit}),
               0, 1, 6, 'synthetic'
        FROM numbers({ticks})""")
    for timeframe in sorted({"1m", *timeframes}, key=TIMEFRAMES_MS.__getitem__):
        write_bars(client, timeframe, (start_ms, start_ms + span_ms), alignment)
    bars = f"""FROM bars_1m WHERE start_ms >= fromUnixTimestamp64Milli(toInt64({start_ms}), 'UTC')
               AND start_ms < fromUnixTimestamp64Milli(toInt64({start_ms + span_ms}), 'UTC')"""
    client.command(f"""
        INSERT INTO features (symbol, timeframe, bar_start_ms, values, is_warm, schema_hash)
        SELECT symbol, '1m', start_ms,
               map('ret_1', (mid_close - mid_open) / mid_open, 'spread', spread_mean, 'range', mid_high - mid_low),
               true, 'synthetic' {bars}""")
    # p(up) from a hash of the bar: between 0.2 and 0.7; the rest split 70/30 between down and flat.
    up = "(0.2 + 0.5 * (cityHash64(symbol, start_ms) % 1000) / 1000.0)"
    client.command(f"""
        INSERT INTO predictions (symbol, timeframe, bar_start_ms, model_id, model_version, probabilities,
                                 inference_latency_us, predicted_at_ms)
        SELECT symbol, '1m', start_ms, '{MODEL_ID}', {MODEL_VERSION},
               map('up', {up}, 'down', (1 - {up}) * 0.7, 'flat', (1 - {up}) * 0.3),
               25, end_ms + INTERVAL 2 MILLISECOND {bars}""")
    if challenger:
        _write_challenger(client, bars, start_ms)
    _write_orders(
        client,
        (start_ms, span_ms),
        orders,
        (per_symbol_ticks, per_symbol_orders, count),
        (symbol, base, pip, spread, contract, divides),
    )
    _write_operations(client, start_ms)
    fills = orders - 2 * _rejected_pairs(per_symbol_orders) * count
    return SyntheticDay(start_ms, ticks, orders, fills, _denials(orders))


def _write_challenger(client: Client, bars: str, start_ms: int) -> None:
    # A challenger of another model id scored in shadow on the champion's bars: p(up) from another hash,
    # between 0.3 and 0.6.
    up = "(0.3 + 0.3 * (cityHash64(start_ms, symbol) % 1000) / 1000.0)"
    client.command(f"""
        INSERT INTO predictions (symbol, timeframe, bar_start_ms, model_id, model_version, probabilities,
                                 inference_latency_us, predicted_at_ms, role)
        SELECT symbol, '1m', start_ms, '{CHALLENGER_ID}', 1,
               map('up', {up}, 'down', (1 - {up}) * 0.5, 'flat', (1 - {up}) * 0.5),
               30, end_ms + INTERVAL 3 MILLISECOND, 'challenger' {bars}""")
    at = f"fromUnixTimestamp64Milli(toInt64({start_ms}), 'UTC')"
    client.command(f"""
        INSERT INTO model_registry (model_id, model_version, stage, framework, artifact_uri, artifact_sha256,
                                    feature_schema_hash, metrics, params, trained_from_ms, trained_to_ms,
                                    created_at_ms, updated_at_ms, stage_changed_by, stage_reason)
        VALUES ('{CHALLENGER_ID}', 1, 'challenger', 'lightgbm', 'file:///synthetic', 'sha2',
                'synthetic', map('holdout_accuracy', 0.43, 'holdout_precision', 0.5),
                map('horizon_bars', '5', 'dead_zone_bps', '1.0', 'timeframe', '1m', 'symbols', 'EURUSD,USDJPY',
                    'slot', '{MODEL_ID}'),
                {at}, {at}, {at}, {at}, 'synthetic', 'synthetic challenger')""")


def _rejected_pairs(per_symbol_orders: int) -> int:
    return sum(1 for pair in range(per_symbol_orders // 2) if pair % 40 == 39)


def _denials(orders: int) -> int:
    return len(range(0, orders, 50))


def _write_orders(
    client: Client, span: tuple[int, int], orders: int, counts: tuple[int, int, int], picks: tuple[str, ...]
) -> None:
    start_ms, span_ms = span
    symbol, base, pip, spread, contract, divides = picks
    per_symbol_ticks, per_symbol, count = counts
    # The k-th order of a symbol is decided at decided_ms; orders 2p and 2p+1 open and close pair p.
    k = f"intDiv(number, {count})"
    pair = f"intDiv({k}, 2)"
    decided_ms = f"({start_ms} + 120000 + intDiv({k} * {span_ms - 240_000}, {per_symbol}))"
    opens_long = f"({pair} % 2 = 0)"
    side = f"if(({k} % 2 = 0) = {opens_long}, 'buy', 'sell')"
    lots = f"(0.1 * (1 + {pair} % 3))"
    is_rejected = f"({pair} % 40 = 39)"
    # the mid at decision time, from the tick path (per-symbol tick index at that time)
    ticks_per_ms = f"({per_symbol_ticks} / {span_ms})"
    mid = _mid(base, f"floor(({decided_ms} - {start_ms}) * {ticks_per_ms})")
    price = f"round({mid} + if({side} = 'buy', 1, -1) * ({spread} / 2 + {SLIPPAGE_PIPS}) * {pip}, 6)"
    client.command(f"""
        CREATE OR REPLACE TABLE synthetic_orders ENGINE = Memory AS
        SELECT number AS n, {symbol} AS symbol, {contract} AS contract, {divides} AS divides,
               {side} AS side, {lots} AS lots, {is_rejected} AS is_rejected,
               {decided_ms} AS decided_ms, {price} AS price,
               concat('sig-', toString({start_ms}), '-', toString(number)) AS signal_id,
               concat('ord-', toString({start_ms}), '-', toString(number)) AS client_order_id,
               fromUnixTimestamp64Milli(toInt64(intDiv({decided_ms}, 60000) * 60000 - 60000), 'UTC') AS bar_start
        FROM numbers({orders})""")
    at = "fromUnixTimestamp64Milli(toInt64(decided_ms + {}), 'UTC')"
    client.command(f"""
        INSERT INTO signals (signal_id, symbol, timeframe, bar_start_ms, direction, strength, confidence,
                             model_id, model_version, created_at_ms)
        SELECT signal_id, symbol, '1m', bar_start, if(side = 'buy', 'long', 'short'), 0.6, 0.7,
               '{MODEL_ID}', {MODEL_VERSION}, {at.format(0)} FROM synthetic_orders""")
    columns = """client_order_id, signal_id, symbol, side, quantity_lots, order_type, limit_price, model_id,
                 model_version, status, broker_order_id, filled_lots, average_fill_price, reason, created_at_ms,
                 updated_at_ms, venue"""
    client.command(f"""
        INSERT INTO orders ({columns})
        SELECT client_order_id, signal_id, symbol, side, lots, 'market', NULL, '{MODEL_ID}', {MODEL_VERSION},
               'submitted', '', 0, NULL, '', {at.format(1)}, {at.format(1)}, 'paper' FROM synthetic_orders""")
    client.command(f"""
        INSERT INTO orders ({columns})
        SELECT client_order_id, signal_id, symbol, side, lots, 'market', NULL, '{MODEL_ID}', {MODEL_VERSION},
               if(is_rejected, 'rejected', 'filled'), concat('b-', toString(n)), if(is_rejected, 0, lots),
               if(is_rejected, NULL, price), if(is_rejected, 'no money', ''), {at.format(1)}, {at.format(4)}, 'paper'
        FROM synthetic_orders""")
    # Each fill with what the execution engine books for it (execution.core.positions.Book.book): a pair's
    # opening fill opens its round trip from flat, its closing fill returns to flat and realizes
    # (close - open) x the position x the symbol's units per lot, in USD at its own price when USD is the base.
    signed = "if(c.side = 'buy', 1, -1) * toDecimal64(toString(c.lots), 8)"
    units = "toDecimal256(toString(c.contract), 18)"
    realized = f"(toDecimal256(toString(c.price), 18) - toDecimal256(toString(o.price), 18)) * -{signed} * {units}"
    client.command(f"""
        INSERT INTO fills (fill_id, client_order_id, signal_id, symbol, side, price, quantity_lots, commission,
                           filled_at_ms, model_id, model_version, broker_deal_id, position_before_lots,
                           position_after_lots, entry_value_after, realized_pnl_quote, realized_pnl_account,
                           round_trip_id, opens_round_trip_id)
        SELECT concat('fill-', c.client_order_id), c.client_order_id, c.signal_id, c.symbol, c.side, c.price, c.lots,
               {COMMISSION_PER_LOT} * c.lots, {at.replace("decided_ms", "c.decided_ms").format(4)}, '{MODEL_ID}',
               {MODEL_VERSION}, concat('d-', toString(c.n)), if(opens, 0, -{signed}), if(opens, {signed}, 0),
               if(opens, {signed} * toDecimal256(toString(c.price), 18), 0), if(opens, 0, {realized}),
               if(opens, 0, if(c.divides = 1, {realized} / toDecimal256(toString(c.price), 18), {realized})),
               concat('fill-', if(opens, c.client_order_id, o.client_order_id)),
               if(opens, concat('fill-', c.client_order_id), '')
        FROM (SELECT *, intDiv(n, {count}) % 2 = 0 AS opens FROM synthetic_orders) AS c
        LEFT JOIN synthetic_orders AS o ON o.n = c.n - {count}
        WHERE NOT c.is_rejected""")
    events = """event_id, event_type, client_order_id, signal_id, symbol, model_id, model_version, event_at_ms, side,
                quantity_lots, order_type, broker_order_id, reason, `check`, fill_id, fill_price, fill_lots,
                cumulative_lots, is_final, payload"""
    common = f"client_order_id, signal_id, symbol, '{MODEL_ID}', {MODEL_VERSION}"
    selects = [
        f"""SELECT concat('ev-s-', client_order_id), 'order_submitted.v1', {common}, {at.format(1)}, side, lots,
                   'market', '', '', '', '', NULL, NULL, NULL, NULL, '{{}}' FROM synthetic_orders""",
        f"""SELECT concat('ev-a-', client_order_id), 'order_accepted.v1', {common}, {at.format(2)}, '', NULL, '',
                   concat('b-', toString(n)), '', '', '', NULL, NULL, NULL, NULL, '{{}}' FROM synthetic_orders""",
        f"""SELECT concat('ev-r-', client_order_id), 'order_rejected.v1', {common}, {at.format(4)}, '', NULL, '', '',
                   'no money', '', '', NULL, NULL, NULL, NULL, '{{}}' FROM synthetic_orders WHERE is_rejected""",
        f"""SELECT concat('ev-f-', client_order_id), 'order_filled.v1', {common}, {at.format(4)}, '', NULL, '', '',
                   '', '', concat('fill-', client_order_id), price, lots, lots, true, '{{}}'
            FROM synthetic_orders WHERE NOT is_rejected""",
        f"""SELECT concat('ev-d-', client_order_id), 'order_denied.v1', concat('den-', client_order_id),
                   concat('den-', signal_id), symbol, '{MODEL_ID}', {MODEL_VERSION}, {at.format(0)}, '', NULL, '',
                   '', 'limit', arrayElement(['max_position_lots', 'max_orders_per_second', 'price_collar'], n % 3 + 1),
                   '', NULL, NULL, NULL, NULL, '{{}}'
            FROM synthetic_orders WHERE n % 50 = 0""",
    ]
    for select in selects:
        client.command(f"INSERT INTO order_events ({events}) {select}")
    client.command("DROP TABLE IF EXISTS synthetic_orders")


def write_bars(
    client: Client, timeframe: str, range_ms: tuple[int, int], alignment: SessionAlignment | None = None
) -> None:
    """Write the ``timeframe`` bars of every window that meets ``range_ms``: 1s and 1m from the ticks, the rest from 1m.

    Windows are the kernel's (:func:`tickwave.timeframes.window_of`): epoch boundaries, and for 4h and 1d the
    ``alignment``'s rollover when one is given. A window that reaches outside the range is rebuilt whole from
    what is stored, so writing a later range completes it (the latest copy replaces the key).
    """
    length = TIMEFRAMES_MS[timeframe]
    first = window_of(timeframe, length, range_ms[0], alignment)[0]
    last = window_of(timeframe, length, range_ms[1] - 1, alignment)[1]
    source, time, weight = ("ticks", "time_ms", "1") if length <= 60_000 else ("bars_1m", "start_ms", "tick_count")
    if alignment is not None and timeframe in SESSION_TIMEFRAMES:
        starts, cursor = [], first
        while cursor < last:
            starts.append(cursor)
            cursor = window_of(timeframe, length, cursor, alignment)[1]
        bounds = f"[{', '.join(map(str, starts))}, {last}]"
        start = f"arrayElement({bounds}, arrayFirstIndex(b -> b > toUnixTimestamp64Milli({time}), {bounds}) - 1)"
        end = f"arrayElement({bounds}, arrayFirstIndex(b -> b > toUnixTimestamp64Milli({time}), {bounds}))"
    else:
        start = f"intDiv(toUnixTimestamp64Milli({time}), {length}) * {length}"
        end = f"{start} + {length}"
    if source == "ticks":
        points = {side: f"{side}" for side in ("bid", "ask")} | {"mid": "(bid + ask) / 2"}
        ohlc = ", ".join(
            f"argMin({value}, time_ms), max({value}), min({value}), argMax({value}, time_ms)"
            for value in points.values()
        )
        tail = "count(), sum(volume), avg(ask - bid), max(ask - bid)"
    else:
        ohlc = ", ".join(
            f"argMin({side}_open, start_ms), max({side}_high), min({side}_low), argMax({side}_close, start_ms)"
            for side in ("bid", "ask", "mid")
        )
        tail = f"sum(tick_count), sum(volume), sum(spread_mean * {weight}) / sum({weight}), max(spread_max)"
    # Day by day: one GROUP BY over a year of ticks would hold every 1-second window in memory at once.
    step = DAY_MS if source == "ticks" else last - first
    for low in range(first, last, step):
        high = min(low + step, last)
        client.command(f"""
            INSERT INTO bars_{timeframe} (symbol, timeframe, start_ms, end_ms, bid_open, bid_high, bid_low, bid_close,
                                 ask_open, ask_high, ask_low, ask_close, mid_open, mid_high, mid_low, mid_close,
                                 tick_count, volume, spread_mean, spread_max)
            SELECT symbol, '{timeframe}', fromUnixTimestamp64Milli(toInt64(window_start), 'UTC') AS start,
                   fromUnixTimestamp64Milli(toInt64(any(window_end)), 'UTC'), {ohlc}, {tail}
            FROM (SELECT *, {start} AS window_start, {end} AS window_end FROM {source}
                  WHERE {time} >= fromUnixTimestamp64Milli(toInt64({low}), 'UTC')
                    AND {time} < fromUnixTimestamp64Milli(toInt64({high}), 'UTC'))
            GROUP BY symbol, window_start""")


def _write_operations(client: Client, start_ms: int) -> None:
    def at(offset_ms: int) -> str:
        return f"fromUnixTimestamp64Milli(toInt64({start_ms + offset_ms}), 'UTC')"

    client.command(f"""
        INSERT INTO risk_events (risk_event_id, kind, severity, trading_state, detail, occurred_at_ms, symbol, `check`)
        VALUES ('risk-{start_ms}-1', 'symbol_halted', 'critical', 'ACTIVE', 'USDJPY mid moved 2.3%', {at(3_600_000)},
                'USDJPY', 'flash_crash'),
               ('risk-{start_ms}-2', 'trading_state', 'critical', 'HALTED',
                'HALTED by ops@desk (drill) [command c1]; 37 ms after it was issued', {at(7_200_000)}, '', 'operator'),
               ('risk-{start_ms}-3', 'trading_state', 'info', 'ACTIVE',
                'ACTIVE by ops@desk (drill over) [command c2]; 12 ms after it was issued', {at(7_260_000)}, '',
                'operator')""")
    client.command(f"""
        INSERT INTO model_registry (model_id, model_version, stage, framework, artifact_uri, artifact_sha256,
                                    feature_schema_hash, metrics, params, trained_from_ms, trained_to_ms,
                                    created_at_ms, updated_at_ms, stage_changed_by, stage_reason)
        VALUES ('{MODEL_ID}', {MODEL_VERSION}, 'champion', 'xgboost', 'file:///synthetic', 'sha', 'synthetic',
                map('holdout_accuracy', 0.41, 'holdout_precision', 0.52, 'holdout_calibration_error', 0.05),
                map('horizon_bars', '5', 'dead_zone_bps', '1.0', 'timeframe', '1m', 'symbols', 'EURUSD,USDJPY'),
                {at(-DAY_MS)}, {at(0)}, {at(0)}, {at(0)}, 'synthetic', 'synthetic day')""")
