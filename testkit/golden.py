"""Golden records of the execution engine: what it decides, books and journals, kept to be reproduced exactly.

Whatever implements the engine's rules later must reproduce, byte for byte, what the engine does today:

- on the benchmark's timeline (``bench.backtest.synthetic_holdout``, seeded: 1-minute bars of EURUSD, USDJPY
  and XAUUSD, random probabilities), replayed both ways (:func:`execution.backtest.replay_session`: fast, and
  through the live process's files): the orders, the fills with each one's realised P&L (exact and at the
  currency's minor unit), each fill's booking, the denials per check, every journaled event, the P&L per
  currency and in the account currency, the positions, the round trips, the audit chain's head, the state the
  journal rebuilds, and the journal file's and the paper ledger's bytes;
- on a handful of scripted sessions (:data:`SCENARIOS`: sizing and the gate's refusals; fills and their P&L in
  six currencies across a restart; protective stops; the loss breaker, the flash crash, operator commands and
  broker rejects), run through the service with its file journal under a manual clock: the same figures, and
  the journal itself, kept verbatim (``journals/<name>.jsonl``). A journal written by this code must replay
  to the same state and chain head, and be written again to the same bytes (:func:`replayed_journal`).

A long list is kept as a digest (:func:`digest`): its length, its SHA-256, a SHA-256 per 1,000 lines (a
difference is found by its place) and its first lines verbatim. Nothing here depends on the wall clock, the
host or the order of dictionaries: two recordings give the same bytes, compiled core or Python source.

``python -m testkit.golden`` compares today's engine with the records in ``tests/fixtures/golden`` and
prints the first difference; ``--write`` records them again. Re-recording is a deliberate act: its diff is
reviewed like a change of the rules, because that is what it is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal

import tickwave_core

from bench.backtest import replay_settings, synthetic_holdout
from execution.app import build_service, instance_dir
from execution.backtest import ReplayResult, fill_pnls, instruments_of, replay_session
from execution.backtest import replay_settings as replayed_settings
from execution.brokers.paper import LEDGER_NAME
from execution.core.broker import Broker, BrokerEvent, BrokerOrder, rejected
from execution.core.engine import Engine, replay
from execution.core.limits import RiskLimits
from execution.core.paper import PaperBroker
from execution.core.sizing import SizingPolicy
from execution.core.state import Order
from execution.journal import JOURNAL_NAME, Journal
from execution.service import ExecutionService
from models.engine_backtest import holdout_signals, holdout_ticks
from tickwave.audit_chain import GENESIS_HASH, ChainLink
from tickwave.clock import ManualClock
from tickwave.config import Settings, load_settings
from tickwave.contracts import (
    AnyMessage,
    ControlCommand,
    Fill,
    Message,
    OrderDenied,
    OrderIntent,
    OrderSubmitted,
    RiskEvent,
    Signal,
    Tick,
    encode,
)
from tickwave.instruments import registry
from tickwave.modeling import SignalRules
from tickwave.money import display_amount, to_decimal

GOLDEN_DIR: Final = Path("tests/fixtures/golden")  # from the repository's root
REPLAY_FILE: Final = "replay.json"
SCENARIOS_FILE: Final = "scenarios.json"
JOURNALS: Final = "journals"
ROWS: Final = 20_000  # ~13,000 orders: every path of the replay many times, a few seconds
SEED: Final = 0
CHUNK_LINES: Final = 1_000
FIRST_LINES: Final = 8
INSTANCE_ID: Final = "golden"  # the scenarios' execution instance: their journals' chain id
WEDNESDAY_NOON_MS: Final = 1_700_049_600_000  # 2023-11-15 12:00 UTC: the fx market is open
FRIDAY_LATE_MS: Final = 1_700_256_600_000  # 2023-11-17 21:30 UTC: half an hour before the fx market closes


class GoldenMismatch(AssertionError):
    """The engine did not reproduce a record (or its two replays disagree): the first difference is named."""


# ---------------------------------------------------------------------------------------------------------------------
# Records: exact text, digests of long lists


def sha256_text(text: str | bytes) -> str:
    """Return the SHA-256 of ``text`` (UTF-8) in hex."""
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def digest(lines: Sequence[str], first: int = FIRST_LINES) -> dict[str, Any]:
    """Return a list's digest: its length, SHA-256 (lines joined by newlines), one per 1,000 lines, its first lines."""
    chunks = [sha256_text("\n".join(lines[start : start + CHUNK_LINES])) for start in range(0, len(lines), CHUNK_LINES)]
    return {
        "count": len(lines),
        "sha256": sha256_text("\n".join(lines)),
        "chunks": chunks,
        "first": list(lines[:first]),
    }


def file_record(path: Path) -> dict[str, Any]:
    """Return a file's length and SHA-256, and the digest of its lines (a missing file: length 0)."""
    data = path.read_bytes() if path.exists() else b""
    return {"bytes": len(data), "sha256": sha256_text(data), "lines": digest(data.decode().splitlines())}


def exact(value: float | int | Decimal) -> str:
    """Return an amount's exact text (a float through its shortest round-trip text, as the engine converts it)."""
    return str(to_decimal(value))


def _amounts(amounts: Mapping[str, Decimal]) -> dict[str, str]:
    return {key: str(amount) for key, amount in sorted(amounts.items())}


def order_lines(events: Iterable[AnyMessage]) -> list[str]:
    """One line per order sent: id, signal, symbol, side, lots, type, venue and time."""
    return [
        f"{event.client_order_id} {event.signal_id} {event.symbol} {event.side} {exact(event.quantity_lots)} "
        f"{event.order_type} {event.venue} {event.event_at_ms}"
        for event in events
        if type(event) is OrderSubmitted
    ]


def fill_lines(events: Sequence[AnyMessage], settings: Settings) -> list[str]:
    """One line per fill: ids, side, lots, price, its realised P&L (first-in first-out) exact and at the minor unit."""
    return [
        f"{pnl.client_order_id} {pnl.fill_id} {pnl.symbol} {pnl.side} {pnl.lots} {pnl.price} "
        f"{pnl.realized} {display_amount(pnl.realized, pnl.currency)} {pnl.currency}"
        for pnl in fill_pnls(events, instruments_of(settings))
    ]


def booking_lines(events: Iterable[AnyMessage]) -> list[str]:
    """One line per ``Fill`` record: the booking the engine put on it (positions, entry value, P&L, round trips)."""
    return [
        f"{event.fill_id} {event.position_before_lots} {event.position_after_lots} {event.entry_value_after} "
        f"{event.realized_pnl_quote} {event.realized_pnl_account} {event.round_trip_id} "
        f"{event.opens_round_trip_id or '-'}"
        for event in events
        if type(event) is Fill
    ]


def denial_lines(events: Iterable[AnyMessage]) -> list[str]:
    """One line per denial: the check and its reason."""
    return [f"{event.signal_id} {event.check}: {event.reason}" for event in events if type(event) is OrderDenied]


def risk_lines(events: Iterable[AnyMessage]) -> list[str]:
    """One line per risk event: kind, severity, trading state, symbol, check, time and detail."""
    return [
        f"{event.kind} {event.severity} {event.trading_state} {event.symbol or '-'} {event.check or '-'} "
        f"{event.occurred_at_ms} {event.detail}"
        for event in events
        if type(event) is RiskEvent
    ]


def event_lines(events: Iterable[AnyMessage]) -> list[str]:
    """Every event's contract JSON (the bytes the journal writes after each line's checksum), in journal order."""
    return [encode(event).decode() for event in events]


def state_record(engine: Engine) -> dict[str, Any]:
    """Return what the journal rebuilds of the engine's state, as exact text (orders and bookings as digests)."""
    state = engine.state
    view = state.view
    orders = [_order_line(order) for _, order in sorted(state.orders.items())]
    bookings = [
        f"{fill_id} {b.position_before} {b.position_after} {b.entry_value_after} {b.realized} "
        f"{b.round_trip_id} {b.opens_round_trip_id or '-'}"
        for fill_id, b in sorted(state.bookings.items())
    ]
    return {
        "trading_state": view.trading_state,
        "halted_symbols": sorted(view.halted_symbols),
        "positions": _amounts(view.positions),
        "pending": _amounts(view.pending),
        "consecutive_rejects": view.consecutive_rejects,
        "books": {
            symbol: {"trip": book.trip_id, "entries": [[str(lots), str(price)] for lots, price in book.entries]}
            for symbol, book in sorted(state.books.items())
        },
        "realized_by_day": {day: _amounts(amounts) for day, amounts in sorted(state.realized_by_day.items())},
        "day_marks": _amounts(state.day_marks),
        "marked_day": state.marked_day,
        "orders": digest(orders),
        "bookings": digest(bookings),
        "decided_signals": digest(list(state.decided_signals)),  # in journal order
        "applied_commands": sorted(state.applied_commands),
        "defects": list(state.defects),
    }


def _order_line(order: Order) -> str:
    return (
        f"{order.client_order_id} {order.symbol} {order.side} {exact(order.quantity_lots)} {order.status} "
        f"{exact(order.filled_lots)} {order.broker_order_id or '-'} {','.join(order.fill_ids) or '-'}"
    )


def engine_for(settings: Settings, start_ms: int = 0) -> Engine:
    """Return a fresh engine as :func:`execution.app.build_service` builds it for ``settings`` (nothing replayed)."""
    execution = settings.execution
    limits = RiskLimits.from_settings(execution, registry(settings.symbols), settings.market)
    return Engine(limits, SizingPolicy.from_settings(execution), ManualClock(start_ms), execution.instance_id)


# ---------------------------------------------------------------------------------------------------------------------
# The benchmark's timeline, replayed both ways


def decisions_record(result: ReplayResult, settings: Settings) -> dict[str, Any]:
    """Return what a replay decided and booked: orders, fills, bookings, denials, events, P&L, positions, chain."""
    events = result.events
    return {
        "orders": digest(order_lines(events)),
        "fills": digest(fill_lines(events, settings)),
        "bookings": digest(booking_lines(events)),
        "denials": result.denial_counts(),
        "risk_events": digest(risk_lines(events)),
        "events": digest(event_lines(events)),
        "pnl": {
            "realized_by_currency": _amounts(result.realized_by_currency),
            "unrealized_by_currency": _amounts(result.unrealized_by_currency),
            "realized": _account(result.realized_pnl, result.account_currency),
            "total": _account(result.total_pnl, result.account_currency),
        },
        "positions": _amounts(result.positions),
        "round_trips": result.trades,
        "chain_head": result.chain_head,
    }


def _account(amount: Decimal | None, currency: str) -> dict[str, str | None]:
    # An account-currency figure, exact and at the currency's minor unit (None: a rate was missing).
    if amount is None:
        return {"exact": None, "shown": None}
    return {"exact": str(amount), "shown": display_amount(amount, currency)}


def core_events_difference(events: Sequence[AnyMessage], chain_head: str | None) -> str | None:
    """Return how the core's events (``events.rs``) differ from msgspec's bytes and the replay's chain, or None.

    Each event is written again by the core and compared byte for byte; the core links the order events as
    the replay loop will (no Python per event) and must reach the replay's chain head.
    """
    for at, event in enumerate(events):
        if tickwave_core.encode_event(event) != encode(event):
            return f"the core writes event {at} otherwise: {encode(event)!r}"
    if chain_head is not None:
        head, _ = tickwave_core.chain_events(GENESIS_HASH, 0, events)
        if head != chain_head:
            return f"the core links the events to {head}, the replay to {chain_head}"
    return None


def record_replay(work_dir: Path, rows: int = ROWS) -> dict[str, Any]:
    """Replay the benchmark's timeline both ways in ``work_dir``; return the record (they must agree).

    Raises:
        GoldenMismatch: when the fast replay and the replay through the live files differ, or when the core
            writes or links the replay's events otherwise (:func:`core_events_difference`).
    """
    frame, probabilities = synthetic_holdout(rows, SEED)
    settings = replay_settings(work_dir / "settings")
    ticks = holdout_ticks(frame, "1m")
    signals = holdout_signals(frame, probabilities, SignalRules(), "1m", "golden", 1)
    fast = replay_session(settings, ticks, signals, fast=True)
    live_dir = work_dir / "live"
    live = replay_session(settings, ticks, signals, fast=False, state_dir=live_dir)
    decided = decisions_record(fast, settings)
    difference = first_difference(decided, decisions_record(live, settings), "live path")
    if difference is not None:
        raise GoldenMismatch(f"the fast replay and the live path differ: {difference}")
    core_difference = core_events_difference(fast.events, fast.chain_head)
    if core_difference is not None:
        raise GoldenMismatch(core_difference)
    engine = engine_for(settings)
    replay(engine, fast.events)
    files = instance_dir(replayed_settings(settings, live_dir))
    return {
        "timeline": {"rows": rows, "seed": SEED, "ticks": len(ticks), "signals": len(signals)},
        "decisions": decided,
        "state": state_record(engine),
        "journal_file": file_record(files / JOURNAL_NAME),
        "ledger_file": file_record(files / LEDGER_NAME),
    }


# ---------------------------------------------------------------------------------------------------------------------
# Scripted sessions through the service and its file journal


class _Dropped:
    """The audit bus of a scripted session: nothing is sent (the journal is the record)."""

    def publish(self, message: Message, key: str, position: int, link: ChainLink | None = None) -> None:
        """Drop the message."""

    def resume_position(self) -> int:
        """Return 0: everything journaled is offered again (and dropped)."""
        return 0

    def flush(self, timeout_s: float) -> int:
        """Return 0: nothing is pending."""
        return 0


class _Refusing:
    """A paper broker whose venue refuses every order in some symbols (a broker reject, as MT5 gives one)."""

    def __init__(self, paper: PaperBroker, symbols: frozenset[str], clock: ManualClock) -> None:
        self.paper, self.symbols, self.clock = paper, symbols, clock
        self.name, self.lookback_ms = paper.name, paper.lookback_ms

    def venue(self) -> str:
        """Return the paper venue."""
        return self.paper.venue()

    def submit(self, intent: OrderIntent) -> list[BrokerEvent]:
        """Refuse the order in a refused symbol, else place it on paper."""
        if intent.symbol in self.symbols:
            return [rejected(intent, f"the venue refuses {intent.symbol}", self.clock.now_ms(), 10_018)]
        return self.paper.submit(intent)

    def cancel(self, order: Order, reason: str) -> list[BrokerEvent]:
        """Cancel on paper."""
        return self.paper.cancel(order, reason)

    def poll(self) -> list[BrokerEvent]:
        """Poll the paper broker."""
        return self.paper.poll()

    def on_tick(self, tick: Tick) -> None:
        """Quote the paper broker."""
        self.paper.on_tick(tick)

    def orders(self, since_ms: int | None = None) -> Mapping[str, BrokerOrder]:
        """Return the paper orders."""
        return self.paper.orders(since_ms)

    def positions(self) -> Mapping[str, Decimal]:
        """Return the paper positions."""
        return self.paper.positions()

    def retire(self, before_ms: int) -> int:
        """Retire on paper."""
        return self.paper.retire(before_ms)

    def close(self) -> None:
        """Close the paper broker."""
        self.paper.close()


@dataclass(frozen=True)
class Scenario:
    """A scripted session: the settings it runs under and its script (ticks, signals, commands at given times)."""

    name: str
    script: Callable[[Session], None]
    risk: dict[str, Any] = field(default_factory=dict)
    paper_broker: dict[str, Any] = field(default_factory=dict)
    market_hours: Literal["fx", "always"] = "fx"
    refused_symbols: frozenset[str] = frozenset()
    start_ms: int = WEDNESDAY_NOON_MS

    def settings(self, state_dir: Path) -> Settings:
        """Return the live settings with this scenario's, the paper broker and an unsynced journal in ``state_dir``."""
        execution = {
            "instance_id": INSTANCE_ID,
            "journal_fsync": False,
            "risk": self.risk,
            "paper_broker": self.paper_broker,
        }
        return load_settings(state_dir=state_dir, market={"hours": self.market_hours}, execution=execution)


class Session:
    """One scripted session: the execution service as ``python -m execution`` builds it, driven in process.

    Each step moves the clock to its time (after filling the paper orders due before it, at their due time, as
    the replay does), acts, then polls the broker, as the live loop does after each batch.
    """

    def __init__(self, scenario: Scenario, state_dir: Path) -> None:
        self.scenario, self.state_dir, self.start_ms = scenario, state_dir, scenario.start_ms
        self.settings = scenario.settings(state_dir)
        self.clock = ManualClock(self.start_ms)
        self.numbers = iter(range(1_000_000))
        self.service, self.paper = self._open()

    def _open(self) -> tuple[ExecutionService, PaperBroker]:
        service = build_service(self.settings, _Dropped(), self.clock)
        paper = service.broker
        assert isinstance(paper, PaperBroker)  # the scenarios' settings choose it
        if self.scenario.refused_symbols:
            refusing: Broker = _Refusing(paper, self.scenario.refused_symbols, self.clock)
            service.broker = refusing
        service.start()
        return service, paper

    def restart(self, at_ms: int) -> None:
        """Close the process and start it again on its files (it replays its journal, then reconciles)."""
        self._advance(at_ms)
        self.service.close()
        self.service, self.paper = self._open()

    def _advance(self, at_ms: int) -> None:
        now_ms = self.start_ms + at_ms
        while (due_ms := self.paper.next_due_ms()) is not None and due_ms < now_ms:
            self.clock.set(max(self.clock.now_ms(), due_ms))
            self.service.poll_broker()
        self.clock.set(max(self.clock.now_ms(), now_ms))

    def tick(self, at_ms: int, symbol: str, bid: float, ask: float) -> None:
        """A quote at ``at_ms`` (from the start), through the live validation (``handle_tick_bytes``)."""
        self._advance(at_ms)
        tick = Tick(symbol=symbol, time_ms=self.clock.now_ms(), seq=next(self.numbers), bid=bid, ask=ask)
        self.service.handle_tick_bytes(encode(tick))
        self.service.poll_broker()

    def signal(
        self,
        at_ms: int,
        symbol: str,
        direction: Literal["long", "short", "flat"],
        strength: float = 1.0,
        *,
        age_ms: int = 0,
        timeframe: str = "1m",
    ) -> None:
        """A signal created ``age_ms`` before ``at_ms``, decided at ``at_ms``."""
        self._advance(at_ms)
        created_ms = self.clock.now_ms() - age_ms
        number = next(self.numbers)
        signal = Signal(
            signal_id=Signal.make_id("golden", 1, symbol, timeframe, number),
            symbol=symbol,
            timeframe=timeframe,
            bar_start_ms=created_ms - 60_000,
            direction=direction,
            strength=strength,
            confidence=0.75,
            model_id="golden",
            model_version=1,
            created_at_ms=created_ms,
        )
        self.service.handle_signals([signal])
        self.service.poll_broker()

    def command(
        self,
        at_ms: int,
        command: Literal["halt", "reduce", "resume", "set_limit", "flatten"],
        symbol: str = "",
        **params: str,
    ) -> None:
        """An operator's command at ``at_ms``."""
        self._advance(at_ms)
        now_ms = self.clock.now_ms()
        self.service.handle_control(
            ControlCommand(
                command_id=f"golden-{command}-{now_ms}",
                command=command,
                issued_by="golden",
                issued_at_ms=now_ms,
                reason="scripted",
                symbol=symbol,
                params=params,
            )
        )
        self.service.poll_broker()

    def finish(self) -> dict[str, Any]:
        """Fill what falls due within 10 s, close the process; return the session's record."""
        self._advance(self.clock.now_ms() - self.start_ms + 10 * SECOND_MS)
        engine = self.service.engine
        now_ms = self.clock.now_ms()
        unrealized = engine.valuation.unrealized_now()
        daily = engine.daily_pnl(now_ms)
        currency = self.settings.execution.account_currency
        pnl = {
            "unrealized_by_symbol": _amounts(unrealized),
            "daily": _account(daily, currency),
            "paper_realized": _account(self.paper.realized_pnl, currency),
            "paper_positions": _amounts(self.paper.positions()),
        }
        status = engine.status()
        state = state_record(engine)
        self.service.close()
        files = instance_dir(self.settings)
        journal = Journal(files / JOURNAL_NAME, fsync=False, chain_id=INSTANCE_ID)
        events = list(journal.events())
        chain = journal.chain
        journal.close()
        assert chain is not None  # a chain id was given
        return {
            "orders": order_lines(events),
            "fills": fill_lines(events, self.settings),
            "bookings": booking_lines(events),
            "denials": denial_lines(events),
            "risk_events": risk_lines(events),
            "pnl": pnl,
            "status": status,
            "state": state,
            "chain": {"head": chain.head, "next_seq": chain.next_seq},
            "journal": file_record(files / JOURNAL_NAME),
            "ledger": file_record(files / LEDGER_NAME),
        }


def journal_path(directory: Path, scenario: Scenario) -> Path:
    """Return where a scenario's journal is kept verbatim."""
    return directory / JOURNALS / f"{scenario.name}.jsonl"


def run_scenario(scenario: Scenario, work_dir: Path) -> tuple[dict[str, Any], bytes]:
    """Run one scenario in ``work_dir``; return its record and its journal's bytes."""
    session = Session(scenario, work_dir / scenario.name)
    scenario.script(session)
    record = session.finish()
    return record, (instance_dir(session.settings) / JOURNAL_NAME).read_bytes()


def replayed_journal(scenario: Scenario, journal_file: Path, work_dir: Path) -> dict[str, Any]:
    """Open a kept journal with today's code, replay it into a fresh engine and write its events again.

    Returns the state it rebuilt, its chain and whether writing the same groups again gave the same bytes.
    """
    settings = scenario.settings(work_dir / "opened")
    opened = instance_dir(settings) / JOURNAL_NAME
    shutil.copyfile(journal_file, opened)
    journal = Journal(opened, fsync=False, chain_id=INSTANCE_ID)
    events = list(journal.events())
    chain = journal.chain
    journal.close()
    assert chain is not None  # a chain id was given
    engine = engine_for(settings)
    replay(engine, events)
    again = work_dir / "again" / JOURNAL_NAME
    rewritten = Journal(again, fsync=False, chain_id=INSTANCE_ID)
    for group in _groups(journal_file.read_bytes(), events):
        rewritten.append_all(group)
    rewritten.drop_links_before(rewritten.count)  # links the chain up to its end
    rewritten_head = None if rewritten.chain is None else rewritten.chain.head
    rewritten.close()
    return {
        "state": state_record(engine),
        "chain": {"head": chain.head, "next_seq": chain.next_seq},
        "rewritten_chain_head": rewritten_head,
        "is_rewritten_same": again.read_bytes() == journal_file.read_bytes(),
    }


def _groups(data: bytes, events: Sequence[AnyMessage]) -> list[list[AnyMessage]]:
    # The journal's groups, by each line's separator (the ninth byte: "+" when more of its group follows).
    lines = data.splitlines()
    assert len(lines) == len(events)  # a whole journal, as written
    groups: list[list[AnyMessage]] = [[]]
    for line, event in zip(lines, events, strict=True):
        groups[-1].append(event)
        if line[8:9] != b"+":
            groups.append([])
    return [group for group in groups if group]


# ---------------------------------------------------------------------------------------------------------------------
# The scenarios (times in ms from each one's start; the trading day rolls over at 22:00 UTC in November)

SECOND_MS: Final = 1_000
MINUTE_MS: Final = 60 * SECOND_MS
HOUR_MS: Final = 60 * MINUTE_MS


def _sizing_and_gate(s: Session) -> None:
    # Sizing to lot steps, the order cap, and each of the gate's refusals once, some on their boundary.
    s.tick(0, "EURUSD", 1.10003, 1.10013)
    s.tick(0, "USDJPY", 149.987, 149.997)
    s.tick(0, "XAUUSD", 2000.1, 2000.3)
    s.signal(1_000, "EURUSD", "long", 0.37)  # 0.37 lots
    s.signal(1_500, "EURUSD", "long", 1.0)  # 0.63 more, capped at the largest order: 0.5
    s.signal(2_000, "EURUSD", "long", 1.0)  # 0.13: three orders, the first exactly a second ago
    s.signal(2_500, "EURUSD", "long", 1.0)  # at target: sizing
    s.signal(2_600, "EURUSD", "long", 0.999)  # 0.999 lots round to the step: at target
    s.signal(10_000, "USDJPY", "short", 0.5, age_ms=5_000)  # exactly the signal TTL: decided
    s.signal(10_100, "USDJPY", "short", 0.8, age_ms=5_001)  # a millisecond over: signal_ttl
    s.signal(10_200, "GBPUSD", "long", 0.5)  # not an allowed symbol
    s.signal(10_300, "EURJPY", "long", 0.5)  # no price yet
    s.signal(10_400, "XAUUSD", "long", 0.5, timeframe="5m")  # not the signal timeframe
    s.signal(20_000, "XAUUSD", "long", 0.5)  # 0.5 lots of gold: 100 oz at ~2000
    s.signal(20_100, "XAUUSD", "long", 1.0)  # the gross exposure over its limit
    s.tick(30_000, "USDJPY", 149.2, 150.1)  # a spread of ~60 bps
    s.signal(30_100, "USDJPY", "short", 0.9)  # price_collar
    s.tick(31_000, "USDJPY", 149.55, 149.56)
    s.tick(31_000, "EURJPY", 164.471, 164.493)
    s.signal(40_000, "USDJPY", "short", 0.25)  # three orders within a second
    s.signal(40_100, "EURJPY", "long", 0.25)
    s.signal(40_200, "EURUSD", "short", 0.25)
    s.signal(40_400, "EURJPY", "long", 0.75)  # the fourth: order_rate
    s.signal(40_999, "EURJPY", "long", 0.75)  # the first of the three a millisecond short of a second ago
    s.signal(41_000, "EURJPY", "long", 0.75)  # a second after it: decided
    s.signal(50_000, "EURUSD", "short", 0.6)  # a flip through zero, capped
    s.tick(30 * MINUTE_MS + SECOND_MS, "EURUSD", 1.1, 1.1001)  # Friday 17:00:01 in New York: the market is closed
    s.signal(30 * MINUTE_MS + 2 * SECOND_MS, "EURUSD", "long", 0.5)


def _fills_and_pnl(s: Session) -> None:
    # Fills 200 ms after their orders, at the quote then, with slippage; every kind of booking in six currencies.
    s.tick(0, "EURUSD", 1.08437, 1.08446)
    s.tick(0, "USDJPY", 151.234, 151.247)
    s.tick(0, "XAUUSD", 1987.63, 1987.91)
    s.tick(0, "EURJPY", 163.991, 164.012)
    s.tick(0, "EURGBP", 0.86912, 0.86925)
    s.tick(0, "GBPUSD", 1.24761, 1.24775)
    s.signal(1_000, "EURUSD", "long", 0.41)  # 1.23 lots
    s.tick(1_100, "EURUSD", 1.08441, 1.08449)  # the order is still working: it fills at this quote
    s.signal(2_000, "USDJPY", "short", 0.27)  # -0.81
    s.signal(3_000, "XAUUSD", "long", 0.07)  # 0.21 lots of gold
    s.signal(4_000, "EURJPY", "long", 0.33)  # 0.99
    s.signal(5_000, "EURGBP", "short", 0.5)  # -1.5 (its P&L in GBP, converted through GBPUSD)
    s.tick(60_000, "EURUSD", 1.08517, 1.08526)
    s.tick(60_000, "USDJPY", 151.102, 151.115)
    s.tick(60_000, "XAUUSD", 1991.07, 1991.42)
    s.tick(60_000, "EURJPY", 163.871, 163.893)
    s.tick(60_000, "EURGBP", 0.86897, 0.86911)
    s.tick(60_000, "GBPUSD", 1.24802, 1.24817)
    s.signal(61_000, "EURUSD", "long", 0.2)  # a partial close: 0.6
    s.signal(62_000, "USDJPY", "long", 0.1)  # a flip: buy 1.11, capped at 1.0 (closes 0.81, opens 0.19)
    s.signal(63_000, "XAUUSD", "flat")  # closes the gold
    s.signal(64_000, "EURJPY", "short", 0.2)  # a flip, capped at 1.0
    s.restart(90_000)  # the process starts again on its journal and its paper ledger
    s.tick(120_000, "EURUSD", 1.08391, 1.08399)
    s.tick(120_000, "USDJPY", 151.377, 151.389)
    s.tick(120_000, "EURJPY", 164.133, 164.155)
    s.tick(120_000, "EURGBP", 0.86953, 0.86966)
    s.tick(120_000, "GBPUSD", 1.24733, 1.24747)
    s.signal(121_000, "EURUSD", "short", 0.1)  # a flip: sell 0.9, capped at 1.0
    s.signal(122_000, "USDJPY", "flat")
    s.signal(123_000, "EURGBP", "short", 0.17)  # a partial close: -0.51
    s.signal(124_000, "EURJPY", "long", 0.05)  # a flip back
    s.tick(180_000, "EURUSD", 1.08402, 1.08411)
    s.tick(180_000, "EURJPY", 164.102, 164.121)


def _stops(s: Session) -> None:
    # Protective stops: a stop loss, a take profit, gold's own pips, a close denied then retried, a stop while halted.
    s.tick(0, "EURUSD", 1.1, 1.1001)
    s.tick(0, "USDJPY", 150.0, 150.01)
    s.tick(0, "XAUUSD", 2000.0, 2000.2)
    s.signal(1_000, "EURUSD", "long", 1.0)
    s.signal(2_000, "USDJPY", "short", 0.5)
    s.signal(3_000, "XAUUSD", "long", 0.2)
    s.tick(10_000, "EURUSD", 1.0987, 1.0988)  # 13 pips down: no stop
    s.tick(11_000, "EURUSD", 1.0979, 1.098)  # the bid 21 pips under the entry: the stop loss closes it
    s.tick(20_000, "USDJPY", 149.68, 149.69)  # the ask over 30 pips under the short's entry: take profit
    s.tick(30_000, "XAUUSD", 1996.9, 1997.1)  # 3.1 under: gold has its own stop, 25 pips of 0.1
    s.signal(40_000, "EURUSD", "long", 1.0)
    s.command(41_000, "halt")
    s.tick(42_000, "EURUSD", 1.093, 1.099)  # crosses the stop with a spread of ~55 bps: the close is denied
    s.tick(42_500, "EURUSD", 1.0957, 1.0958)  # within a second of the denial: not tried again
    s.tick(43_100, "EURUSD", 1.0956, 1.0957)  # tried again: closed while HALTED
    s.command(44_000, "resume")


def _halts_and_commands(s: Session) -> None:
    # The loss breaker, a reduce-only order, a flash crash, a bad print, halt, flatten, set_limit, rejects, rollover.
    s.tick(0, "EURUSD", 1.1, 1.1001)
    s.tick(0, "XAUUSD", 2000.0, 2000.2)
    s.tick(0, "USDJPY", 150.0, 150.01)
    s.signal(1_000, "EURUSD", "long", 1.0)
    s.tick(5_000, "EURUSD", 1.0984, 1.0985)  # ~160 USD down: over the 150 limit, trading REDUCING
    s.signal(6_000, "XAUUSD", "long", 0.5)  # opens a position: trading_state
    s.signal(7_000, "EURUSD", "long", 0.5)  # reduces: passes
    s.command(8_000, "resume")
    s.tick(9_000, "EURUSD", 1.0983, 1.0984)  # still over the limit: REDUCING again
    s.command(10_000, "resume")
    s.tick(20_000, "XAUUSD", 1998.0, 1998.2)
    s.tick(21_000, "XAUUSD", 1954.0, 1954.2)  # 2.2 % within the window: XAUUSD halted
    s.signal(22_000, "XAUUSD", "long", 0.3)  # denied: trading is REDUCING (since the last tick) and gold halted
    s.tick(23_000, "EURUSD", 1.2001, 1.2002)  # a bad print (9 %): skipped, not a price
    s.signal(30_000, "EURUSD", "flat")  # reduces (trading is REDUCING again since the last tick): working 500 ms
    s.command(30_100, "halt")  # cancels it
    s.signal(31_000, "EURUSD", "short", 1.0)  # denied while HALTED
    s.command(32_000, "flatten")  # closes while HALTED
    s.command(33_000, "set_limit", max_order_lots="0.3")
    s.command(34_000, "set_limit", daily_loss_limit="nan")  # refused
    s.command(34_500, "set_limit", daily_loss_limit="10000")  # the loss breaker out of the way of the rejects
    s.command(35_000, "resume")
    s.command(35_500, "resume", symbol="XAUUSD")
    s.signal(36_000, "EURUSD", "long", 1.0)  # sized by the configured cap (1.0), denied by the one set (0.3)
    for number, strength in enumerate((0.1, 0.2, 0.3, 0.25)):
        s.signal(40_000 + number * 1_000, "USDJPY", "long", strength)  # refused by the venue: the third halts
    s.tick(10 * HOUR_MS + MINUTE_MS, "EURUSD", 1.0991, 1.0992)  # 22:01 UTC: a new trading day, its marks


SCENARIOS: Final = (
    Scenario(
        "sizing_and_gate",
        _sizing_and_gate,
        risk={
            "max_order_lots": 0.5,
            "max_orders_per_second": 3,
            "max_gross_exposure": 300_000.0,
            "allowed_symbols": ["EURUSD", "USDJPY", "XAUUSD", "EURJPY"],
        },
        start_ms=FRIDAY_LATE_MS,
    ),
    Scenario(
        "fills_and_pnl",
        _fills_and_pnl,
        risk={
            "max_position_lots": 3.0,
            "allowed_symbols": ["EURUSD", "USDJPY", "XAUUSD", "EURJPY", "EURGBP"],
        },
        paper_broker={"latency_ms": 200, "slippage_bps": 0.7},
    ),
    Scenario(
        "stops",
        _stops,
        risk={"stop_loss_pips": 20.0, "take_profit_pips": 30.0, "stop_pips_by_symbol": {"XAUUSD": [25.0, 60.0]}},
    ),
    Scenario(
        "halts_and_commands",
        _halts_and_commands,
        risk={"daily_loss_limit": 150.0, "max_consecutive_rejects": 3},
        paper_broker={"latency_ms": 500},
        refused_symbols=frozenset({"USDJPY"}),
    ),
)


def record_scenarios(work_dir: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Run every scenario in ``work_dir``; return their records by name and their journals' bytes."""
    records: dict[str, Any] = {}
    journals: dict[str, bytes] = {}
    for scenario in SCENARIOS:
        records[scenario.name], journals[scenario.name] = run_scenario(scenario, work_dir)
    return records, journals


# ---------------------------------------------------------------------------------------------------------------------
# Comparing, writing


def first_difference(expected: Any, actual: Any, where: str = "") -> str | None:
    """Return where two records first differ and how (None: equal); a digest's difference names its chunk."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if expected.keys() != actual.keys():
            return f"{where or '/'}: keys {sorted(expected)} != {sorted(actual)}"
        if {"count", "sha256", "chunks"} <= expected.keys() and expected != actual:
            return _digest_difference(expected, actual, where)
        for key in expected:
            found = first_difference(expected[key], actual[key], f"{where}/{key}")
            if found is not None:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for index, (one, other) in enumerate(zip(expected, actual, strict=False)):
            found = first_difference(one, other, f"{where}[{index}]")
            if found is not None:
                return found
        if len(expected) != len(actual):
            return f"{where}: {len(expected)} items recorded, {len(actual)} now"
        return None
    return None if expected == actual else f"{where}: recorded {expected!r}, now {actual!r}"


def _digest_difference(expected: dict[str, Any], actual: dict[str, Any], where: str) -> str:
    for number, (one, other) in enumerate(zip(expected["chunks"], actual["chunks"], strict=False)):
        if one != other:
            first, now = expected["first"], actual["first"]
            for index, (line, line_now) in enumerate(zip(first, now, strict=False)):
                if line != line_now:
                    return f"{where}: line {index} recorded {line!r}, now {line_now!r}"
            start = number * CHUNK_LINES
            return f"{where}: lines {start}-{start + CHUNK_LINES - 1} differ (of {expected['count']} recorded)"
    return f"{where}: {expected['count']} lines recorded, {actual['count']} now"


def dumps(record: Mapping[str, Any]) -> str:
    """Return a record as the golden file's text: JSON, keys sorted, one item a line (diffs read line by line)."""
    return json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def load(path: Path) -> Any:
    """Return a golden file's record."""
    return json.loads(path.read_text())


def write(directory: Path, work_dir: Path) -> None:
    """Record today's engine into ``directory`` (the replay, the scenarios and their journals)."""
    replayed = record_replay(work_dir / "replay")
    scenarios, journals = record_scenarios(work_dir / "scenarios")
    (directory / JOURNALS).mkdir(parents=True, exist_ok=True)
    (directory / REPLAY_FILE).write_text(dumps(replayed))
    (directory / SCENARIOS_FILE).write_text(dumps(scenarios))
    for scenario in SCENARIOS:
        journal_path(directory, scenario).write_bytes(journals[scenario.name])


def compare(directory: Path, work_dir: Path) -> list[str]:
    """Compare today's engine with the records in ``directory``; return the differences found (none: it agrees)."""
    problems: list[str] = []
    difference = first_difference(load(directory / REPLAY_FILE), record_replay(work_dir / "replay"))
    if difference is not None:
        problems.append(f"{REPLAY_FILE}: {difference}")
    recorded = load(directory / SCENARIOS_FILE)
    scenarios, journals = record_scenarios(work_dir / "scenarios")
    difference = first_difference(recorded, scenarios)
    if difference is not None:
        problems.append(f"{SCENARIOS_FILE}: {difference}")
    for scenario in SCENARIOS:
        kept = journal_path(directory, scenario)
        if journals[scenario.name] != kept.read_bytes():
            problems.append(f"{kept}: the journal written now differs from the one kept")
        replayed = replayed_journal(scenario, kept, work_dir / "replayed" / scenario.name)
        expected = {
            "state": recorded[scenario.name]["state"],
            "chain": recorded[scenario.name]["chain"],
            "rewritten_chain_head": recorded[scenario.name]["chain"]["head"],
            "is_rewritten_same": True,
        }
        difference = first_difference(expected, replayed)
        if difference is not None:
            problems.append(f"{kept} replayed: {difference}")
    return problems


def main(arguments: Sequence[str] | None = None) -> int:
    """Compare with the golden records (exit 1 on a difference), or record them again with ``--write``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="record today's engine (review the diff: it is a rule)")
    parser.add_argument("--directory", type=Path, default=GOLDEN_DIR, help="where the records are kept")
    parsed = parser.parse_args(arguments)
    with tempfile.TemporaryDirectory(prefix="tickwave-golden-") as work:
        if parsed.write:
            write(parsed.directory, Path(work))
            print(f"recorded into {parsed.directory}: review the diff (git diff -- {parsed.directory})")
            return 0
        problems = compare(parsed.directory, Path(work))
    for problem in problems:
        print(problem)
    if not problems:
        print(f"the engine reproduces every record in {parsed.directory}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
