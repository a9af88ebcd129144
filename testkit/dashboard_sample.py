"""Demo-like data for every table a board reads, ending about now (tests and ``bench/dashboards.py``).

:func:`testkit.synthetic_day.write_synthetic_day` writes the trading tables (ticks, 1-minute
bars, features, predictions, signals, orders, fills, order events, risk events, the registry);
this adds what the boards also read: 1-second bars from the ticks, quarantined inputs,
data-quality results, service events (lifecycle and the supervisor's disk samples) and
Dagster runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clickhouse_connect.driver.client import Client

from testkit.synthetic_day import SyntheticDay, write_synthetic_day


def write_sample(client: Client, ticks: int, orders: int, now: datetime | None = None) -> SyntheticDay:
    """Write a synthetic day whose last hour is the hour before ``now`` (default: the current time)."""
    end = (now or datetime.now(tz=UTC)).replace(microsecond=0)
    start = end - timedelta(days=1)
    day = write_synthetic_day(client, start.replace(tzinfo=None), ticks, orders)
    start_ms, end_ms = day.day_start_ms, day.day_start_ms + 86_400_000
    window = (
        f"time_ms >= fromUnixTimestamp64Milli(toInt64({start_ms}), 'UTC') "
        f"AND time_ms < fromUnixTimestamp64Milli(toInt64({end_ms}), 'UTC')"
    )
    client.command(f"""
        INSERT INTO bars_1s (symbol, timeframe, start_ms, end_ms, bid_open, bid_high, bid_low, bid_close,
                             ask_open, ask_high, ask_low, ask_close, mid_open, mid_high, mid_low, mid_close,
                             tick_count, volume, spread_mean, spread_max, inserted_at)
        SELECT symbol, '1s', toDateTime64(toStartOfSecond(time_ms), 3, 'UTC') AS start, start + INTERVAL 1 SECOND,
               argMin(bid, time_ms), max(bid), min(bid), argMax(bid, time_ms),
               argMin(ask, time_ms), max(ask), min(ask), argMax(ask, time_ms),
               argMin((bid + ask) / 2, time_ms), max((bid + ask) / 2), min((bid + ask) / 2),
               argMax((bid + ask) / 2, time_ms), count(), sum(volume), avg(ask - bid), max(ask - bid),
               start + INTERVAL 1 SECOND + INTERVAL 150 MILLISECOND
        FROM ticks WHERE {window}
        GROUP BY symbol, start""")  # noqa: S608 - built from integers
    at = f"fromUnixTimestamp64Milli(toInt64({end_ms} - (number + 1) * 60000), 'UTC')"
    client.command(f"""
        INSERT INTO quarantine (dead_letter_id, source, reason, raw, raw_encoding, received_at_ms, symbol)
        SELECT concat('dl-', toString(number)), if(number % 3 = 0, 'ticks', 'mt5'),
               arrayElement(['invalid_price', 'future_timestamp', 'bad_json'], number % 3 + 1), '{{}}', 'utf-8',
               {at}, 'EURUSD' FROM numbers(120)""")  # noqa: S608 - built from integers
    client.command(f"""
        INSERT INTO dq_results (run_id, dataset, check_name, is_success, observed_value, element_count,
                                unexpected_count, details, checked_at_ms)
        SELECT concat('run-', toString(intDiv(number, 4))), arrayElement(['ticks', 'bars_1m'], number % 2 + 1),
               arrayElement(['not_null', 'spread_positive'], intDiv(number, 2) % 2 + 1), number % 7 != 3, NULL,
               1000, if(number % 7 = 3, 12, 0),
               if(number % 4 = 0, '{{"severity": "blocking"}}', '{{"severity": "warning"}}'), {at}
        FROM numbers(40)""")  # noqa: S608 - built from integers
    client.command(f"""
        INSERT INTO service_events (event_id, event_at_ms, service, event, pid, exit_code, restarts, detail, host)
        SELECT concat('se-', toString(number)), {at},
               arrayElement(['warehouse', 'kafka', 'streams', 'execution'], number % 4 + 1),
               arrayElement(['started', 'crashed', 'restarted'], number % 3 + 1), 1000 + number,
               if(number % 3 = 1, 1, NULL), intDiv(number, 3), 'sample', 'localhost'
        FROM numbers(24)""")  # noqa: S608 - built from integers
    client.command(f"""
        INSERT INTO service_events (event_id, event_at_ms, service, event, pid, exit_code, restarts, detail, host)
        SELECT concat('disk-', toString(number)), {at}, 'supervisor', 'disk_free', 999, NULL, 0,
               concat('{{"volume": "/", "holds": ["kafka", "warehouse", "journal"], "free_bytes": ',
                      toString(80000000000 - number * 100000000), ', "total_bytes": 250000000000, "free_pct": ',
                      toString(round((80000000000 - number * 100000000) / 2500000000, 2)), '}}'), 'localhost'
        FROM numbers(60)""")  # noqa: S608 - built from integers
    client.command(f"""
        INSERT INTO service_events (event_id, event_at_ms, service, event, pid, exit_code, restarts, detail, host)
        SELECT concat('memory-', toString(number)), {at},
               arrayElement(['warehouse', 'kafka', 'streams', 'execution'], number % 4 + 1), 'memory', 1000, NULL, 0,
               concat('{{"memory_mb": ', toString(300 + number % 4 * 100 + intDiv(number, 4) / 10), '}}'), 'localhost'
        FROM numbers(240)""")  # noqa: S608 - built from integers
    client.command(f"""
        INSERT INTO pipeline_runs (run_id, job_name, status, partition_key, asset_keys, started_at_ms, ended_at_ms,
                                   detail, updated_at_ms)
        SELECT concat('dagster-', toString(number)),
               arrayElement(['dbt_marts', 'quality_checks', 'daily_report'], number % 3 + 1),
               if(number % 5 = 4, 'FAILURE', 'SUCCESS'), if(number % 3 = 2, toString(yesterday()), ''),
               ['marts'], {at}, {at} + INTERVAL 40 SECOND, '', {at} + INTERVAL 40 SECOND
        FROM numbers(30)""")  # noqa: S608 - built from integers
    client.command(f"""
        INSERT INTO orders (client_order_id, signal_id, symbol, side, quantity_lots, order_type, limit_price, model_id,
                            model_version, status, broker_order_id, filled_lots, average_fill_price, reason,
                            created_at_ms, updated_at_ms)
        SELECT concat('working-', toString(number)), concat('working-sig-', toString(number)),
               if(number % 2 = 0, 'EURUSD', 'USDJPY'), 'buy', 0.3, 'limit', 1.0, 'xgb_direction', 1,
               if(number % 3 = 0, 'partially_filled', 'accepted'), concat('b-w-', toString(number)),
               if(number % 3 = 0, 0.1, 0), NULL, '', {at}, {at} + INTERVAL 1 SECOND
        FROM numbers(6)""")  # noqa: S608 - built from integers
    client.command(f"""
        INSERT INTO query_log (event_time_ms, query_id, user, client_address, http_method, query_kind, query,
                               duration_ms, read_rows, read_bytes, written_rows, written_bytes, result_rows,
                               result_bytes, exception_code, exception)
        SELECT {at}, concat('q-', toString(number)), 'tickwave', '127.0.0.1', 'POST', 'INSERT',
               'INSERT INTO ticks FORMAT Arrow', 8.5, 0, 0, 10000, 400000, 0, 0, 0, ''
        FROM numbers(120)""")  # noqa: S608 - built from integers
    return day
