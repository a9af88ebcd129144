"""The imperative shell around the engine: journal first, then broker, then the audit bus.

Order of effects for a signal that passes the gate:

1. the signal, the intent and ``OrderSubmitted`` are appended to the journal;
2. the engine applies ``OrderSubmitted`` (the signal now counts as decided);
3. the journal is fsynced (once for all the signals that arrived together);
4. the account's fence is confirmed (``execution.fence``: a Kafka transaction that also commits
   the signals consumed; a process fenced by another one for the same account stops here);
5. the broker is called; then the signal, the intent and ``OrderSubmitted`` are published
   (the audit bus is not on the decision path), and each answer is journaled, applied and
   published.

A crash before (1) leaves no trace, so the redelivered signal is decided afresh; a crash
between (1) and (3) leaves a recorded order the broker may or may not have, which
reconciliation on the next start settles. Either way a signal never yields two orders.

Every entry point takes the one lock: the control listener's thread and the signal loop
never interleave inside a decision. An operator command is queued as soon as it is read and
applied by whichever thread holds the lock first (:meth:`handle_control`): the signal loop
applies it before its next decision, after sending the orders it decided before the command
was read. So a halt is in force for every signal decided after it was read, and is on the
journal before any of their decisions; it waits at most for the orders already decided to be
sent (the fsync, the fence's transaction, their broker calls), never for the rest of a batch
nor for a lock the loop's next batch takes first.

A full disk: once the journal is short of space (:meth:`Journal.space_problem_now`, looked
at before each batch of signals and with each broker poll) or refuses a write
(:class:`JournalUnavailable`), the service records a critical ``trading_state`` HALTED event
(check ``journal_disk``; written into the journal's preallocated headroom, or, failing
that, applied in memory and logged) and decides no signal: :meth:`handle_signals` returns
how many it decided, and the loop reads the rest again later instead of committing them.
Nothing is sent that is not journaled, and events the journal refused (a broker's late
answers) are recovered by the reconciliation that runs once space is back. Then the
trading state returns to what it was before the halt, by itself.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from execution.core.broker import Broker
from execution.core.engine import Engine, replay
from execution.core.engine_state import SYMBOL_HALTED, SYMBOL_RESUMED, TRADING_STATE
from execution.core.memory_journal import JournalLike, MemoryJournal
from execution.fence import Consumed, Fence, Fenced, Unfenced
from execution.journal_space import JournalSpace
from execution.reconciler import Reconciler
from execution.retirement import Retirement
from tickwave.audit_chain import ChainLink
from tickwave.config import StreamsSettings, SymbolSpec
from tickwave.contracts import (
    ControlCommand,
    Message,
    OrderIntent,
    OrderRejected,
    RiskEvent,
    Signal,
    Tick,
    decode,
)
from tickwave.errors import ContractError
from tickwave.validation import Rejection, SpikeFilter, ValidationRules, check_decoded, check_raw

logger = logging.getLogger(__name__)

_STATE_KINDS: Final = frozenset({TRADING_STATE, SYMBOL_HALTED, SYMBOL_RESUMED})


def _changes_trading_state(events: Sequence[Message]) -> bool:
    # Whether one of ``events`` changes the trading state (its write is fsynced: a halt survives a restart).
    # Exact types (contract messages are never subclassed): an isinstance that misses costs ~65 ns, this ~12.
    for event in events:
        if type(event) is RiskEvent and event.kind in _STATE_KINDS:
            return True
    return False


class Publisher(Protocol):
    """Where audit events go (``orders.events`` in production).

    Every journaled event is published with its journal position; the publisher keeps
    the position up to which everything was delivered, so a restart republishes only
    the tail a crash may have lost (the warehouse drops the duplicates by event id).
    An order event comes with its link of the audit hash chain, computed by the journal.
    """

    def publish(self, message: Message, key: str, position: int, link: ChainLink | None = None) -> None:
        """Send one message, keyed (by symbol where there is one), with its chain link if it has one."""
        ...

    def resume_position(self) -> int:
        """Return the first journal position not known to be delivered."""
        ...

    def flush(self, timeout_s: float) -> int:
        """Wait for delivery; return how many messages are still pending."""
        ...


@dataclass
class TickChecks:
    """The dataflow's tick validation, kept per symbol by the execution process (one shared implementation)."""

    rules: ValidationRules = field(default_factory=ValidationRules)
    streams: StreamsSettings = field(default_factory=StreamsSettings)  # the spike filter's limits (streams.spike_*)
    filters: dict[str, SpikeFilter] = field(default_factory=dict)
    rejected: int = 0  # ticks not used for prices, by any check

    @classmethod
    def from_settings(cls, streams: StreamsSettings, symbols: Mapping[str, SymbolSpec]) -> TickChecks:
        """The same limits as the dataflow's (``streams.*``, each symbol's bounds)."""
        return cls(ValidationRules.for_symbols(symbols, streams.max_tick_lead_ms), streams)

    def spike_filter(self, symbol: str) -> SpikeFilter:
        """Return the symbol's spike filter (created on its first tick)."""
        found = self.filters.get(symbol)
        if found is None:
            found = self.filters[symbol] = SpikeFilter.from_settings(self.streams)
        return found

    def skip(self, check: str, reason: str) -> None:
        """Count a tick not used for prices; log the first ten and every thousandth."""
        self.rejected += 1
        if self.rejected <= 10 or self.rejected % 1000 == 0:
            logger.warning("tick not used for prices (%s: %s); %d skipped so far", check, reason, self.rejected)


# An order journaled for its broker call, and the messages of that write with their journal positions. A plain
# tuple: a NamedTuple's constructor runs in Python, once per order on the decision path.
_Journaled = tuple[OrderIntent, tuple[tuple[Message, int], ...]]


def decode_signal(raw: bytes) -> Signal | None:
    """Decode a signal; log an invalid one with its reason and return None."""
    try:
        return decode(raw, Signal)
    except ContractError as exc:
        logger.error("quarantined invalid signal: %s raw=%r", exc.reason, exc.raw[:200])
        return None


class ExecutionService:
    """Engine + journal + broker + publisher, driven by the Kafka loops or by tests."""

    def __init__(
        self,
        engine: Engine,
        journal: JournalLike,
        broker: Broker,
        publisher: Publisher,
        tick_checks: TickChecks | None = None,
        reconcile_every_s: float = 10.0,
        reconcile_window_s: float = 86_400.0,
        fence: Fence | None = None,
        *,
        keep_every_order: bool = False,
    ) -> None:
        self.engine = engine
        self.fence = fence or Unfenced()
        self.journal = journal
        self.publisher = publisher
        self._publishes = not (getattr(publisher, "discards_all", False) and isinstance(journal, MemoryJournal))
        self.tick_checks = tick_checks or TickChecks()
        self.reconciler = Reconciler(engine, broker, self._record_all, reconcile_every_s, reconcile_window_s)
        self.broker = broker
        self.lock = threading.RLock()
        # Commands read by the control listener and not yet applied, in the order read (see handle_control).
        self._controls: deque[ControlCommand] = deque()
        self.last_signal: tuple[str, int] | None = None  # for the health report (adapters.health): (signal_id, at ms)
        self.broker_answered_at_ms: int | None = None  # and when the broker last answered
        self.space = JournalSpace(engine, journal, self._record, self.reconciler)
        self.retirement = Retirement(engine, reconcile_window_s, keep_every_order=keep_every_order)

    @property
    def broker(self) -> Broker:
        """The venue orders go to (the reconciliation compares with the same one)."""
        return self._broker

    @broker.setter
    def broker(self, broker: Broker) -> None:
        # Replaceable after build (a benchmark wraps it to time its calls): the reconciler follows.
        self._broker = self.reconciler.broker = broker

    def start(self) -> list[str]:
        """Replay the journal, reconcile with the broker; return the differences (published as risk events too)."""
        with self.lock:
            recorded = list(self.journal.events())
            self.space.replayed(recorded)
            replay(self.engine, recorded)
            for position in range(self.publisher.resume_position(), len(recorded)):
                self._publish(recorded[position], position)
            self.journal.drop_links_before(len(recorded))  # delivered before the restart: not needed again
            self.journal.release_loaded()  # the whole history: the state holds what it needs of it
            differences: list[str] = []
            with self.space.refusals():
                differences = self.reconciler.at_start()
                self._record(self.engine.report("started", f"{len(differences)} reconciliation differences", "info"))
            self.broker_answered_at_ms = self.reconciler.reconciled_at_ms
            logger.info(
                "started instance=%s broker=%s %s", self.engine.instance_id, self.broker.name, self.engine.status()
            )
            self.space.check(force=True)
            return differences

    def handle_signal(self, signal: Signal) -> bool:
        """Decide on a signal; send its order if the gate lets it through. False: not decided (journal full)."""
        return self.handle_signals([signal]) == 1

    def handle_signals(self, signals: Sequence[Signal], consumed: Consumed | None = None) -> int:
        """Decide on signals that arrived together; one fsync covers all their orders (group commit).

        Each decision sees the orders decided before it as working orders (the limits
        count them), so deciding several before any broker call is as safe as one at a
        time; only the fsync is shared. Returns how many, from the first, were decided (or seen
        before): fewer when the journal is short of space; the caller reads the rest again.
        ``consumed`` (how far they were read) goes with the fence's next confirmation once all are decided.
        """
        with self.lock:
            if self._controls:
                self._apply_controls()
            if not self.space.check():
                return 0
            to_send: list[_Journaled] = []
            decided = 0  # how many, from the first
            with self.space.refusals():
                for signal in signals:
                    if self._controls:  # read meanwhile: the orders decided before it first, then the command
                        self._send(to_send)
                        to_send = []
                        self._apply_controls()
                    decision = self.engine.on_signal(signal)
                    if decision.is_duplicate:
                        logger.debug("signal=%s seen before; ignored", signal.signal_id)
                        decided += 1
                        continue
                    self.last_signal = (signal.signal_id, self.engine.clock.now_ms())
                    if decision.intent is None:
                        self._publish(signal, self.journal.append(signal))
                        self._record_all(decision.events)
                    else:  # applied now: a repeat in this batch is seen
                        to_send.append(self._journal_order(decision.intent, received=signal))
                    decided += 1
            if decided == len(signals):
                self.fence.stage(consumed or {})
            self._send(to_send)
            return decided

    def _journal_order(self, intent: OrderIntent, received: Signal | None = None) -> _Journaled:
        """Journal an intent and its OrderSubmitted and apply the latter (the broker call comes after the fsync).

        ``received``: the signal the intent answers, journaled in the same write (one
        syscall on the decision path; a kill leaves the three together or none of them).
        All three are published after the broker call, with their journal positions (none for a fast replay's bus).
        """
        submitted = self.engine.submission(intent, self.broker.venue())  # the broker computed it once
        messages: tuple[Message, ...] = (intent, submitted) if received is None else (received, intent, submitted)
        positions = self.journal.append_all(messages)
        self.engine.apply(submitted)
        return intent, tuple(zip(messages, positions, strict=True)) if self._publishes else ()

    def _send(self, to_send: Sequence[_Journaled]) -> None:
        """Fsync once, then call the broker for each journaled order; publish what was journaled; record its answers."""
        if not to_send:
            return
        with self.space.refusals():  # orders journaled and not sent: the reconciliation settles them
            self.journal.sync()  # every OrderSubmitted is on disk before any broker call
            self._confirm_fence()  # and this process still owns the account
            for intent, journaled in to_send:
                answers = self.broker.submit(intent)
                for message, position in journaled:
                    self._publish(message, position)
                self._record_all(answers)
                if any(type(answer) is OrderRejected for answer in answers):
                    self.reconciler.is_due = True  # after any broker error, at the next poll

    def keep_fence(self, force: bool = False) -> None:
        """Confirm the fence when due (an idle process learns within 1 s), or now; no lock: a halt never waits."""
        if force or self.fence.is_due():
            self._confirm_fence()

    def _confirm_fence(self) -> None:
        try:
            self.fence.confirm()
        except Fenced as exc:
            logger.critical("%s: this process stops deciding and exits", exc)
            with self.lock:  # no halt: it would cancel working orders the new owner now tracks
                self._record(self.engine.report("fenced", f"{exc}; this process stopped deciding", "critical"))
            raise

    def handle_tick_bytes(self, raw: bytes) -> None:
        """Check one raw tick exactly as the dataflow does (``tickwave.validation``), then handle it."""
        self._handle_checked(check_raw(raw, self.tick_checks.rules, self.engine.clock.now_ms()))

    def handle_decoded_tick(self, tick: Tick) -> None:
        """Handle a tick decoded from its message, checked as :meth:`handle_tick_bytes` checks after its decode."""
        self._handle_checked(check_decoded(tick, self.tick_checks.rules, self.engine.clock.now_ms()))

    def _handle_checked(self, checked: Tick | Rejection) -> None:
        if isinstance(checked, Rejection):
            self.tick_checks.skip(checked.check, checked.reason)
            return
        self.handle_tick(checked)

    def handle_tick(self, tick: Tick) -> None:
        """Price from a tick that passed the dataflow's spike filter; then let the breakers look.

        The dataflow quarantines what it rejects; here a rejected tick is only skipped (and
        counted), so one bad print can neither trip the flash-crash halt, nor fill a paper
        order at a bad price, nor move the day's P&L.
        """
        with self.lock:
            if self._controls:
                self._apply_controls()
            reason = self.tick_checks.spike_filter(tick.symbol).check(tick)
            if reason is not None:
                self.tick_checks.skip("spike", reason)
                return
            self.broker.on_tick(tick)
            with self.space.refusals():
                if risk_events := self.engine.on_tick(tick):  # mostly none: a tick is a price
                    self._record_all(risk_events)
                stop = self.engine.protective_stop(tick)
                if self.space.problem is None and (stop.events or stop.intents):  # none the journal cannot record
                    self._record_all(stop.events)
                    self._send([self._journal_order(intent) for intent in stop.intents])

    def handle_control(self, command: ControlCommand) -> None:
        """Apply an operator command before any later decision; a halt is fsynced so it survives a restart.

        Queued, then applied by whichever thread holds the lock first: this one once it has the
        lock, or the signal loop at its next step (:meth:`handle_signals` before each decision,
        :meth:`handle_tick`, :meth:`poll_broker`). Returns once the command is applied, so the
        caller may commit it; a command whose application raised stays queued and raises here.
        """
        self._controls.append(command)
        with self.lock:
            self._apply_controls()

    def _apply_controls(self) -> None:
        # Under the lock, no order journaled and not yet sent: the queued commands in order, each
        # dequeued once applied.
        while self._controls:
            self._apply_control(self._controls[0])
            self._controls.popleft()

    def _apply_control(self, command: ControlCommand) -> None:
        outcome = self.engine.on_control(command)
        if outcome.is_duplicate:
            return
        with self.space.refusals():
            self._publish(command, self.journal.append(command))
            self.engine.apply(command)
            for event in outcome.events:
                self._record(event)
                logger.warning("control %s: %s", command.command, getattr(event, "detail", event))
            self._send([self._journal_order(intent) for intent in outcome.intents])

    def refuse_control(self, reason: str) -> None:
        """Record a control message that was not acted on (unsigned, wrongly signed, stale, invalid)."""
        self._refuse("control_refused", reason)

    def refuse_signal(self, reason: str) -> None:
        """Record a message on ``signals`` that was not decided: not signed by the dataflow."""
        self._refuse("signal_refused", reason)

    def _refuse(self, kind: str, reason: str) -> None:
        with self.lock:
            with self.space.refusals():
                self._record(self.engine.report(kind, reason, "critical"))

    def poll_broker(self) -> None:
        """Collect late broker events (paper latency fills, MT5 deal updates); reconcile when due."""
        with self.lock:
            if self._controls:
                self._apply_controls()
            with self.space.refusals():  # events refused: the reconciliation after the space is back
                events = self.broker.poll()
                self.broker_answered_at_ms = self.engine.clock.now_ms()
                self._record_all(events)
                if any(type(event) is OrderRejected for event in events):
                    self.reconciler.is_due = True  # after any broker error
                if self.space.check() and self.reconciler.is_time(self.engine.clock.now_ms()):
                    self.reconcile_now()
                self.retirement.when_due(self.broker)

    def reconcile_now(self) -> list[str]:
        """Compare journal and broker now (see :meth:`Reconciler.now`); return the differences and mismatches."""
        with self.lock:
            return self.reconciler.now()

    def _record_all(self, events: Iterable[Message]) -> None:
        """Journal events that happened together in one write, then apply and publish them; then their follow-ups.

        One write (``Journal.append_all``): a broker reports an execution as an ``OrderFilled``
        and its ``Fill`` record, and a process killed between two separate writes had journaled
        (and booked) the fill without its record, which no restart could bring back: the
        warehouse's ``fills`` lacked a booked fill. Follow-ups (a halt after rejects or a loss,
        the cancellations a halt causes) come after the whole group, in the journal as in the
        engine, so a replay applies everything in the order it was decided. Trading-state
        changes are fsynced: a halt must survive a restart. Each ``Fill`` record is journaled
        with what the engine books for its execution (``Engine.booked``), so the warehouse
        reads the engine's position, round trip and realised P&L instead of deriving them again.
        """
        group = self.engine.booked(list(events))  # each Fill record carries the engine's booking
        if not group:
            return
        positions = self.journal.append_all(group, sync=_changes_trading_state(group))
        follow_ups: list[Message] = []
        assert len(positions) == len(group)  # one each, indexed below: a compiled zip(strict=True) is a Python call
        for index, event in enumerate(group):
            follow_ups += self.engine.apply(event)
            self._publish(event, positions[index])
            self.space.note_applied(event)
        for event in group:
            if type(event) is RiskEvent:
                for order in self.engine.cancellations_for(event):
                    follow_ups += self.broker.cancel(order, f"canceled by {event.kind}: {event.detail}")
        if follow_ups:
            self._record_all(follow_ups)

    def _record(self, event: Message) -> None:
        """Journal, apply and publish one event, then its follow-ups (see ``_record_all``)."""
        self._record_all([event])

    def _publish(self, message: Message, position: int) -> None:
        if self._publishes:  # not a fast replay's bus, which drops all (its memory journal keeps no chain link)
            self.publisher.publish(message, getattr(message, "symbol", ""), position, self.journal.pop_link(position))

    def close(self) -> None:
        """Flush the audit trail and close the broker and the journal."""
        with self.lock:
            pending = self.publisher.flush(10.0)
            if pending:
                logger.error("%d audit events were not delivered before shutdown", pending)
            self.broker.close()
            self.journal.close()
