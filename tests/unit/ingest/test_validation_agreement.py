"""One set of tick rules: the columnar validator (ingest) and ``check_raw`` (the dataflow, execution) agree.

Hypothesis writes ticks as the bus carries them (JSON) and as ingest holds them
(columns); both paths must accept the same ones and reject the others with the same
reason. JSON carries no NaN or infinity, so the non-finite rule is held to ``Tick`` by
``test_logic`` instead.
"""

from __future__ import annotations

import msgspec
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streams.ingest.logic import TickValidator
from tests.unit.ingest.helpers import NOW_MS, REGISTRY, candidates
from tickwave.clock import ManualClock
from tickwave.validation import MIN_TIME_MS, UINT32_MAX, Rejection, ValidationRules, check_raw, dead_letter

MAX_FUTURE_MS = 60_000
KNOWN = sorted(REGISTRY)[:2]

symbols = st.sampled_from([*KNOWN, "XYZ", "EUR USD"])  # known, unknown, and one the contract cannot hold
times = st.one_of(
    st.integers(-(2**40), 2**45),
    st.sampled_from([-1, 0, MIN_TIME_MS - 1, MIN_TIME_MS, NOW_MS, NOW_MS + MAX_FUTURE_MS, NOW_MS + MAX_FUTURE_MS + 1]),
)
prices = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, -1.0, 1.08, 1.0801, 1e-300, 5e-324, 1e-5, 1e300, 1e308, 2.0**53]),
)
flag_values = st.one_of(st.integers(-5, 2**33), st.sampled_from([-1, 0, UINT32_MAX, UINT32_MAX + 1]))


@settings(max_examples=400, deadline=None)
@given(symbols, times, prices, prices, prices, prices, flag_values)
@example("XYZ", -1, 0.0, -1.0, -1.0, -1.0, -1)  # breaks every rule: the first one names it
@example(KNOWN[0], NOW_MS, 1.08, 1.0801, 0.0, 0.0, 6)  # a good tick
@example(KNOWN[0], NOW_MS, 1.08, 1.0801, 1e308, 0.0, 6)  # last beyond the symbol's bounds
@example(KNOWN[0], NOW_MS, 1.08, 1.0801, 0.0, 1e308, 6)  # volume beyond them
def test_check_raw_and_columns_when_any_tick_then_same_verdict_and_same_reason(
    symbol: str, time_ms: int, bid: float, ask: float, last: float, volume: float, flags: int
) -> None:
    fields = {
        "symbol": symbol,
        "time_ms": time_ms,
        "seq": 0,
        "bid": bid,
        "ask": ask,
        "last": last,
        "volume": volume,
        "flags": flags,
        "source": "test",
    }
    raw = msgspec.json.encode({"type": "tick.v1", **fields})
    rules = ValidationRules.for_symbols(REGISTRY, MAX_FUTURE_MS)
    validator = TickValidator(REGISTRY, "test", MAX_FUTURE_MS, ManualClock(NOW_MS))

    row = check_raw(raw, rules, NOW_MS)
    columns = validator.validate(candidates([symbol], [time_ms], [bid], [ask], [last], [volume], [flags]))

    row_reason = dead_letter(row, NOW_MS).reason if isinstance(row, Rejection) else None
    column_reason = columns.rejected[0].reason if columns.rejected else None
    assert row_reason == column_reason
    assert ([] if isinstance(row, Rejection) else [row]) == columns.ticks.ticks()
