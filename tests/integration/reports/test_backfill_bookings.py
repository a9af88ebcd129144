"""Fills stored before the engine booked them count in trips, positions and P&L once backfilled.

The fills are the real engine's records (``run_engine`` of the tie-out: a flip through zero, the
0.1 + 0.2 - 0.3 case, a JPY-quoted symbol converted to the account currency). The first fills of each
symbol are stored without their booking, as an engine that predates it wrote them; the rest keep
theirs. After the backfill, every row carries exactly what the engine booked and the marts built by
dbt on the real warehouse equal the engine's own trips, positions and realized P&L.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import msgspec

from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from adapters.warehouse.writer import BatchWriter
from execution.backfill import backfill_warehouse
from tests.integration.reports.conftest import load
from tests.integration.reports.test_pnl_tieout import FIRST_DAY, FIXED, MIDS, _bar, dbt_build, rows_of_trips, run_engine
from tests.unit.execution.helpers import ListPublisher
from tickwave.config import Settings
from tickwave.contracts import Bar, Fill, Side
from tickwave.warehouse.tables import BARS_1M, FILLS

BOOKING = (
    "position_before_lots",
    "position_after_lots",
    "entry_value_after",
    "realized_pnl_quote",
    "realized_pnl_account",
    "round_trip_id",
    "opens_round_trip_id",
)
# Beyond the tie-out's fixed cases: EURUSD carries on from its first day over two more; USDJPY flips
# (converted at the 1-minute bar's mid) with every fill unbooked. GBPUSD and AUDUSD have histories the
# engine's bookings do not continue: an unbooked fill after a booked one; a fill missing before them.
SEQUENCES = [
    *FIXED,
    ("USDJPY", [(20, 0, 0), (-50, 30, 10), (40, -25, 10)], False),
    ("EURUSD", [(-30, 4, 5), (60, -8, 5)], False),
    ("GBPUSD", [(7, 0, 0), (-4, 11, 3), (-3, 2, 0)], False),
    ("EURUSD", [(-30, 2, 0), (15, 3, 0)], True),
    ("AUDUSD", [(10, 0, 0), (20, 3, 0), (-30, 5, 0)], False),
]
REFUSED = ("GBPUSD", "AUDUSD")
LATE_MS = int((FIRST_DAY + timedelta(days=30)).timestamp() * 1000)


def _unbooked(fill: Fill) -> Fill:
    return msgspec.structs.replace(fill, **dict.fromkeys(BOOKING, msgspec.UNSET))


def _as_stored_before(records: list[Fill]) -> list[Fill]:
    """Strip the booking from each symbol's first fills (USDJPY: all), as an older engine stored them.

    GBPUSD: its second fill unbooked after a booked first; AUDUSD: its second fill missing.
    """
    by_symbol: dict[str, list[Fill]] = {}
    for fill in records:
        by_symbol.setdefault(fill.symbol, []).append(fill)
    stored = []
    for symbol, fills in by_symbol.items():
        if symbol == "GBPUSD":
            stored += [fills[0], _unbooked(fills[1]), fills[2]]
        elif symbol == "AUDUSD":
            stored += [_unbooked(fills[0]), fills[2]]
        else:
            prefix = len(fills) if symbol == "USDJPY" else (len(fills) + 1) // 2
            stored += [_unbooked(fill) if index < prefix else fill for index, fill in enumerate(fills)]
    return stored


def _late_fill(fill_id: str, side: Side, at_ms: int, price: float) -> Fill:
    return Fill(
        fill_id=fill_id,
        client_order_id=f"o-{fill_id}",
        signal_id=f"s-{fill_id}",
        symbol="NZDUSD",
        side=side,
        price=price,
        quantity_lots=0.1,
        commission=0.0,
        filled_at_ms=at_ms,
        model_id="m",
        model_version=1,
    )


def _rate_bars() -> list[Bar]:
    """Each day's 1-minute bars closed before its fills, at the mids the engine converted at."""
    return [
        _bar("USDJPY", int((FIRST_DAY + timedelta(days=day, minutes=59)).timestamp() * 1000), MIDS["USDJPY"])
        for day in range(len(SEQUENCES))
    ]


def _booked_rows(settings: Settings, database: str) -> dict[str, tuple[object, ...]]:
    """Each fill's booking as stored (exact decimals: equal whatever their trailing zeros)."""
    client = connect(settings, database=database)
    try:
        rows = client.query(f"SELECT fill_id, {', '.join(BOOKING)} FROM {FILLS.name} FINAL").result_rows
    finally:
        client.close()
    return {fill_id: tuple(values) for fill_id, *values in rows}


def test_backfill_when_fills_were_stored_unbooked_then_rows_and_marts_equal_the_engines_booking(
    warehouse_settings: Settings, fresh_database: str
) -> None:
    records, bars, expected = run_engine(SEQUENCES)
    stored = _as_stored_before(records)
    migrate(warehouse_settings, database=fresh_database)
    client = connect(warehouse_settings, database=fresh_database)
    try:
        with BatchWriter(client, FILLS) as writer:
            writer.write_messages(stored)
        with BatchWriter(client, BARS_1M) as writer:
            writer.write_messages([*bars, *_rate_bars()])
    finally:
        client.close()

    result = backfill_warehouse(warehouse_settings, fresh_database)
    again = backfill_warehouse(warehouse_settings, fresh_database)

    booked = {outcome.symbol: outcome.booked for outcome in result.symbols if not outcome.refused}
    assert booked == {"EURUSD": 4, "XAUUSD": 2, "USDJPY": 3}
    gbpusd, audusd = ([fill for fill in records if fill.symbol == symbol] for symbol in REFUSED)
    assert {outcome.symbol: outcome.refused for outcome in result.refused} == {
        "GBPUSD": "1 unbooked fill(s) come after a booked one; the engine's bookings do not count them",
        "AUDUSD": f"the unbooked fills end at 0.1 lots but the first booked fill {audusd[2].fill_id} starts from 0.3",
    }
    assert {outcome.symbol for outcome in again.symbols} == set(REFUSED)  # idempotent: nothing else to book
    # Every row carries exactly what the engine booked (the JPY flip converted at the bar's mid); nothing
    # was written for a refused symbol.
    rows = _booked_rows(warehouse_settings, fresh_database)
    kept = [fill for fill in records if fill.symbol not in REFUSED]
    assert {fill.fill_id: rows[fill.fill_id] for fill in kept} == {
        fill.fill_id: tuple(getattr(fill, name) for name in BOOKING) for fill in kept
    }
    assert rows[gbpusd[1].fill_id][-2] == rows[audusd[0].fill_id][-2] == ""
    dbt_build(warehouse_settings, fresh_database)
    client = connect(warehouse_settings, database=fresh_database)
    try:
        positions = {
            (s, d): Decimal(p)
            for s, d, p in client.query("SELECT symbol, day, toString(position_lots) FROM positions_daily").result_rows
        }
        realized = {
            (s, d): Decimal(r)
            for s, d, r in client.query(  # days a position is carried into: no fills
                "SELECT symbol, day, toString(realized_pnl_account) FROM pnl_daily"
                " WHERE realized_pnl_account IS NOT NULL"
            ).result_rows
        }
        trips = {t: (s, d, Decimal(q), Decimal(a)) for t, s, d, q, a, _ in rows_of_trips(client)}
    finally:
        client.close()
    traded = {key for key in expected.positions if key[0] not in REFUSED}
    assert {key: positions[key] for key in traded} == {key: expected.positions[key] for key in traded}
    assert {key: realized[key] for key in traded} == {key: expected.realized[key] for key in traded}
    assert {trip: figures for trip, figures in trips.items() if figures[0] not in REFUSED} == {
        trip: figures
        for trip, figures in expected.trips.items()
        if figures[1] != date.min and figures[0] not in REFUSED
    }
    assert positions[("EURUSD", FIRST_DAY.date())] == 0  # 0.1 + 0.2 - 0.3: flat exactly
    assert all(symbol != "AUDUSD" for symbol, *_ in trips.values())  # its trip's opening fill is not booked

    # Later, the audit loader's sink brings records an older engine published (a topic not drained at
    # the upgrade): it books them once it has stored them.
    late = ListPublisher()
    late.messages += [_late_fill("late-0", "buy", LATE_MS, 0.6), _late_fill("late-1", "sell", LATE_MS + 1_000, 0.61)]
    load(warehouse_settings, fresh_database, late, [])
    rows = _booked_rows(warehouse_settings, fresh_database)
    assert [rows[f"late-{index}"][4] for index in range(2)] == [0, Decimal(100)]  # 0.1 x 0.01 x 100,000
