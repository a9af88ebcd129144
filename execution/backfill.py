"""Book the fills the warehouse holds without a booking (written before the engine booked fills).

The marts, reports and boards add up what the engine booked for each fill; a fill row without a
booking (``round_trip_id`` empty) would be left out of trips, positions and P&L. The backfill books
those rows with the engine's own rule (:meth:`execution.core.positions.Book.book`, then
:func:`execution.core.valuation.with_booking`), never with SQL:

- per symbol, in ``(filled_at_ms, fill_id)`` order, the unbooked fills must come first (an engine
  that books replays its journal, so its first booked fill already counts the fills before it);
  they are booked from flat;
- where booked fills follow, the first one's position before must equal the backfilled position
  after, and the trip it belongs to the trip left open; otherwise the symbol is refused and named
  (nothing is written for it), since its history in the warehouse disagrees with the engine's;
- the realised P&L is converted to the account currency at the mids of the last 1-minute bars
  closed by the fill's time (the engine converts at its latest mids when it books);
- the booked rows are inserted again: ``fills`` is a ReplacingMergeTree on ``fill_id`` whose
  version is ``inserted_at`` (now), so the booked copy replaces the old one.

It is idempotent (a second run finds nothing to book) and runs when the audit loader starts
(:func:`execution.app.run_audit`, so an upgraded platform books its history without anyone asking)
and from ``tickwave warehouse backfill-bookings``.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from adapters.warehouse.client import connect
from adapters.warehouse.writer import BatchWriter
from execution.core.positions import Book, Booking
from execution.core.valuation import with_booking
from tickwave.config import Settings
from tickwave.contracts import Fill
from tickwave.instruments import Instrument, registry
from tickwave.money import to_decimal
from tickwave.warehouse.tables import BARS_1M, FILLS

logger = logging.getLogger(__name__)

# A fill converts at the last 1-minute bar closed by its time: looked for up to a week back (a weekend).
_RATE_LOOKBACK_MS = 7 * 86_400_000
_BASE_COLUMNS = (
    "fill_id",
    "client_order_id",
    "signal_id",
    "symbol",
    "side",
    "price",
    "quantity_lots",
    "commission",
    "filled_at_ms",
    "model_id",
    "model_version",
    "broker_deal_id",
)


@dataclass(frozen=True)
class SymbolBackfill:
    """What the backfill did for one symbol: the fills it booked, or why it refused."""

    symbol: str
    booked: int
    refused: str = ""


@dataclass
class BackfillResult:
    """Every symbol that had unbooked fills."""

    symbols: list[SymbolBackfill] = field(default_factory=list)

    @property
    def booked(self) -> int:
        """Return the fills booked in all."""
        return sum(outcome.booked for outcome in self.symbols)

    @property
    def refused(self) -> list[SymbolBackfill]:
        """Return the symbols left unbooked because their history disagrees with the engine's bookings."""
        return [outcome for outcome in self.symbols if outcome.refused]


def _epoch_ms(value: datetime) -> int:
    return round(value.timestamp() * 1000)


def _fill_of(row: Mapping[str, Any]) -> Fill:
    return Fill(**{**row, "filled_at_ms": _epoch_ms(row["filled_at_ms"])})


class _Mids:
    """The mid close of each symbol's 1-minute bars, by bar end, to read the rates at a fill's time."""

    def __init__(self, client: Client, symbols: Iterable[str], from_ms: int, until_ms: int) -> None:
        self._ends: dict[str, list[int]] = {}
        self._mids: dict[str, list[float]] = {}
        result = client.query(
            f"SELECT symbol, toUnixTimestamp64Milli(end_ms), mid_close FROM {BARS_1M.name} FINAL "  # noqa: S608
            "WHERE symbol IN %(symbols)s AND mid_close > 0 AND end_ms <= fromUnixTimestamp64Milli(%(until)s, 'UTC') "
            "AND end_ms >= fromUnixTimestamp64Milli(%(from)s, 'UTC') ORDER BY symbol, end_ms",
            parameters={"symbols": sorted(symbols), "from": from_ms - _RATE_LOOKBACK_MS, "until": until_ms},
        )
        for symbol, end_ms, mid in result.result_rows:
            self._ends.setdefault(symbol, []).append(int(end_ms))
            self._mids.setdefault(symbol, []).append(float(mid))

    def at(self, at_ms: int) -> dict[str, float]:
        """Return each symbol's mid of the last 1-minute bar closed by ``at_ms`` (no look-ahead)."""
        mids: dict[str, float] = {}
        for symbol, ends in self._ends.items():
            index = bisect.bisect_right(ends, at_ms)
            if index:
                mids[symbol] = self._mids[symbol][index - 1]
        return mids


def _lots_text(lots: Decimal | float | None) -> str:
    return "no position" if lots is None else f"{to_decimal(lots).normalize():f}"


def _refusal(book: Book, first_booked: Mapping[str, Any] | None, unbooked_after: int) -> str:
    """Return why the booked prefix does not join the engine's bookings ("" when it does)."""
    if unbooked_after:
        return f"{unbooked_after} unbooked fill(s) come after a booked one; the engine's bookings do not count them"
    if first_booked is None:
        return ""
    before = first_booked["position_before_lots"]
    if before is None or to_decimal(before) != book.lots:
        return (
            f"the unbooked fills end at {_lots_text(book.lots)} lots but the first booked fill "
            f"{first_booked['fill_id']} starts from {_lots_text(before)}"
        )
    if book.lots and first_booked["round_trip_id"] != book.trip_id:
        return (
            f"the unbooked fills leave trip {book.trip_id} open but the first booked fill "
            f"{first_booked['fill_id']} belongs to {first_booked['round_trip_id']}"
        )
    return ""


def book_symbol(rows: Sequence[Mapping[str, Any]]) -> tuple[Book, list[tuple[Fill, Booking]], str]:
    """Book one symbol's unbooked fills (rows in ``(filled_at_ms, fill_id)`` order) from flat.

    Returns:
        The book after them, each unbooked fill with its booking, and why the symbol is refused
        ("" when its booked fills continue from there).
    """
    book, booked = Book(), list[tuple[Fill, Booking]]()
    first_booked: Mapping[str, Any] | None = None
    unbooked_after = 0
    for row in rows:
        if row["round_trip_id"]:
            first_booked = first_booked or row
            continue
        if first_booked is not None:
            unbooked_after += 1
            continue
        fill = _fill_of({name: row[name] for name in _BASE_COLUMNS})
        quantity = to_decimal(fill.quantity_lots)
        booking = book.book(quantity if fill.side == "buy" else -quantity, to_decimal(fill.price), fill.fill_id)
        booked.append((fill, booking))
    return book, booked, _refusal(book, first_booked, unbooked_after)


def _records(
    client: Client,
    booked: Sequence[tuple[Fill, Booking]],
    spec: Instrument,
    instruments: Mapping[str, Instrument],
    account_currency: str,
) -> list[Fill]:
    if spec.quote == account_currency:  # no conversion: no rates to read
        return [with_booking(fill, booking, spec, account_currency, instruments, {}) for fill, booking in booked]
    mids = _Mids(client, instruments, booked[0][0].filled_at_ms, booked[-1][0].filled_at_ms)
    return [
        with_booking(fill, booking, spec, account_currency, instruments, mids.at(fill.filled_at_ms))
        for fill, booking in booked
    ]


def backfill_bookings(
    client: Client,
    instruments: Mapping[str, Instrument],
    account_currency: str,
    on_symbol: Callable[[SymbolBackfill], None] | None = None,
) -> BackfillResult:
    """Book every unbooked fill in ``fills`` with the engine's rule and write the booked rows.

    Args:
        client: a read-write client on the warehouse's database.
        instruments: the instrument registry (contract sizes, quote currencies, conversion pairs).
        account_currency: the currency realised P&L is converted to.
        on_symbol: called after each symbol (progress).

    Returns:
        What was booked, and the symbols refused (named in an ERROR log line too).
    """
    result = BackfillResult()
    pending = client.query(f"SELECT DISTINCT symbol FROM {FILLS.name} FINAL WHERE round_trip_id = ''")  # noqa: S608
    symbols = sorted(str(symbol) for (symbol,) in pending.result_rows)
    if not symbols:
        return result
    columns = ", ".join((*_BASE_COLUMNS, "position_before_lots", "round_trip_id"))
    for symbol in symbols:
        query = client.query(
            f"SELECT {columns} FROM {FILLS.name} FINAL WHERE symbol = %(symbol)s "  # noqa: S608
            "ORDER BY filled_at_ms, fill_id",
            parameters={"symbol": symbol},
        )
        rows = [dict(zip(query.column_names, values, strict=True)) for values in query.result_rows]
        _, booked, refused = book_symbol(rows)
        spec = instruments.get(symbol)
        if spec is None:
            refused = refused or f"{symbol} is not in the instrument registry (no contract size)"
        if refused or spec is None:
            logger.error("backfill: %s left unbooked (%d fills): %s", symbol, len(booked), refused)
            outcome = SymbolBackfill(symbol, 0, refused)
        else:
            records = _records(client, booked, spec, instruments, account_currency)
            with BatchWriter(client, FILLS) as writer:
                writer.write_messages(records)
            logger.info("backfill: %s booked %d fills written before the engine booked them", symbol, len(records))
            outcome = SymbolBackfill(symbol, len(records))
        result.symbols.append(outcome)
        if on_symbol is not None:
            on_symbol(outcome)
    return result


def backfill_warehouse(
    settings: Settings, database: str | None = None, on_symbol: Callable[[SymbolBackfill], None] | None = None
) -> BackfillResult:
    """Run :func:`backfill_bookings` on the configured warehouse with the configured instruments and account."""
    client = connect(settings, database=database)
    try:
        return backfill_bookings(client, registry(settings.symbols), settings.execution.account_currency, on_symbol)
    finally:
        client.close()
