"""A backtest that is the live engine: recorded ticks and signals replayed through the execution service.

:func:`replay_session` builds the service exactly as ``python -m execution`` does
(:func:`execution.app.build_service`: the engine, the sizing, the risk gate, the journal
and the paper broker with its slippage and latency), in a temporary state directory,
under a :class:`~tickwave.clock.ManualClock` that the replay moves to each event's time.
So a backtest's orders are the orders live trading would have sent, and its fills the
fills the paper venue would have made.

The replay's order of events, and why it matches the live loop:

- ticks (at ``time_ms``) and signals (at ``created_at_ms``) are merged by time; at equal
  times the tick comes first (the dataflow closes a bar on a tick, then signals);
- a tick goes through ``handle_tick_bytes`` (the live validation and spike filter), a
  signal through ``handle_signals``;
- before each event, paper orders that fall due before it are filled: the clock moves to
  their due time and the broker is polled, so a fill with latency is at the quote of its
  due time (the live loop polls at least every ``POLL_TIMEOUT_S``: it fills within
  ~50 ms of the due time, at the quote then);
- after each event the broker is polled, as the live loop does after each batch.

What time-dependent checks see: the signal's age and the tick's age are measured at the
event's own time (live: plus the bus's transit, a few ms). A live run therefore gives the
same orders when no tick of the symbol lands within the loop's reaction time (~50 ms)
of a signal or of a fill's due time: the parity test
(``tests/integration/execution/test_backtest_parity.py``) replays a session built that way.
"""

from __future__ import annotations

import gc
import logging
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter
from pathlib import Path
from typing import Final, cast

import msgspec

from execution.app import build_service
from execution.brokers.paper import PaperBroker
from execution.engine import Engine
from execution.journal import Journal
from execution.memory_journal import MemoryJournal
from execution.positions import Book, book_of
from execution.service import ExecutionService
from tickwave.audit_chain import ChainLink
from tickwave.clock import ManualClock
from tickwave.config import Settings
from tickwave.contracts import (
    AnyMessage,
    ControlCommand,
    Message,
    OrderDenied,
    OrderFilled,
    OrderSubmitted,
    Signal,
    Tick,
    encode,
)
from tickwave.instruments import Instrument, registry
from tickwave.money import MONEY_CONTEXT, to_decimal

logger = logging.getLogger(__name__)

BACKTEST_ACTOR: Final = "backtest"
_ENCODER: Final = msgspec.json.Encoder()
_TICKS_DECODER: Final = msgspec.json.Decoder(list[Tick])
_TICK_TIME: Final = attrgetter("time_ms")
_SIGNAL_TIME: Final = attrgetter("created_at_ms")
REPLAY_RECONCILE_EVERY_S: Final = 86_400.0


class _NoPublisher:
    """The audit bus of a fast replay: nothing is published (the memory journal holds every event in order)."""

    discards_all = True  # the service then leaves it out of the decision path

    def publish(self, message: Message, key: str, position: int, link: ChainLink | None = None) -> None:
        """Do nothing."""

    def resume_position(self) -> int:
        """Return 0: a replay starts from an empty journal."""
        return 0

    def flush(self, timeout_s: float) -> int:
        """Return 0: nothing is pending."""
        return 0


class _Recorder:
    """The audit bus of a replay: every journaled event, kept by its journal position (nothing is sent)."""

    def __init__(self) -> None:
        self.by_position: dict[int, Message] = {}

    def publish(self, message: Message, key: str, position: int, link: ChainLink | None = None) -> None:
        """Keep the message at its journal position (the live process publishes each one once)."""
        self.by_position[position] = message

    def journal(self) -> tuple[Message, ...]:
        """Return the events in journal order (reading the journal file back took a tenth of a replay)."""
        return tuple(self.by_position[position] for position in sorted(self.by_position))

    def resume_position(self) -> int:
        """Return 0: a replay starts from an empty journal."""
        return 0

    def flush(self, timeout_s: float) -> int:
        """Return 0: nothing is pending."""
        return 0


@dataclass(frozen=True)
class FillPnl:
    """The realised P&L one fill booked (first-in first-out), in its instrument's quote currency."""

    client_order_id: str
    fill_id: str
    symbol: str
    side: str
    lots: Decimal
    price: Decimal
    realized: Decimal
    currency: str


def fill_pnls(events: Iterable[AnyMessage], instruments: Mapping[str, Instrument]) -> list[FillPnl]:
    """Return the realised P&L of every fill in ``events`` (a journal, live or replayed), in order.

    The same first-in first-out books as the engine and the paper broker
    (:class:`execution.positions.Book`): a live journal and a replayed one give the same
    list exactly when they hold the same fills.
    """
    sides: dict[str, str] = {}
    books: dict[str, Book] = {}
    result: list[FillPnl] = []
    for event in events:
        if isinstance(event, OrderSubmitted):
            sides[event.client_order_id] = event.side
        elif isinstance(event, OrderFilled):
            side = sides[event.client_order_id]
            lots, price = to_decimal(event.fill_lots), to_decimal(event.fill_price)
            moved = book_of(books, event.symbol).fill(lots if side == "buy" else -lots, price)
            spec = instruments[event.symbol]
            result.append(
                FillPnl(
                    event.client_order_id,
                    event.fill_id,
                    event.symbol,
                    side,
                    lots,
                    price,
                    spec.price_pnl(1, moved),
                    spec.quote,
                )
            )
    return result


def count_trades(events: Iterable[AnyMessage]) -> int:
    """Return how many round trips were opened: from flat, or by a fill that flipped through zero.

    The engine's rule (:meth:`execution.positions.Book.book`): a fill that opens a round trip.
    """
    sides: dict[str, str] = {}
    books: dict[str, Book] = {}
    trades = 0
    for event in events:
        if isinstance(event, OrderSubmitted):
            sides[event.client_order_id] = event.side
        elif isinstance(event, OrderFilled):
            lots = to_decimal(event.fill_lots)
            signed = lots if sides[event.client_order_id] == "buy" else -lots
            booking = book_of(books, event.symbol).book(signed, to_decimal(event.fill_price), event.fill_id)
            trades += booking.opens_round_trip_id != ""
    return trades


@dataclass(frozen=True)
class ReplayResult:
    """What a replayed session did: every journaled event, the positions left and the P&L.

    Money is exact per currency, as the engine booked it (its realised P&L and its open
    positions at the last mids; a live paper ledger books the same fills by the same rule,
    :class:`~execution.positions.Book`); the account-currency figures convert each currency's
    sum once, at the last mids (None when a rate is missing), as the paper broker values its
    account.
    """

    events: tuple[AnyMessage, ...]  # the journal, in order
    positions: dict[str, Decimal]
    realized_by_currency: dict[str, Decimal]
    unrealized_by_currency: dict[str, Decimal]
    realized_pnl: Decimal | None  # account currency
    total_pnl: Decimal | None  # realised + open positions at the last mids, account currency
    account_currency: str
    # The audit hash chain's head over the journal's order events (its genesis when none; None: not computed).
    chain_head: str | None = None
    is_fast: bool = False  # replayed with the journal and the paper ledger in memory (see replay_session)
    # The round trips the engine opened, from its own bookings (None: counted from the events).
    round_trips: int | None = None

    # Exact types (contract messages are never subclassed): an isinstance that misses costs ~65 ns, and a
    # replay of 200,000 rows journals ~900,000 events.

    @property
    def orders(self) -> list[OrderSubmitted]:
        """Return the orders sent, in order."""
        return [event for event in self.events if type(event) is OrderSubmitted]

    @property
    def fills(self) -> list[OrderFilled]:
        """Return the fills, in order."""
        return [event for event in self.events if type(event) is OrderFilled]

    @property
    def denials(self) -> list[OrderDenied]:
        """Return the signals the gate (or sizing) turned down."""
        return [event for event in self.events if type(event) is OrderDenied]

    def denial_counts(self) -> dict[str, int]:
        """Return the denials per check (``sizing``, ``price_collar``, ...)."""
        return dict(sorted(Counter(denial.check for denial in self.denials).items()))

    @property
    def trades(self) -> int:
        """Return how many positions were opened (see :func:`count_trades`; the engine's count when kept)."""
        return count_trades(self.events) if self.round_trips is None else self.round_trips


def replay_settings(settings: Settings, state_dir: Path) -> Settings:
    """The live settings with the paper broker, an unsynced journal, ``state_dir`` and a daily reconciliation.

    Reconciliation compares the journal with the broker and changes nothing while they
    agree (the paper broker of the same replay); each pass walks every order, so at the
    live cadence (every ``execution.reconciliation.interval_s`` of the replayed clock: every event of a
    1-minute holdout) a replay would take quadratic time. It runs once a replayed day.
    """
    every_s = max(settings.execution.reconciliation.interval_s, REPLAY_RECONCILE_EVERY_S)
    reconciliation = settings.execution.reconciliation.model_copy(update={"interval_s": every_s})
    execution = settings.execution.model_copy(
        update={"broker": "paper", "journal_fsync": False, "reconciliation": reconciliation}
    )
    return settings.model_copy(update={"state_dir": state_dir, "execution": execution})


def _timeline(ticks: Iterable[Tick], signals: Iterable[Signal]) -> list[Tick | Signal]:
    """Return ticks and signals in replay order: by time, a tick before a signal at the same ms, else as they came.

    Each stream sorted by its own time (stable: arrival order within a ms; recorded streams
    come in order, so that is one pass), then the two merged: no tuple per event (building
    and sorting 300,000 of them took 0.3 s of a 200,000-row replay).
    """
    by_time = sorted(ticks, key=_TICK_TIME)
    by_creation = sorted(signals, key=_SIGNAL_TIME)
    merged: list[Tick | Signal] = []
    waiting, count = 0, len(by_creation)
    for tick in by_time:
        while waiting < count and by_creation[waiting].created_at_ms < tick.time_ms:
            merged.append(by_creation[waiting])
            waiting += 1
        merged.append(tick)
    merged += by_creation[waiting:]
    return merged


def _time_of(item: Tick | Signal) -> int:
    """The time an item is replayed at: a tick's ``time_ms``, a signal's ``created_at_ms``."""
    return item.time_ms if type(item) is Tick else cast(Signal, item).created_at_ms


def _decoded(ticks: Iterable[Tick]) -> tuple[list[Tick], bool]:
    """Return ``ticks`` as the live process decodes them from its messages, through one encode and one decode.

    The same ticks as each one's own round trip (``decode(encode(tick), Tick)``), for a
    fraction of the calls; True when so. When one is not a valid ``Tick``, the ticks as they
    were and False: each then goes through its own message (``handle_tick_bytes``), which
    rejects that one alone.
    """
    given = list(ticks)
    try:
        return _TICKS_DECODER.decode(_ENCODER.encode(given)), True
    except (msgspec.DecodeError, ValueError, TypeError):
        return given, False


def replay_session(
    settings: Settings,
    ticks: Iterable[Tick],
    signals: Iterable[Signal],
    *,
    flatten_at_end: bool = False,
    state_dir: Path | None = None,
    fast: bool = True,
    audit_chain: bool = True,
) -> ReplayResult:
    """Replay ``ticks`` and ``signals`` through the execution service built from ``settings``; return what it did.

    Two ways, with the same decisions (the same engine, risk gate, sizing and paper broker;
    ``tests/integration/execution/test_fast_replay_parity.py`` holds them equal event by event):

    - ``fast`` (the default): the journal and the paper broker's ledger are kept in memory
      (:class:`~execution.memory_journal.MemoryJournal`; nothing is encoded per event, nothing
      written; the paper broker keeps its positions, not an account: the P&L is the engine's
      booking), the broker is polled only when an order falls due or the reconciliation is
      due (a poll with nothing due changes nothing), and the garbage collector pauses
      during the replay (nothing a replay builds is cyclic garbage; what it built is then
      handed to the collector as old objects, see ``_hand_over_as_old``). The audit chain is
      computed once at the end (``audit_chain``; False skips it and leaves ``chain_head`` None).
    - not ``fast``: the live process's files (the journal with its per-event chain links and
      the paper ledger) in ``state_dir``, and a poll after every event, as the live loop does.

    Args:
        settings: the live configuration (``execution``, ``symbols``, ``streams`` validation);
            the broker is the paper broker whatever ``execution.broker`` says.
        ticks: the recorded ticks (any order; replayed by time).
        signals: the recorded signals (replayed at their ``created_at_ms``).
        flatten_at_end: close every position at the end with the operator's flatten (reduce-only
            market orders through the gate and the broker), so the costs of the way out count.
        state_dir: where the journal and the paper ledger go when not ``fast`` (default: a
            temporary directory, removed afterwards).
        fast: keep the journal and the ledger in memory (above).
        audit_chain: with ``fast``, link the order events into the audit chain at the end.
    """
    if state_dir is None and not fast:
        with tempfile.TemporaryDirectory(prefix="tickwave-backtest-") as temporary:
            return replay_session(
                settings, ticks, signals, flatten_at_end=flatten_at_end, state_dir=Path(temporary), fast=False
            )
    is_collecting, is_decoded = gc.isenabled(), False
    if fast:
        gc.disable()  # from the timeline on: its tuples alone took 0.45 s of collections at 200,000 rows, 0.07 without
        ticks, is_decoded = _decoded(ticks)
    try:
        return _replay(settings, _timeline(ticks, signals), flatten_at_end, state_dir, fast, audit_chain, is_decoded)
    finally:
        if is_collecting:
            _hand_over_as_old()
            gc.enable()


def _hand_over_as_old() -> None:
    """Move every object the collector tracks into its oldest generation, unscanned (before it is enabled again).

    What a fast replay built (its journal, orders and books: ~800,000 tracked objects at
    200,000 rows) lives on in its result; left young, the first allocation after the replay
    scanned them all as a young generation (0.36 s at 200,000 rows) only to find them alive.
    The oldest generation is scanned when it grows by a quarter, as for any long-lived data.
    Not when the process froze objects itself (``gc.freeze``, e.g. before forking workers):
    unfreezing would hand its frozen objects back to the collector.
    """
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


def _replay(
    settings: Settings,
    timeline: Sequence[Tick | Signal],
    flatten_at_end: bool,
    state_dir: Path | None,
    fast: bool,
    audit_chain: bool,
    is_decoded: bool,
) -> ReplayResult:
    """Replay ``timeline`` (see :func:`replay_session`); the caller pauses the garbage collector when ``fast``.

    ``is_decoded``: the timeline's ticks are decoded already (see :func:`_decoded`).
    """
    clock = ManualClock(_time_of(timeline[0]) if timeline else 0)
    recorder = _Recorder()
    memory: MemoryJournal | None = None
    if fast:
        replayed = replay_settings(settings, state_dir or Path(tempfile.gettempdir()))  # no file is opened there
        memory = MemoryJournal(replayed.execution.instance_id if audit_chain else None)
        ledger = PaperBroker(
            replayed.execution, clock, None, instruments_of(replayed), ledger=MemoryJournal(), account=False
        )
        service = build_service(replayed, _NoPublisher(), clock, broker=ledger, journal=memory, keep_every_order=True)
    else:
        assert state_dir is not None  # chosen above
        replayed = replay_settings(settings, state_dir)
        service = build_service(replayed, recorder, clock, keep_every_order=True)
    broker = service.broker
    assert isinstance(broker, PaperBroker)  # replay_settings chose it
    try:
        service.start()
        if fast:
            _replay_fast(service, broker, clock, timeline, is_decoded)
        else:
            for item in timeline:
                at_ms = _time_of(item)
                _fill_due(service, broker, clock, before_ms=at_ms)
                clock.set(max(clock.now_ms(), at_ms))
                if isinstance(item, Tick):
                    service.handle_tick_bytes(encode(item))
                else:
                    service.handle_signals([item])
                service.poll_broker()
        _fill_due(service, broker, clock, before_ms=None)
        if flatten_at_end and broker.positions():
            now_ms = clock.now_ms()
            command = ControlCommand(
                command_id=f"backtest-end-{now_ms}",
                command="flatten",
                issued_by=BACKTEST_ACTOR,
                issued_at_ms=now_ms,
                reason="the backtest ends",
            )
            service.handle_control(command)
            _fill_due(service, broker, clock, before_ms=None)
        realized, unrealized = _booked_pnl(service.engine)
        total = {
            currency: MONEY_CONTEXT.add(realized.get(currency, Decimal(0)), unrealized.get(currency, Decimal(0)))
            for currency in realized.keys() | unrealized.keys()
        }
        positions = dict(broker.positions())
        realized_pnl, total_pnl = broker.account_value(realized), broker.account_value(total)
        # Each fill the engine booked (the journal's, once each): the rule of count_trades, without reading it back.
        round_trips = sum(1 for booking in service.engine.state.bookings.values() if booking.opens_round_trip_id)
    finally:
        service.close()
    if memory is not None:
        events = cast(tuple[AnyMessage, ...], tuple(memory.messages))
        chain = memory.chain()
    else:
        events = cast(tuple[AnyMessage, ...], recorder.journal())
        chain = cast(Journal, service.journal).chain
    head = None if chain is None else chain.head
    return ReplayResult(
        events,
        positions,
        realized,
        unrealized,
        realized_pnl,
        total_pnl,
        settings.execution.account_currency,
        head,
        fast,
        round_trips,
    )


def _replay_fast(
    service: ExecutionService,
    broker: PaperBroker,
    clock: ManualClock,
    timeline: Sequence[Tick | Signal],
    is_decoded: bool,
) -> None:
    """The replay loop without the polls that find nothing due (the decisions are the same calls)."""
    reconciler = service.reconciler
    for item in timeline:
        at_ms = _time_of(item)
        due_ms = broker.next_due_ms()
        if due_ms is not None and due_ms < at_ms:
            _fill_due(service, broker, clock, before_ms=at_ms)
        now_ms = at_ms if at_ms > clock.now_ms() else clock.now_ms()
        clock.set(now_ms)
        if type(item) is not Tick:
            service.handle_signals([cast(Signal, item)])
        elif is_decoded:  # the checks of handle_tick_bytes after its decode
            service.handle_decoded_tick(item)
        else:
            service.handle_tick_bytes(encode(item))
        # A poll changes something only when an order is due or the reconciliation is (else it returns nothing).
        due_ms = broker.next_due_ms()
        if (due_ms is not None and due_ms <= now_ms) or reconciler.is_time(now_ms):
            service.poll_broker()


def _fill_due(service: ExecutionService, broker: PaperBroker, clock: ManualClock, before_ms: int | None) -> None:
    """Poll the paper broker at each due time before ``before_ms`` (None: all that are due)."""
    while (due_ms := broker.next_due_ms()) is not None and (before_ms is None or due_ms < before_ms):
        clock.set(max(clock.now_ms(), due_ms))
        service.poll_broker()


def _booked_pnl(engine: Engine) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """Realised P&L and open P&L at the latest mids, per quote currency (exact), as the engine booked them."""
    realized: dict[str, Decimal] = {}
    for amounts in engine.state.realized_by_day.values():
        for currency, amount in amounts.items():
            realized[currency] = MONEY_CONTEXT.add(realized.get(currency, Decimal(0)), amount)
    unrealized: dict[str, Decimal] = {}
    for symbol, amount in sorted(engine.valuation.unrealized_now(engine.limits).items()):
        quote = engine.limits.instruments[symbol].quote
        unrealized[quote] = MONEY_CONTEXT.add(unrealized.get(quote, Decimal(0)), amount)
    return realized, unrealized


def instruments_of(settings: Settings) -> dict[str, Instrument]:
    """Return the instrument registry the replay uses (the settings' ``symbols``)."""
    return registry(settings.symbols)


def signals_in(events: Sequence[AnyMessage]) -> list[Signal]:
    """Return the signals a journal received, in order (a live journal is a recorded session's signals)."""
    return [event for event in events if isinstance(event, Signal)]
