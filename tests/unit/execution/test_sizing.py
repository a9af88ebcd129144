"""Sizing: targets within the cap, orders within the largest size, whole lot steps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execution.core.sizing import SizingPolicy, order_for, target_position_lots, to_steps
from tests.unit.execution.helpers import signal

POLICY = SizingPolicy(max_position_lots=1.0, max_order_lots=0.3, lot_step=0.01)


@pytest.mark.parametrize(
    ("direction", "strength", "expected"),
    [("long", 1.0, 1.0), ("short", 0.5, -0.5), ("flat", 0.9, 0.0), ("long", 0.333, 0.33), ("short", 0.004, 0.0)],
)
def test_target_when_signal_then_direction_times_strength_times_cap(
    direction: str, strength: float, expected: float
) -> None:
    assert target_position_lots(signal(1, 0, direction, strength), POLICY) == expected


def test_target_when_below_min_strength_then_flat() -> None:
    policy = SizingPolicy(1.0, 1.0, 0.01, min_strength=0.5)
    assert target_position_lots(signal(1, 0, "long", 0.4), policy) == 0.0


@given(
    st.sampled_from(["long", "short", "flat"]),
    st.floats(0, 1),
    st.floats(-3, 3, allow_nan=False),
    st.sampled_from([0.01, 0.1, 0.25]),
)
def test_order_when_any_signal_and_position_then_capped_and_whole_steps(
    direction: str, strength: float, current: float, lot_step: float
) -> None:
    policy = SizingPolicy(max_position_lots=2.0, max_order_lots=0.5, lot_step=lot_step)
    target = target_position_lots(signal(1, 0, direction, strength), policy)
    assert abs(target) <= policy.max_position_lots
    sized = order_for(target, current, policy)
    if sized is None:
        assert to_steps(target, lot_step) == to_steps(current, lot_step)
        return
    side, lots = sized
    assert 0 < lots <= policy.max_order_lots
    assert abs(lots / lot_step - round(lots / lot_step)) < 1e-6
    assert (side == "buy") == (target > current)
