"""Letting go of what the live process reads no more: ended orders and old decisions.

Before the window a periodic reconciliation compares (from the oldest working order when that
is older), less how far the broker reads back before it (``Broker.lookback_ms``) and
:data:`~execution.core.engine_state.RETIRE_MARGIN_MS`, no broker answer about an ended order is
compared again, so the engine's state and the paper broker's book let go of those orders,
their bookings and the signals decided before then
(:meth:`execution.core.engine_state.EngineState.retire`); the journal keeps everything. Once a
minute, on the service's broker poll. A replay keeps every order (it counts round trips from them).
"""

from __future__ import annotations

import logging

from execution.core.broker import Broker
from execution.core.engine import Engine
from execution.core.engine_state import RETIRE_MARGIN_MS

logger = logging.getLogger(__name__)

RETIRE_EVERY_MS = 60_000


class Retirement:
    """When the engine and the broker let go of the orders that ended past the reconciliation's window."""

    def __init__(self, engine: Engine, window_s: float, *, keep_every_order: bool = False) -> None:
        """Retire what ended before the window of ``window_s`` (and more, below); ``keep_every_order``: never."""
        self.engine = engine
        self.window_ms = None if keep_every_order else int(window_s * 1000)
        self.retired_at_ms = engine.clock.now_ms()

    def when_due(self, broker: Broker) -> None:
        """A minute after the last time, let the engine and ``broker`` go of what ended before the horizon."""
        now_ms = self.engine.clock.now_ms()
        if self.window_ms is None or now_ms - self.retired_at_ms < RETIRE_EVERY_MS:
            return
        self.retired_at_ms = now_ms
        # The window a periodic reconciliation compares starts at the oldest working order if older, and
        # the broker may return orders from ``lookback_ms`` before it: every order it may return stays known
        # (one it returned and the journal had let go would be adopted again, its fills booked twice).
        start_ms = self.engine.state.window_start(now_ms - self.window_ms)
        before_ms = start_ms - broker.lookback_ms - RETIRE_MARGIN_MS
        orders, ledger = self.engine.retire(before_ms), broker.retire(before_ms)
        if orders or ledger:
            logger.info("let go of %d ended orders (broker: %d) created before %d", orders, ledger, before_ms)
