"""Column batches serialize exactly as the Tick contract does."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.ingest.batches import TickBatch
from tests.unit.tickwave.strategies import message_strategy
from tickwave.contracts import Tick, decode, encode


def from_ticks(ticks: list[Tick]) -> TickBatch:
    names = tuple(dict.fromkeys(tick.symbol for tick in ticks))
    column = lambda name, dtype: np.array([getattr(t, name) for t in ticks], dtype=dtype)  # noqa: E731
    return TickBatch(
        names,
        np.array([names.index(t.symbol) for t in ticks], np.int32),
        column("time_ms", np.int64),
        column("seq", np.int64),
        column("bid", np.float64),
        column("ask", np.float64),
        column("last", np.float64),
        column("volume", np.float64),
        column("flags", np.int64),
        ticks[0].source if ticks else "",
    )


tick_lists = st.lists(message_strategy(Tick), min_size=1, max_size=8).map(
    lambda ticks: [
        Tick(t.symbol, t.time_ms % 2**62, t.seq % 2**62, t.bid, t.ask, t.last, t.volume, t.flags % 2**32, "sim")
        for t in ticks
    ]
)


@settings(deadline=None)
@given(tick_lists)
def test_encoded_when_any_valid_ticks_then_bytes_equal_the_contract_encoding(ticks: list[Tick]) -> None:
    batch = from_ticks(ticks)

    keys, values = batch.encoded()

    assert values == [encode(tick) for tick in ticks]
    assert keys == [tick.symbol.encode() for tick in ticks]
    assert [decode(value, Tick) for value in values] == ticks
    assert batch.ticks() == ticks


def test_concat_when_symbol_tables_differ_then_codes_remapped() -> None:
    first = from_ticks([Tick("EURUSD", 1, 0, 1.0, 1.1, source="sim"), Tick("USDJPY", 2, 0, 150.0, 150.1, source="sim")])
    second = from_ticks(
        [Tick("XAUUSD", 3, 0, 2000.0, 2000.5, source="sim"), Tick("EURUSD", 4, 0, 1.0, 1.1, source="sim")]
    )

    joined = TickBatch.concat([first, TickBatch.empty("sim"), second])

    assert [tick.symbol for tick in joined.ticks()] == ["EURUSD", "USDJPY", "XAUUSD", "EURUSD"]
    assert joined.symbols == ("EURUSD", "USDJPY", "XAUUSD")
    assert len(TickBatch.concat([])) == 0
