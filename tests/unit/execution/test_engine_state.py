"""The engine state held by the core: its derived answers agree with the orders it shows, whatever happened."""

from __future__ import annotations

import threading
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from execution.core.broker import EXPIRED_PREFIX
from execution.core.engine_state import EngineState
from execution.core.limits import RiskLimits
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, execution_settings
from tickwave.config import MarketSettings
from tickwave.contracts import (
    Message,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    RiskEvent,
)

LIMITS = RiskLimits.from_settings(execution_settings(), market=MarketSettings(hours="always"))
ORDERS = 6

# One step: (what, order number, lots in tenths, milliseconds later).
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["submit", "accept", "fill", "fill_final", "reject", "cancel", "expire", "deny", "retire"]),
        st.integers(0, ORDERS - 1),
        st.integers(1, 5),
        st.integers(0, 400_000),
    ),
    max_size=40,
)


def _event(what: str, number: int, tenths: int, at_ms: int, fills: int) -> Message:
    common: dict[str, Any] = {
        "client_order_id": f"tw-{number}",
        "signal_id": f"s{number}",
        "symbol": "EURUSD",
        "model_id": "m",
        "model_version": 1,
        "event_at_ms": at_ms,
    }
    if what == "submit":
        side = "buy" if number % 2 else "sell"
        return OrderSubmitted(**common, side=side, quantity_lots=0.5, order_type="market")
    if what == "accept":
        return OrderAccepted(**common, broker_order_id=f"b{number}")
    if what in ("fill", "fill_final"):
        lots = tenths / 10
        return OrderFilled(
            **common,
            fill_id=f"f{number}-{fills}",
            fill_price=1.1,
            fill_lots=lots,
            cumulative_lots=lots,
            is_final=what == "fill_final",
        )
    if what == "reject":
        return OrderRejected(**common, reason="no money")
    if what == "deny":
        return OrderDenied(**common, reason="limit", check="max_position")
    reason = f"{EXPIRED_PREFIX} 10 s" if what == "expire" else "operator"
    return OrderCanceled(**common, reason=reason)


@settings(max_examples=150, deadline=None)
@given(STEPS)
def test_engine_state_when_any_events_then_its_derived_answers_match_its_orders(
    steps: list[tuple[str, int, int, int]],
) -> None:
    state = EngineState(LIMITS)
    now_ms = WEDNESDAY_NOON_MS
    for step, (what, number, tenths, later_ms) in enumerate(steps):
        now_ms += later_ms
        if what == "retire":
            state.retire(now_ms - 300_000)
        else:
            state.apply(_event(what, number, tenths, now_ms, step))

        orders = state.orders
        assert state.working_orders() == [order for order in orders.values() if order.is_working]
        for number in range(ORDERS):
            cid = f"tw-{number}"
            assert state.status_of(cid) == (orders[cid].status if cid in orders else None)
            assert state.is_decided(f"s{number}") is (f"s{number}" in state.decided_signals)
        open_times = [order.created_at_ms for order in orders.values() if not order.is_terminal]
        assert state.window_start(now_ms) == min([now_ms, *open_times])
        start_ms, window = state.orders_in_window(now_ms - 100_000)
        assert start_ms == state.window_start(now_ms - 100_000)
        assert window == {cid: order for cid, order in orders.items() if order.created_at_ms >= start_ms}
        times = [order.created_at_ms for order in window.values()]
        assert times == sorted(times)


def test_engine_state_when_written_from_another_thread_then_the_change_is_applied() -> None:
    # The control listener applies an operator's halt from its own thread (under the service's lock).
    state = EngineState(LIMITS)
    halt = RiskEvent(
        risk_event_id="halt-1",
        kind="trading_state",
        severity="critical",
        trading_state="HALTED",
        detail="operator halt",
        occurred_at_ms=WEDNESDAY_NOON_MS,
    )
    outcome: list[object] = []
    control = threading.Thread(target=lambda: outcome.append(state.apply(halt)))

    control.start()
    control.join(10)

    assert outcome == [True]
    assert state.view.trading_state == "HALTED"
