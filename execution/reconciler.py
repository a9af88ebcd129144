"""When and over what the journal is compared with the broker: at start, every few seconds, after a reject.

The comparison itself is pure (:mod:`execution.core.reconcile`); this class asks the broker,
chooses the window (a periodic pass compares the orders created within
``reconcile_window_s`` and every order still working, not the whole history), adopts the
orders the broker has and the journal lacks, and hands every event it finds to the
service's record path (journal, apply, publish). A position that still differs on two
passes in a row moves trading to REDUCING.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from execution.core.broker import Broker, BrokerOrder
from execution.core.engine import Engine
from execution.core.reconcile import position_differences, reconcile_orders
from tickwave.contracts import Message

logger = logging.getLogger(__name__)


class Reconciler:
    """Journal vs broker for one execution service (called under the service's lock)."""

    def __init__(
        self,
        engine: Engine,
        broker: Broker,
        record_all: Callable[[Iterable[Message]], None],
        every_s: float = 10.0,
        window_s: float = 86_400.0,
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.record_all = record_all  # the service's record path: journal, apply, publish, follow-ups
        self.every_s = every_s
        self.window_s = window_s
        self.is_due = False  # set after a broker reject: compare at the next poll
        self.reconciled_at_ms = engine.clock.now_ms()
        self._mismatch_seen = False

    def is_time(self, now_ms: int) -> bool:
        """True when a pass is due: after a reject, or ``every_s`` after the last one."""
        return self.is_due or now_ms - self.reconciled_at_ms >= self.every_s * 1000

    def at_start(self) -> list[str]:
        """Compare every order and the positions; record and return the differences (before any signal)."""
        differences = self._reconcile(whole=True)
        differences += position_differences(self.engine.view.positions, self.broker.positions())
        self._report(differences)
        self.reconciled_at_ms = self.engine.clock.now_ms()
        return differences

    def now(self) -> list[str]:
        """Compare journal and broker now; catch up, adopt, and on a remaining mismatch move to REDUCING.

        A mismatch left after catching up (a position the broker and the journal disagree
        on) raises a critical ``reconcile_mismatch`` event and moves trading to REDUCING
        until an operator resumes.
        """
        engine = self.engine
        self.is_due = False
        self.reconciled_at_ms = engine.clock.now_ms()
        differences = self._reconcile()
        mismatches = position_differences(engine.view.positions, self.broker.positions())
        self._report(differences)
        # A position still different after catching up, on two passes in a row (not a deal in flight).
        persistent = mismatches and self._mismatch_seen
        self._mismatch_seen = bool(mismatches)
        if persistent:
            detail = "reconcile: " + "; ".join(mismatches)
            self.record_all([engine.report("reconcile_mismatch", detail, "critical")])
            if engine.trading_state == "ACTIVE":
                self.record_all([engine.trading_state_event("REDUCING", detail, "reconcile")])
        return differences + mismatches

    def _report(self, differences: list[str]) -> None:
        for difference in differences:
            logger.warning("reconcile instance=%s %s", self.engine.instance_id, difference)
            self.record_all([self.engine.report("reconcile_difference", difference)])

    def _reconcile(self, *, whole: bool = False) -> list[str]:
        """Adopt broker orders the journal lacks and record what the journal missed; return the order differences.

        ``whole``: compare every order (at start). Otherwise compare a window: orders created
        within ``window_s`` and every order the journal still has working
        (so an old working order's late fill is still caught), not the whole history each pass.
        """
        engine = self.engine
        now_ms = engine.clock.now_ms()
        since_ms: int | None = None
        journal = engine.orders
        if not whole:
            since_ms, journal = engine.orders_in_window(now_ms - int(self.window_s * 1000))
        found = reconcile_orders(journal, self._broker_orders(since_ms), now_ms, self.broker.venue())
        adopted = found.adopted
        if adopted:
            self.record_all(adopted)
            differences = found.differences
            journal = {cid: engine.orders[cid] for cid in (*journal, *(a.client_order_id for a in adopted))}
            found = reconcile_orders(journal, self._broker_orders(since_ms), now_ms)  # now their fills
            found.differences[:0] = differences
        self.record_all(found.events)
        return found.differences

    def _broker_orders(self, since_ms: int | None) -> dict[str, BrokerOrder]:
        """The broker's orders to compare, without those the journal settled before the window.

        A broker may return more than the window (the paper broker returns every order):
        an order the journal knows but left out of the window is finished and was compared
        before; taking it for one the journal lacks had adopted it again and booked its
        fills twice (found by the engine backtest of a two-day holdout).
        """
        orders = self.broker.orders(since_ms)
        if since_ms is None:
            return dict(orders)
        known = self.engine.orders
        return {
            cid: order
            for cid, order in orders.items()
            if cid not in known or known[cid].created_at_ms >= since_ms or not known[cid].is_terminal
        }
