"""The order lifecycle table: no illegal path is ever taken; the index of orders by creation time."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execution.core.state import (
    TERMINAL,
    TRANSITIONS,
    CreationIndex,
    IllegalTransition,
    Order,
    OrderStatus,
    is_allowed,
    moved,
    transition,
)

STATUSES = list(OrderStatus)


def _order() -> Order:
    return Order("tw-1", "s-1", "EURUSD", "buy", 1.0, "m", 1, 0)


@given(st.lists(st.sampled_from(STATUSES), max_size=12))
def test_transition_when_any_path_then_only_table_pairs_succeed(path: list[OrderStatus]) -> None:
    current = OrderStatus.NEW
    for wanted in path:
        if (current, wanted) in TRANSITIONS:
            current = transition("tw-1", current, wanted)
            assert current == wanted
        else:
            with pytest.raises(IllegalTransition):
                transition("tw-1", current, wanted)


@given(st.lists(st.sampled_from(STATUSES), max_size=12))
def test_order_moved_when_any_path_then_terminal_states_are_never_left(path: list[OrderStatus]) -> None:
    order = _order()
    visited = [order.status]
    for wanted in path:
        try:
            order = moved(order, wanted)
        except IllegalTransition:
            continue
        visited.append(order.status)
    for before, after in pairwise(visited):
        assert before not in TERMINAL
        assert is_allowed(before, after)


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [
        (OrderStatus.FILLED, OrderStatus.CANCELED),
        (OrderStatus.REJECTED, OrderStatus.ACCEPTED),
        (OrderStatus.NEW, OrderStatus.FILLED),
        (OrderStatus.ACCEPTED, OrderStatus.SUBMITTED),
        (OrderStatus.CANCELED, OrderStatus.FILLED),
        (OrderStatus.ACCEPTED, OrderStatus.ACCEPTED),
    ],
)
def test_transition_when_pair_is_illegal_then_raises(from_status: OrderStatus, to_status: OrderStatus) -> None:
    with pytest.raises(IllegalTransition, match="illegal transition"):
        transition("tw-1", from_status, to_status)


def test_table_when_inspected_then_every_state_is_reachable_from_new_and_terminals_are_sinks() -> None:
    reachable = {OrderStatus.NEW}
    frontier = [OrderStatus.NEW]
    while frontier:
        current = frontier.pop()
        for before, after in TRANSITIONS:
            if before == current and after not in reachable:
                reachable.add(after)
                frontier.append(after)
    assert reachable == set(OrderStatus)
    assert not [pair for pair in TRANSITIONS if pair[0] in TERMINAL]


def test_order_moved_when_filled_then_keeps_fill_ids_and_broker_id() -> None:
    order = moved(moved(_order(), OrderStatus.SUBMITTED), OrderStatus.ACCEPTED, broker_order_id="b-1")
    order = moved(order, OrderStatus.PARTIALLY_FILLED, filled_lots=0.4, fill_id="f1")
    order = moved(order, OrderStatus.FILLED, filled_lots=1.0, fill_id="f2")
    assert (order.broker_order_id, order.fill_ids, order.filled_lots, order.is_terminal) == (
        "b-1",
        ("f1", "f2"),
        1.0,
        True,
    )


def test_creation_index_when_orders_share_a_millisecond_then_they_come_back_in_the_order_added() -> None:
    index = CreationIndex()
    for created_at_ms, client_order_id in [(10, "tw-c"), (20, "tw-b"), (20, "tw-a"), (30, "tw-d")]:
        index.add(created_at_ms, client_order_id)
    index.add(20, "tw-0")  # the clock stepped back: after the orders of its millisecond, before the later one

    assert index.since(0) == ["tw-c", "tw-b", "tw-a", "tw-0", "tw-d"]
    assert index.since(20) == ["tw-b", "tw-a", "tw-0", "tw-d"]
    assert index.since(21) == ["tw-d"]
    assert index.retire(30, lambda client_order_id: client_order_id != "tw-a") == ["tw-c", "tw-b", "tw-0"]
    assert index.since(0) == ["tw-a", "tw-d"]


@pytest.mark.parametrize("working", [OrderStatus.SUBMITTED, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED])
@pytest.mark.parametrize("end", [OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED])
def test_table_when_an_order_is_working_then_a_fill_a_cancel_or_an_expiry_can_end_it(
    working: OrderStatus, end: OrderStatus
) -> None:
    # A halt cancels every working order and the reconciliation expires what the broker lost:
    # neither may meet a working order the table cannot end.
    assert is_allowed(working, end)
    assert transition("tw-1", working, end) == end


def test_order_moved_when_a_partially_filled_order_is_canceled_then_its_fills_stand() -> None:
    order = moved(moved(_order(), OrderStatus.SUBMITTED), OrderStatus.PARTIALLY_FILLED, filled_lots=0.4, fill_id="f1")
    order = moved(order, OrderStatus.CANCELED)
    assert (order.status, order.fill_ids, order.filled_lots, order.is_terminal) == (
        OrderStatus.CANCELED,
        ("f1",),
        0.4,
        True,
    )
