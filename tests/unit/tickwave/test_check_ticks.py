"""A replay's ticks checked in one pass of the rule table give, tick for tick, what ``check_decoded`` gives."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from tickwave.config import SymbolSpec, default_symbols
from tickwave.contracts import Tick
from tickwave.validation import MIN_TIME_MS, UINT32_MAX, QuoteBatch, ValidationRules, check_decoded, check_ticks

NOW_MS = 1_709_539_200_000
SYMBOLS = {**default_symbols(), "XAUUSD": SymbolSpec(digits=2, tick_size=0.01, price_min=100.0, price_max=1e5)}
RULES = ValidationRules.for_symbols(SYMBOLS, max_tick_lead_ms=2_000)


def _ticks(seed: int, count: int) -> list[Tick]:
    """Valid ticks with one of every broken kind mixed in (each a valid ``Tick``: the value rules hold)."""
    rng = random.Random(seed)
    ticks = []
    for index in range(count):
        time_ms = NOW_MS + index * 250
        symbol, bid, last, volume, flags = rng.choice(("EURUSD", "XAUUSD")), 1.1, 0.0, 1.0, rng.randrange(0, 7)
        if symbol == "XAUUSD":
            bid = 2000.0 + rng.uniform(-5, 5)
        broken = rng.random()
        if broken < 0.03:
            symbol = rng.choice(("NOPE", "eurusd"))
        elif broken < 0.06:
            flags = rng.choice((-1, UINT32_MAX + 1, 2**63 - 1, -(2**63)))
        elif broken < 0.09:
            bid = rng.choice((5e-324, 50.0, 2e5, 1e300))  # XAUUSD's bounds are 100 .. 1e5
            symbol = "XAUUSD"
        elif broken < 0.11:
            last = rng.choice((1e308, 50.0))
            symbol = "XAUUSD"
        elif broken < 0.13:
            volume = 1e308
        elif broken < 0.15:
            time_ms = rng.choice((0, MIN_TIME_MS - 1, MIN_TIME_MS))
        ticks.append(Tick(symbol, time_ms, 0, bid, bid + rng.choice((0.0, 0.00002, 0.5)), last, volume, flags))
    return ticks


def _per_tick(ticks: list[Tick], now_ms: list[int]) -> list[object]:
    return [check_decoded(tick, RULES, now) for tick, now in zip(ticks, now_ms, strict=True)]


def _as_per_tick(ticks: list[Tick], checked_passed: np.ndarray, rejections: dict[int, object]) -> list[object]:
    return [tick if checked_passed[index] else rejections[index] for index, tick in enumerate(ticks)]


@pytest.mark.parametrize("seed", range(4))
def test_check_ticks_when_each_at_its_own_time_then_what_check_decoded_gives_each(seed: int) -> None:
    ticks = _ticks(seed, 3_000)

    checked = check_ticks(ticks, RULES)

    expected = _per_tick(ticks, [tick.time_ms for tick in ticks])
    assert _as_per_tick(ticks, checked.passed, checked.rejections) == expected
    assert set(checked.rejections) == {index for index, item in enumerate(expected) if item is not ticks[index]}
    assert {rejection.check for rejection in checked.rejections.values()} == {
        "unknown_symbol",
        "bad_flags",
        "implausible",
        "before_min_time",
    }


def test_check_ticks_when_a_clock_per_tick_or_one_for_all_then_future_stamps_named_as_check_decoded_does() -> None:
    ticks = _ticks(9, 2_000)
    rng = random.Random(9)
    behind = [tick.time_ms - rng.choice((0, 1_999, 2_000, 2_001, 90_000)) for tick in ticks]

    per_row = check_ticks(ticks, RULES, np.array(behind, dtype=np.int64))
    one_clock = check_ticks(ticks, RULES, NOW_MS)

    assert _as_per_tick(ticks, per_row.passed, per_row.rejections) == _per_tick(ticks, behind)
    assert _as_per_tick(ticks, one_clock.passed, one_clock.rejections) == _per_tick(ticks, [NOW_MS] * len(ticks))
    assert "future_timestamp" in {rejection.check for rejection in per_row.rejections.values()}


def test_check_ticks_when_none_then_empty() -> None:
    checked = check_ticks([], RULES)

    assert len(checked.passed) == 0 and checked.rejections == {}


def _quotes(ticks: list[Tick]) -> list[Tick]:
    """``ticks`` as a batch holds them: the quotes alone (seq, last, volume and flags zero)."""
    return [Tick(tick.symbol, tick.time_ms, 0, tick.bid, tick.ask) for tick in ticks]


@pytest.mark.parametrize("seed", range(2))
def test_check_ticks_when_the_ticks_are_columns_then_what_it_gives_for_the_ticks_they_hold(seed: int) -> None:
    quotes = _quotes(_ticks(seed, 1_000))
    batch = QuoteBatch.of_quotes(quotes)

    checked, expected = check_ticks(batch, RULES), check_ticks(quotes, RULES)

    assert batch == quotes and batch[5:8] == quotes[5:8] and batch[-1] == quotes[-1]
    assert checked.passed.tolist() == expected.passed.tolist() and checked.rejections == expected.rejections
    assert not checked.passed.all(), "the rules refuse some"


@pytest.mark.parametrize(
    ("symbol", "time_ms", "is_decodable"),
    [("EURUSD", NOW_MS, True), ("EUR USD", NOW_MS, False), ("", NOW_MS, False), ("EURUSD", -1, False)],
)
def test_tick_batch_when_a_row_is_not_what_the_wire_carries_then_it_does_not_decode_as_sent(
    symbol: str, time_ms: int, is_decodable: bool
) -> None:
    batch = QuoteBatch.of_quotes([Tick("EURUSD", NOW_MS, 0, 1.1, 1.1001), Tick(symbol, time_ms, 0, 1.1, 1.1001)])

    assert batch.is_decodable() is is_decodable


@pytest.mark.parametrize(("bid", "ask"), [(float("nan"), 1.1), (1.1, 1.0), (0.0, 1.1), (1.1, float("inf"))])
def test_tick_batch_when_a_row_is_no_tick_then_the_contract_s_error_is_raised(bid: float, ask: float) -> None:
    with pytest.raises(ValueError) as raised:
        Tick("EURUSD", NOW_MS, 0, bid, ask)

    with pytest.raises(ValueError, match=re.escape(str(raised.value))):
        QuoteBatch(("EURUSD",), np.zeros(2, np.int32), np.full(2, NOW_MS), np.array([1.1, bid]), np.array([1.2, ask]))
