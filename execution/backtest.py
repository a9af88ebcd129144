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
  due time (the live loop polls at least every ``POLL_TIMEOUT_S``, within ~50 ms of the
  due time or later on a busy machine, and the venue fills at the quote in effect at the
  due time, not at the ticks it has read since);
- after each event the broker is polled, as the live loop does after each batch.

What time-dependent checks see: the signal's age and the tick's age are measured at the
event's own time (live: plus the bus's transit, a few ms). A live run therefore gives the
same orders when no tick of the symbol lands within the loop's reaction time (~50 ms)
of a signal, nor between a fill's due time in the replay and the live one (the live order
is accepted, and falls due, after the bus's transit and the decision): the parity test
(``tests/integration/execution/test_backtest_parity.py``) replays a session built that way.
"""

from __future__ import annotations

import gc
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Final, cast

from execution.app import build_service
from execution.core.engine import Engine
from execution.core.memory_journal import MemoryJournal
from execution.core.paper import PaperBroker, account_value
from execution.core.replay import (
    CoreEvents,
    FillPnl,
    ReplayResult,
    batch_timeline,
    booked_pnl,
    core_timeline,
    count_trades,
    decoded,
    fill_due,
    fill_moves,
    fill_pnls,
    realized_of,
    replay_in_core,
    start_ms,
    time_of,
    timeline,
)
from execution.journal import Journal
from tickwave.audit_chain import ChainLink
from tickwave.clock import ManualClock
from tickwave.config import Settings
from tickwave.contracts import AnyMessage, ControlCommand, Message, Signal, Tick, encode
from tickwave.instruments import Instrument, registry
from tickwave.money import MONEY_CONTEXT
from tickwave.validation import QuoteBatch, SpikeFilter, ValidationRules

if TYPE_CHECKING:
    from tickwave_core import ReplayTimeline

__all__ = [  # with the replay's results and readers from the core, which its callers read here
    "BACKTEST_ACTOR",
    "FillPnl",
    "ReplayResult",
    "collector_paused",
    "count_trades",
    "fill_moves",
    "fill_pnls",
    "instruments_of",
    "realized_of",
    "replay_session",
    "replay_settings",
    "signals_in",
]

logger = logging.getLogger(__name__)

BACKTEST_ACTOR: Final = "backtest"
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

    - ``fast`` (the default): the service starts in memory, then the core's replay loop
      (:func:`~execution.core.replay.replay_in_core`, ``replay.rs``) runs the timeline through its
      engine and a paper venue on its broker's terms, the journal kept in the core (nothing
      encoded or written per event; the venue keeps positions, not an account: the P&L is the
      engine's booking), the venue polled only when an order falls due (the daily
      reconciliation, against the replay's own venue, finds nothing: it is not run), and the garbage collector pauses
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
    with collector_paused(fast):  # fast: what a replay builds is alive to its end, no garbage to look for
        if fast:
            return _replay(settings, *_fast_timeline(ticks, signals), None, flatten_at_end, state_dir, audit_chain)
        ordered = timeline(ticks, signals)
        return _replay(
            settings, time_of(ordered[0]) if ordered else 0, None, ordered, flatten_at_end, state_dir, audit_chain
        )


@contextmanager
def collector_paused(is_paused: bool = True) -> Iterator[None]:
    """Pause the garbage collector (when ``is_paused``) for work that builds much and leaves no cycles: a replay.

    Then hand what was built to the collector as old objects (:func:`_hand_over_as_old`) and
    collect again, when it collected before (nested, the outermost does it).
    """
    is_collecting = gc.isenabled()
    if is_paused:
        gc.disable()
    try:
        yield
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


def _fast_timeline(
    ticks: Iterable[Tick], signals: Iterable[Signal]
) -> tuple[int, Callable[[ValidationRules], ReplayTimeline]]:
    """Return a fast replay's start and how its timeline becomes the core's values under the service's rules.

    A :class:`~tickwave.validation.QuoteBatch` that decodes as sent goes from its columns
    (:func:`~execution.core.replay.batch_timeline`); other ticks through one encode and one decode
    (:func:`~execution.core.replay.decoded`) and the timeline of their objects.
    """
    given = list(signals)
    if type(ticks) is QuoteBatch and ticks.is_decodable():
        batch = ticks
        return start_ms(batch, given), lambda rules: batch_timeline(batch, given, rules)
    decoded_ticks, is_decoded = decoded(ticks)
    ordered = timeline(decoded_ticks, given)
    return (time_of(ordered[0]) if ordered else 0), lambda rules: core_timeline(ordered, rules, is_decoded)


def _replay(
    settings: Settings,
    at_ms: int,
    to_core: Callable[[ValidationRules], ReplayTimeline] | None,
    ordered: Sequence[Tick | Signal] | None,
    flatten_at_end: bool,
    state_dir: Path | None,
    audit_chain: bool,
) -> ReplayResult:
    """Replay from ``at_ms`` (see :func:`replay_session`); the caller pauses the garbage collector when fast.

    ``to_core``: the fast replay's timeline as the core's values, given the service's rules;
    else ``ordered``, the timeline replayed through the live process's files.
    """
    fast = to_core is not None
    clock = ManualClock(at_ms)
    recorder = _Recorder()
    memory: MemoryJournal | None = None
    if fast:
        replayed = replay_settings(settings, state_dir or Path(tempfile.gettempdir()))  # no file is opened there
        memory = MemoryJournal(replayed.execution.instance_id if audit_chain else None)
        ledger = PaperBroker(replayed.execution, clock, MemoryJournal(), instruments_of(replayed), account=False)
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
            assert memory is not None and to_core is not None  # chosen above
            core = replay_in_core(
                to_core(service.tick_checks.rules),
                service.engine,
                clock,
                broker,
                SpikeFilter.from_settings(service.tick_checks.streams),
                cast(list[AnyMessage], memory.messages),
                _closing_command if flatten_at_end else None,
            )
            positions = core.positions
            realized, unrealized, total = _booked(service.engine)
            mids = core.mids
            realized_pnl = account_value(realized, broker.account_currency, broker.instruments, mids)
            total_pnl = account_value(total, broker.account_currency, broker.instruments, mids)
        else:
            assert ordered is not None  # not fast
            for item in ordered:
                at_ms = time_of(item)
                fill_due(service, broker, clock, before_ms=at_ms)
                clock.set(max(clock.now_ms(), at_ms))
                if isinstance(item, Tick):
                    service.handle_tick_bytes(encode(item))
                else:
                    service.handle_signals([item])
                service.poll_broker()
            fill_due(service, broker, clock, before_ms=None)
            if flatten_at_end and broker.positions():
                service.handle_control(_closing_command(clock.now_ms()))
                fill_due(service, broker, clock, before_ms=None)
            realized, unrealized, total = _booked(service.engine)
            positions = dict(broker.positions())
            realized_pnl, total_pnl = broker.account_value(realized), broker.account_value(total)
        # Each fill the engine booked (the journal's, once each): the rule of count_trades, without reading it back.
        round_trips = sum(1 for booking in service.engine.state.bookings.values() if booking.opens_round_trip_id)
    finally:
        service.close()
    events: tuple[AnyMessage, ...] | CoreEvents
    if fast:
        events, head = CoreEvents(core.journal), core.chain_head if audit_chain else None
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


def _closing_command(now_ms: int) -> ControlCommand:
    """The operator's flatten that closes the positions a backtest leaves, at ``now_ms``."""
    return ControlCommand(
        command_id=f"backtest-end-{now_ms}",
        command="flatten",
        issued_by=BACKTEST_ACTOR,
        issued_at_ms=now_ms,
        reason="the backtest ends",
    )


def _booked(engine: Engine) -> tuple[dict[str, Decimal], dict[str, Decimal], dict[str, Decimal]]:
    """The engine's booked P&L per currency: realised, open at the latest mids, and their sum."""
    realized, unrealized = booked_pnl(engine)
    total = {
        currency: MONEY_CONTEXT.add(realized.get(currency, Decimal(0)), unrealized.get(currency, Decimal(0)))
        for currency in realized.keys() | unrealized.keys()
    }
    return realized, unrealized, total


def instruments_of(settings: Settings) -> dict[str, Instrument]:
    """Return the instrument registry the replay uses (the settings' ``symbols``)."""
    return registry(settings.symbols)


def signals_in(events: Sequence[AnyMessage]) -> list[Signal]:
    """Return the signals a journal received, in order (a live journal is a recorded session's signals)."""
    return [event for event in events if isinstance(event, Signal)]
