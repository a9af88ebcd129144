"""The core's gate rules (``gate.rs``) against Python's own arithmetic and text, over many cases."""

from __future__ import annotations

from decimal import Decimal

import tickwave_core
from hypothesis import given, settings
from hypothesis import strategies as st

lots = st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
floats = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=400, deadline=None)
@given(current=lots, signed=lots)
def test_is_reducing_when_any_lots_then_only_towards_flat_without_crossing(current: Decimal, signed: Decimal) -> None:
    after = current + signed
    expected = current != 0 and abs(after) < abs(current) and (after == 0 or (after > 0) == (current > 0))
    assert tickwave_core.is_reducing(current, signed) is expected


@settings(max_examples=400, deadline=None)
@given(exposure=lots, signed=lots, limit=st.floats(min_value=0, max_value=2000))
def test_max_position_when_any_lots_then_denied_exactly_beyond_the_limit(
    exposure: Decimal, signed: Decimal, limit: float
) -> None:
    after = exposure + signed
    denial = tickwave_core.max_position_denial(exposure, signed, False, limit)
    if abs(after) > Decimal(repr(limit)):
        assert denial == ("max_position", f"position would be {after} lots (limit {limit})", "")
    else:
        assert denial is None
    assert tickwave_core.max_position_denial(exposure, signed, True, limit) is None


def test_max_position_when_exactly_at_the_limit_then_allowed() -> None:
    assert tickwave_core.max_position_denial(Decimal("1.5"), Decimal("0.5"), False, 2.0) is None
    assert tickwave_core.max_position_denial(Decimal("-1.5"), Decimal("-0.5"), False, 2.0) is None
    assert tickwave_core.max_position_denial(Decimal("1.5"), Decimal("0.51"), False, 2.0) is not None


@settings(max_examples=1000, deadline=None)
@given(quantity=floats, limit=floats)
def test_max_order_size_when_any_floats_then_pythons_comparison_and_repr(quantity: float, limit: float) -> None:
    expected = ("max_order_size", f"{quantity} lots exceeds {limit}", "") if quantity > limit else None
    assert tickwave_core.max_order_size_denial(quantity, limit) == expected


@settings(max_examples=1000, deadline=None)
@given(move=st.floats(min_value=0, max_value=1e6) | st.sampled_from([0.125, 0.375, 2.675, 1.005, 0.005]))
def test_flash_crash_words_when_any_move_then_pythons_two_decimals(move: float) -> None:
    assert tickwave_core.flash_crash_words("EURUSD", move, 5000) == f"EURUSD moved {move:.2f}% within 5000 ms"
    denial = tickwave_core.flash_crash_denial("EURUSD", move, 3.0, 5000)
    assert denial == (("flash_crash", f"EURUSD moved {move:.2f}% within 5000 ms", "symbol") if move > 3.0 else None)


@settings(max_examples=300, deadline=None)
@given(
    age=st.integers(-(2**40), 2**40), ttl=st.integers(0, 2**40), rejects=st.integers(0, 100), most=st.integers(1, 100)
)
def test_integer_checks_when_any_figures_then_denied_beyond_their_limits(
    age: int, ttl: int, rejects: int, most: int
) -> None:
    assert tickwave_core.signal_ttl_denial(age, ttl) == (
        ("signal_ttl", f"signal is {age} ms old (ttl {ttl} ms)", "") if age > ttl else None
    )
    assert tickwave_core.consecutive_rejects_denial(rejects, most) == (
        ("consecutive_rejects", f"{rejects} broker rejects in a row", "trading") if rejects >= most else None
    )
    assert tickwave_core.stale_price("X", None, age, ttl) == "no price for X yet"
    assert tickwave_core.stale_price("X", 0, age, ttl) == (f"latest X tick is {age} ms old" if age > ttl else None)
