"""The core's rounding (quantize, the warehouse's scale, a conversion) gives Python ``decimal``'s digits and exponent.

The oracle is Python's own ``decimal`` module with the contexts the rounding was written with
before it moved into the execution core: ``quantize`` at ``prec=1000`` and a conversion's
multiply and divide at ``prec=28``, half even. Each case compares the text (sign, digits and
exponent), not only the value.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

import pytest
import tickwave_core
from hypothesis import example, given, settings
from hypothesis import strategies as st

from execution.core.positions import Book
from execution.core.valuation import with_booking
from tickwave.contracts import Fill
from tickwave.instruments import Instrument, TickBounds, convert
from tickwave.money import MONEY_CONTEXT, quantize, to_decimal, within_places

# The contexts the rounding was written with (the oracle).
_QUANTIZING = Context(prec=1000, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])
_CONVERTING = Context(prec=28, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])

# Amounts of up to 60 digits at exponents either side of the scales asked, either sign, zeros (and -0) included.
amounts = st.builds(
    lambda negative, coefficient, exponent: Decimal((int(negative), tuple(map(int, str(coefficient))), exponent)),
    st.booleans(),
    st.one_of(st.just(0), st.integers(1, 10**12), st.integers(1, 10**60)),
    st.integers(-45, 12),
)
# Rates as the mids are: positive floats, of any digits, over the range quotes take.
mids = st.one_of(
    st.floats(min_value=1e-10, max_value=1e12, allow_nan=False, allow_infinity=False, exclude_min=False),
    st.integers(1, 10**7).map(lambda points: points / 10**5),
).filter(lambda mid: mid > 0)


def _oracle_convert(amount: Decimal, route: tuple[tuple[float, bool], ...]) -> Decimal:
    for mid, multiplies in route:
        rate = Decimal(repr(mid))
        amount = _CONVERTING.multiply(amount, rate) if multiplies else _CONVERTING.divide(amount, rate)
    return amount


@settings(max_examples=600, deadline=None)
@given(amounts, st.integers(0, 20))
def test_quantize_when_any_amount_and_places_then_python_decimals_digits_and_exponent(
    amount: Decimal, places: int
) -> None:
    expected = amount.quantize(Decimal(1).scaleb(-places), context=_QUANTIZING)

    assert str(quantize(amount, places)) == str(expected)


@settings(max_examples=600, deadline=None)
@given(amounts, st.integers(0, 20))
def test_within_places_when_any_amount_then_itself_or_its_quantize(amount: Decimal, places: int) -> None:
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)
    expected = amount if exponent >= -places else amount.quantize(Decimal(1).scaleb(-places), context=_QUANTIZING)

    got = within_places(amount, places)

    assert str(got) == str(expected)
    if exponent >= -places:
        assert got is amount  # unchanged: the same object, no new Decimal


@settings(max_examples=800, deadline=None)
@given(amounts, st.lists(st.tuples(mids, st.booleans()), min_size=1, max_size=2).map(tuple))
def test_convert_amount_when_any_amount_and_route_then_python_decimals_28_digits_half_even(
    amount: Decimal, route: tuple[tuple[float, bool], ...]
) -> None:
    assert str(tickwave_core.convert_amount(amount, route)) == str(_oracle_convert(amount, route))


@pytest.mark.parametrize(
    ("amount", "mid", "multiplies"),
    [
        ("1", 3.0, False),  # inexact: 28 threes
        ("100", 4.0, False),  # exact: at the ideal exponent, 25
        ("1.00", 4.0, False),  # 0.25
        ("2.0", 0.5, False),  # 4
        ("-0.00", 150.5, False),  # a negative zero keeps its sign, at the ideal exponent
        ("9.999999999999999999999999999999", 1.0, True),  # rounds up into one more digit: 28 kept
        ("0.5", 1.0000000000000002, True),  # a rate of 17 digits
        ("123456789012345678901234567890123456789012345", 7.0, False),  # wider than a book's 77 digits
    ],
)
def test_convert_amount_when_an_edge_then_python_decimals_digits(amount: str, mid: float, multiplies: bool) -> None:
    route = ((mid, multiplies),)

    assert str(tickwave_core.convert_amount(Decimal(amount), route)) == str(_oracle_convert(Decimal(amount), route))


def test_rounding_when_not_finite_then_refused() -> None:
    for bad in (Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")):
        with pytest.raises(ValueError, match="finite"):
            within_places(bad)
        with pytest.raises(ValueError, match="finite"):
            quantize(bad)


def _instrument(symbol: str, quote: str, contract_size: float) -> Instrument:
    return Instrument(
        symbol=symbol,
        contract_size=contract_size,
        base=symbol[:3],
        quote=quote,
        margin_currency=symbol[:3],
        digits=5,
        point=1e-5,
        pip_size=1e-4,
        volume_min=0.01,
        volume_step=0.01,
        volume_max=100.0,
        bounds=TickBounds(price_min=1e-10, price_max=1e12, tick_volume_max=1e9),
    )


def _oracle_fill_figures(
    realized: Decimal, entry_value_after: Decimal, spec: Instrument, route: tuple[tuple[float, bool], ...] | None
) -> tuple[str, str | None, str]:
    """The figures a fill's record carried, as the engine rounded them before the core did."""

    def scale(amount: Decimal) -> Decimal:
        exponent = amount.as_tuple().exponent
        assert isinstance(exponent, int)
        return amount if exponent >= -18 else amount.quantize(Decimal(1).scaleb(-18), context=_QUANTIZING)

    quote = scale(MONEY_CONTEXT.multiply(realized, to_decimal(spec.contract_size)))
    account: Decimal | None = Decimal(0)
    if quote:
        account = None if route is None else scale(_oracle_convert(quote, route))
    return str(quote), None if account is None else str(account), str(scale(entry_value_after))


prices = st.one_of(
    st.floats(min_value=1e-10, max_value=1e9, allow_nan=False, allow_infinity=False),
    st.integers(50_000, 200_000).map(lambda points: points / 10**5),
)
lots = st.one_of(st.integers(1, 5_000).map(lambda steps: steps / 100), st.floats(min_value=0.01, max_value=50.0))


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(lots, st.booleans(), prices), min_size=1, max_size=6),
    st.sampled_from([100_000.0, 100.0, 5_000.0, 1.0, 0.1]),
    st.sampled_from(["USD", "JPY", "GBP"]),
    mids,
    mids,
)
def test_with_booking_when_any_fills_and_rates_then_the_records_figures_are_pythons(
    fills: list[tuple[float, bool, float]], contract_size: float, quote: str, usd_mid: float, cross_mid: float
) -> None:
    # A quote currency converted to USD directly (GBPUSD multiplies, USDJPY divides) or not at all (no mid).
    instruments = {
        "GBPUSD": _instrument("GBPUSD", "USD", 100_000.0),
        "USDJPY": _instrument("USDJPY", "JPY", 100_000.0),
        "XXX" + quote: _instrument("XXX" + quote, quote, contract_size),
    }
    spec = instruments["XXX" + quote]
    route = {"USD": (), "JPY": ((usd_mid, False),), "GBP": ((cross_mid, True),)}[quote]
    all_mids = {"USDJPY": usd_mid, "GBPUSD": cross_mid}
    book = Book()
    for index, (size, is_buy, price) in enumerate(fills):
        booking = book.book(to_decimal(size if is_buy else -size), to_decimal(price), f"f{index}")
        fill = Fill(
            fill_id=f"f{index}",
            client_order_id="o",
            signal_id="s",
            symbol=spec.symbol,
            side="buy" if is_buy else "sell",
            price=price,
            quantity_lots=size,
            commission=0.0,
            filled_at_ms=1,
            model_id="m",
            model_version=1,
        )
        for mids_given, route_given in ((all_mids, route), ({}, None if quote != "USD" else ())):
            record = with_booking(fill, booking, spec, "USD", instruments, mids_given)

            got = (
                str(record.realized_pnl_quote),
                None if record.realized_pnl_account is None else str(record.realized_pnl_account),
                str(record.entry_value_after),
            )
            assert got == _oracle_fill_figures(booking.realized, booking.entry_value_after, spec, route_given)
            assert record.position_after_lots == booking.position_after


def test_convert_when_a_route_then_the_cores_conversion() -> None:
    instruments = {"USDJPY": _instrument("USDJPY", "JPY", 100_000.0)}

    got = convert(Decimal("1000"), "JPY", "USD", instruments, {"USDJPY": 150.123})

    assert str(got) == str(_oracle_convert(Decimal("1000"), ((150.123, False),)))


@settings(max_examples=2000, deadline=None)
@given(st.floats(min_value=0.0, exclude_min=True, allow_nan=False, allow_infinity=False))
@example(8796093022208.312)  # exactly ...2208.3125: two 16-digit strings read back, repr takes the even one
def test_core_float_reading_when_any_positive_float_then_to_decimals_exact_value_and_exponent(value: float) -> None:
    # The core reads a mid or a contract size as to_decimal does (its shortest repr); times 1 at 28 digits
    # keeps those at most 17 digits and their exponent, so the text shows the core's reading.
    assert str(tickwave_core.convert_amount(Decimal(1), ((value, True),))) == str(to_decimal(value))
