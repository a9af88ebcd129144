"""Lots filled, as a reconciliation and a broker's order add them up: exactly, as money is."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from execution.core.broker import BrokerFill, BrokerOrder, cumulative_lots
from execution.core.reconcile import reconcile_orders
from execution.core.state import Order, OrderStatus
from tickwave.contracts import OrderFilled

_NOW_MS = 1_700_049_600_000


def _fills(*lots: float) -> tuple[BrokerFill, ...]:
    return tuple(BrokerFill(f"fill-{n}", 1.1, part, _NOW_MS + n) for n, part in enumerate(lots))


def test_reconcile_when_the_journal_missed_two_fills_then_their_cumulative_lots_are_exact() -> None:
    order = Order(
        "tw-1",
        "signal-1",
        "EURUSD",
        "buy",
        0.3,
        "model",
        1,
        _NOW_MS,
        status=OrderStatus.ACCEPTED,
        broker_order_id="paper-1",
    )
    at_broker = BrokerOrder("tw-1", "paper-1", "EURUSD", "buy", 0.3, OrderStatus.FILLED, _fills(0.1, 0.2))

    result = reconcile_orders({"tw-1": order}, {"tw-1": at_broker}, _NOW_MS + 10)

    filled = [event for event in result.events if isinstance(event, OrderFilled)]
    assert [event.cumulative_lots for event in filled] == [0.1, 0.3]  # a float sum says 0.30000000000000004
    assert [event.is_final for event in filled] == [False, True]
    assert at_broker.filled_lots == 0.3


@given(
    before=st.integers(min_value=0, max_value=10_000),
    parts=st.lists(st.integers(min_value=1, max_value=10_000), max_size=20),
)
def test_cumulative_lots_when_any_lots_then_each_total_is_the_exact_sum_as_a_float(
    before: int, parts: list[int]
) -> None:
    filled, lots = before / 100, [part / 100 for part in parts]  # lots of two decimals, as brokers step them

    totals = cumulative_lots(filled, _fills(*lots))

    exact = [sum((Decimal(repr(value)) for value in [filled, *lots[: n + 1]]), Decimal(0)) for n in range(len(lots))]
    assert totals == [float(total) for total in exact]
