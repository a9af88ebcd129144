"""The execution's answer to a journal short of space (a full disk): halt, decide nothing, resume by itself.

:class:`JournalSpace` looks at the journal's space (:meth:`Journal.space_problem_now`, at most
every ``SPACE_CHECK_EVERY_MS``) and is told of refused writes (:class:`JournalUnavailable`).
Either way it records a critical ``trading_state`` HALTED event of check ``journal_disk``
(into the journal's preallocated headroom; failing that, applied in memory and logged) and
remembers the state trading was in. While :attr:`JournalSpace.problem` is set the service
decides no signal. Once the space is back, trading returns to that state (unless another
state change came in between: an operator's halt stays a halt) and a reconciliation is due,
for the broker answers the journal refused meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Final

from execution.core.engine import Engine
from execution.core.engine_state import TRADING_STATE
from execution.core.memory_journal import JournalLike
from execution.journal import JournalUnavailable
from execution.reconciler import Reconciler
from tickwave.contracts import Message, RiskEvent, TradingState

logger = logging.getLogger(__name__)

DISK_CHECK: Final = "journal_disk"  # the check of the halt a journal short of space causes
SPACE_CHECK_EVERY_MS: Final = 100  # how often the journal's free space is looked at (a statvfs)


class JournalSpace:
    """Halts trading while the journal is short of space and lifts that halt once it is not."""

    def __init__(
        self, engine: Engine, journal: JournalLike, record: Callable[[Message], None], reconciler: Reconciler
    ) -> None:
        """``record`` journals, applies and publishes one event (it raises JournalUnavailable when refused)."""
        self.engine = engine
        self.journal = journal
        self.reconciler = reconciler
        self._record = record
        self.problem: str | None = None  # why the journal takes no decisions now (None: it does)
        # The trading state before the disk halted trading, while that halt is the latest state change.
        self.state_before: TradingState | None = None
        self._checked_at_ms: int | None = None
        self._refusals = _Refusals(self)

    def replayed(self, recorded: Sequence[Message]) -> None:
        """Take up a disk halt found at the journal's end (a restart while the disk was full)."""
        before: TradingState = "ACTIVE"
        for event in recorded:
            if isinstance(event, RiskEvent) and event.kind == TRADING_STATE:
                is_disk_halt = event.check == DISK_CHECK and event.trading_state == "HALTED"
                self.state_before = before if is_disk_halt else None
                before = event.trading_state
        if self.state_before is not None:
            self.problem = "the journal's disk was full before the restart"

    def note_applied(self, event: Message) -> None:
        """Follow the trading state: after another change, the disk's halt is no longer lifted by itself."""
        if type(event) is RiskEvent and event.kind == TRADING_STATE and event.check != DISK_CHECK:  # never subclassed
            self.state_before = None

    def check(self, *, force: bool = False) -> bool:
        """Halt when short of space, resume when not; return True when decisions may be made."""
        now_ms = self.engine.clock.now_ms()
        checked = self._checked_at_ms
        if not force and checked is not None and now_ms - checked < SPACE_CHECK_EVERY_MS:
            return self.problem is None
        self._checked_at_ms = now_ms
        problem = self.journal.space_problem_now()
        if problem is not None and self.problem is None:
            self._halt(problem)
        elif problem is None and self.problem is not None:
            self._resume()
        return self.problem is None

    def refused(self, exc: JournalUnavailable) -> None:
        """A journal write was refused: halt (once); the space is looked at again at the next check."""
        logger.critical("instance=%s %s", self.engine.instance_id, exc)
        if self.problem is None:
            self._halt(str(exc))
        self._checked_at_ms = self.engine.clock.now_ms()

    def refusals(self) -> _Refusals:
        """Turn a journal write refused inside the block into a halt (see :meth:`refused`); the block ends there."""
        return self._refusals

    def _halt(self, problem: str) -> None:
        self.problem = problem
        before = self.engine.trading_state
        detail = f"HALTED: the journal cannot take decisions, no signal is decided until space is back: {problem}"
        event = self.engine.trading_state_event("HALTED", detail, DISK_CHECK)
        logger.critical("instance=%s %s (trading was %s)", self.engine.instance_id, detail, before)
        try:
            self._record(event)
        except JournalUnavailable as exc:
            logger.critical(
                "instance=%s the halt could not be journaled (%s): halted in memory", self.engine.instance_id, exc
            )
            self.engine.apply(event)
        if self.state_before is None:  # not when halting again in a failed resume: HALTED is ours then
            self.state_before = before

    def _resume(self) -> None:
        problem, self.problem = self.problem, None
        before = self.state_before or "ACTIVE"
        detail = f"{before}: the journal takes decisions again (it could not: {problem})"
        try:
            if self.engine.trading_state == "HALTED" and self.state_before is not None and before != "HALTED":
                now_ms = self.engine.clock.now_ms()
                self._record(
                    self.engine.events.risk(TRADING_STATE, "warning", detail, now_ms, before, check=DISK_CHECK)
                )
            else:
                self._record(self.engine.report("journal_space_back", detail, "warning"))
        except JournalUnavailable as exc:
            self.refused(exc)
            return
        self.state_before = None
        logger.warning("instance=%s %s", self.engine.instance_id, detail)
        self.reconciler.is_due = True  # broker answers the journal refused meanwhile


class _Refusals:
    """The block of :meth:`JournalSpace.refusals`: one object, reused (entered for every tick and signal).

    A plain context manager: a ``contextlib.contextmanager`` builds a generator and its
    wrapper on every entry (~1.5 us; three a replayed row).
    """

    def __init__(self, space: JournalSpace) -> None:
        self._space = space

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if isinstance(exc, JournalUnavailable):
            self._space.refused(exc)
            return True
        return False
