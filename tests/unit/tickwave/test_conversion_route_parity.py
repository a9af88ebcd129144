"""The conversion route in the core against the kernel's rule it replaces, over random instruments and mids."""

from __future__ import annotations

import dataclasses

import tickwave_core
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwave.instruments import Instrument, conversion_route, registry
from tickwave.config.symbols import default_symbols

CURRENCIES = ("USD", "EUR", "JPY", "GBP", "CHF", "XAU")
_TEMPLATE = next(iter(registry(default_symbols()).values()))


def _instrument(symbol: str, base: str, quote: str) -> Instrument:
    return dataclasses.replace(_TEMPLATE, symbol=symbol, base=base, quote=quote)


_symbols = st.text(alphabet="ABCDEFGHJKLMNPRSTUVXYZ", min_size=1, max_size=4)
_mids = st.one_of(st.floats(allow_nan=False), st.sampled_from([0.0, -0.0, -1.0, 1.0, 150.123]))


@st.composite
def _markets(draw: st.DrawFn) -> tuple[dict[str, Instrument], dict[str, float]]:
    pairs = draw(st.dictionaries(_symbols, st.tuples(st.sampled_from(CURRENCIES), st.sampled_from(CURRENCIES))))
    instruments = {symbol: _instrument(symbol, base, quote) for symbol, (base, quote) in pairs.items()}
    quoted = draw(st.lists(st.sampled_from(sorted(pairs)), unique=True)) if pairs else []
    unknown = draw(st.lists(_symbols, max_size=3))
    mids = {symbol: draw(_mids) for symbol in [*quoted, *unknown]}
    return instruments, mids


@settings(max_examples=3000, deadline=None)
@given(_markets(), st.sampled_from(CURRENCIES), st.sampled_from(CURRENCIES))
def test_the_core_route_is_the_kernel_route(
    market: tuple[dict[str, Instrument], dict[str, float]], source: str, target: str
) -> None:
    instruments, mids = market
    expected = conversion_route(source, target, instruments, mids)
    got = tickwave_core.conversion_route(source, target, instruments, mids)
    assert (None if got is None else tuple(got)) == expected
