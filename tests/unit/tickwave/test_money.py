from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickwave.money import (
    display_amount,
    display_lots,
    exact_sum,
    minor_units,
    notional,
    quantize,
    to_decimal,
    within_places,
)

amounts = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@given(values=st.lists(amounts, max_size=200), seed=st.integers())
def test_exact_sum_when_values_and_negations_in_any_order_then_exactly_zero(values: list[float], seed: int) -> None:
    mixed = values + [-value for value in values]
    random.Random(seed).shuffle(mixed)

    assert exact_sum(mixed) == 0


@given(values=st.lists(amounts, max_size=100), seed=st.integers())
def test_exact_sum_when_order_changes_then_result_identical(values: list[float], seed: int) -> None:
    shuffled = values[:]
    random.Random(seed).shuffle(shuffled)

    assert exact_sum(values) == exact_sum(shuffled)


def test_exact_sum_when_floats_would_drift_then_exact() -> None:
    fills = [0.1] * 10 + [0.2] * 5

    assert sum(fills) != 2.0  # what a float accumulator gets
    assert exact_sum(fills) == Decimal("2.0")


def test_to_decimal_when_float_then_shortest_repr_not_binary_expansion() -> None:
    assert to_decimal(1.1) == Decimal("1.1")
    assert to_decimal(1.08503) == Decimal("1.08503")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_to_decimal_when_not_finite_then_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        to_decimal(bad)


def test_notional_when_fx_lot_then_exact() -> None:
    assert notional(1.08503, 0.3, 100_000) == Decimal("32550.900")
    assert quantize(notional(1.08503, 0.3, 100_000)) == Decimal("32550.90")


def test_exact_sum_when_magnitudes_differ_by_hundreds_of_orders_then_still_exact() -> None:
    tiny, one = 1.187822554045285e-197, 1.0

    assert exact_sum([tiny, one, -tiny, -one]) == 0
    assert exact_sum([one, tiny]) - Decimal(1) == Decimal(repr(tiny))


def test_to_decimal_when_numpy_float_then_same_as_python_float() -> None:
    import numpy as np

    assert to_decimal(np.float64(1.1)) == Decimal("1.1")
    assert exact_sum(np.array([0.1, 0.2, -0.3])) == 0


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=30))
def test_to_decimal_when_floats_recur_then_each_conversion_is_exactly_its_repr(values: list[float]) -> None:
    # Recurring floats come from the cache: it must return exactly what a fresh conversion gives.
    for value in [*values, *values, -0.0, 0.0, -0.0]:
        assert str(to_decimal(value)) == str(Decimal(float.__repr__(value)))


def test_within_places_when_an_amount_has_more_decimals_then_only_it_is_rounded_half_even() -> None:
    assert str(within_places(Decimal("1.5"), 2)) == "1.5"  # exact: its own digits kept
    assert within_places(Decimal("0.125"), 2) == Decimal("0.12")
    assert within_places(Decimal("0.135"), 2) == Decimal("0.14")
    assert within_places(Decimal("12345678901234567890123456789.5"), 0) == Decimal("12345678901234567890123456790")


def _within_places_by_exponent(amount: Decimal, places: int) -> Decimal:
    # The definition: its exponent, read from as_tuple().
    exponent = amount.as_tuple().exponent
    return amount if isinstance(exponent, int) and exponent >= -places else quantize(amount, places)


@given(
    digits=st.one_of(st.just(0), st.integers(min_value=-(10**20), max_value=10**20)),
    trailing_zeros=st.integers(min_value=0, max_value=3),
    offset=st.integers(min_value=-3, max_value=3),
    is_negative=st.booleans(),
    places=st.integers(min_value=0, max_value=20),
)
def test_within_places_when_any_digits_and_exponent_then_as_the_exponent_says(
    digits: int, trailing_zeros: int, offset: int, is_negative: bool, places: int
) -> None:
    # Around the scale's exponent (-places + offset), with trailing zeros and signed zeros: the edges of the test.
    coefficient = tuple(int(digit) for digit in str(abs(digits) * 10**trailing_zeros))
    amount = Decimal((int(is_negative), coefficient, -places + offset))

    got, expected = within_places(amount, places), _within_places_by_exponent(amount, places)

    assert str(got) == str(expected)  # the same digits and exponent, not only the same value


@pytest.mark.parametrize(
    ("currency", "places"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3), ("CHF", 2), ("XAU", 2)]
)
def test_minor_units_when_iso_code_then_cldr_places(currency: str, places: int) -> None:
    assert minor_units(currency) == places


@pytest.mark.parametrize("currency", ["usd", "US", "USDX", "U$D", ""])
def test_minor_units_when_not_an_iso_code_then_refused(currency: str) -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        minor_units(currency)


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("-31.7692465", "USD", "-31.77"),
        ("-4.6336125", "USD", "-4.63"),
        ("0.125", "USD", "0.12"),  # half even: to the even cent
        ("0.135", "USD", "0.14"),
        ("-0.125", "EUR", "-0.12"),
        ("2.5", "JPY", "2"),  # JPY has no minor unit
        ("3.5", "JPY", "4"),
        ("-1234.5", "JPY", "-1234"),
        ("1.0005", "KWD", "1.000"),
        ("7", "USD", "7.00"),
        ("-0.004", "USD", "0.00"),  # no negative zero
        ("123456789012345678901234567890.125", "USD", "123456789012345678901234567890.12"),  # past float's digits
        ("1E+40", "USD", "10000000000000000000000000000000000000000.00"),
        ("0.000000000000000000005", "USD", "0.00"),
        ("0.005000000000000000001", "USD", "0.01"),  # just over the half
    ],
)
def test_display_amount_when_exact_then_at_the_minor_unit_half_even(amount: str, currency: str, shown: str) -> None:
    assert display_amount(Decimal(amount), currency) == shown
    assert display_amount(amount, currency) == shown


def test_display_amount_when_float_then_refused() -> None:
    with pytest.raises(TypeError, match="never from a float"):
        display_amount(2.675, "USD")  # binary 2.67499999...: a float would round it down, its text says 2.675


@pytest.mark.parametrize(
    ("lots", "step", "shown"),
    [
        ("0.600000000000000000", 0.01, "0.60"),
        ("0.125", 0.01, "0.12"),
        ("0.135", 0.01, "0.14"),
        ("0.15", 0.1, "0.2"),
        ("0.25", 0.1, "0.2"),
        ("0.075", 0.05, "0.10"),
        ("-1.005", 0.01, "-1.00"),
        ("3", 1.0, "3"),
        ("-0.004", 0.01, "0.00"),
    ],
)
def test_display_lots_when_exact_then_at_the_lot_step_half_even(lots: str, step: float, shown: str) -> None:
    assert display_lots(Decimal(lots), step) == shown


def test_display_lots_when_float_or_no_step_then_refused() -> None:
    with pytest.raises(TypeError):
        display_lots(0.1, 0.01)
    with pytest.raises(ValueError, match="positive"):
        display_lots("1", 0)


@given(cents=st.integers(min_value=-(10**30), max_value=10**30), tail=st.integers(min_value=0, max_value=999))
def test_display_amount_when_any_amount_then_within_half_a_cent_and_two_places(cents: int, tail: int) -> None:
    amount = Decimal(cents).scaleb(-2) + Decimal(tail).scaleb(-5)

    text = display_amount(amount, "USD")

    assert abs(Decimal(text) - amount) <= Decimal("0.005")
    assert len(text.partition(".")[2]) == 2
