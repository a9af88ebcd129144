"""The loss checks' question, "is the day's P&L above the limit?", answered as the exact valuation answers it.

``Valuation.is_above`` first sums the day's P&L in floats with a bound on their error and
answers from that when it clears the floor by more than the bound; these tests hold it
equal to ``daily_pnl(...) > floor`` at floors right beside the exact figure, where only
the exact sums can tell, and far from it, where the estimate decides.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from execution.core.engine import Engine
from execution.core.limits import RiskLimits
from execution.core.sizing import SizingPolicy
from execution.core.valuation import Valuation
from tests.unit.execution.helpers import (
    ALWAYS_OPEN,
    WEDNESDAY_NOON_MS,
    execution_settings,
    filled_order,
    price_at,
    record_fill,
    tick,
)
from tickwave.clock import ManualClock
from tickwave.config import ExecutionSettings, default_symbols
from tickwave.instruments import registry

MIDS = {"EURUSD": 1.1, "USDJPY": 150.0, "EURJPY": 165.0, "XAUUSD": 2300.0, "GBPUSD": 1.27, "EURGBP": 0.87}
SYMBOLS = sorted(MIDS)
# Digits enough to step one unit of the last place of any figure here.
WIDE = decimal.Context(prec=80)

steps = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.sampled_from(SYMBOLS), st.sampled_from([0.997, 0.9999, 1.0, 1.0003, 1.2])),
        st.tuples(
            st.just("fill"),
            st.sampled_from(SYMBOLS),
            st.integers(-300, 300).filter(bool),
            st.sampled_from([0.998, 1.0, 1.001]),
        ),
    ),
    min_size=1,
    max_size=20,
)


def _engine(account: str) -> tuple[Engine, ManualClock]:
    risk = execution_settings(
        daily_loss_limit=1e12, flash_crash_pct=90.0, max_position_lots=1e4, max_order_lots=1e4, max_gross_exposure=1e15
    ).risk
    settings = ExecutionSettings(risk=risk, account_currency=account)
    clock = ManualClock(WEDNESDAY_NOON_MS)
    limits = replace(RiskLimits.from_settings(settings, market=ALWAYS_OPEN), instruments=registry(default_symbols()))
    return Engine(limits, SizingPolicy.from_settings(settings), clock), clock


def _floors(exact: Decimal | None) -> list[Decimal]:
    """Floors beside the exact figure (one unit of its last place either side, and of the 80th digit), and far."""
    far = [Decimal(0), Decimal(-(10**9)), Decimal(10**9)]
    if exact is None:
        return far
    return [
        exact,
        WIDE.next_minus(exact),
        WIDE.next_plus(exact),
        exact - Decimal("1e-9"),
        exact + Decimal("1e-9"),
        exact.next_minus(),
        exact.next_plus(),
        exact - 1,
        exact + 1,
        *far,
    ]


def _assert_screen_answers_as_exact(engine: Engine, now_ms: int) -> None:
    limits = engine.limits
    exact = Valuation(engine.state).daily_pnl(limits, now_ms)  # no memo, no estimate
    for floor in _floors(exact):
        expected = exact is not None and exact > floor
        assert engine.valuation.is_above(limits, now_ms, floor) is expected, (exact, floor)
        assert Valuation(engine.state).is_above(limits, now_ms, floor) is expected, (exact, floor)


@settings(max_examples=200, deadline=None)
@given(path=steps, quoted=st.sets(st.sampled_from(SYMBOLS), min_size=1), account=st.sampled_from(["USD", "GBP", "JPY"]))
def test_is_above_when_ticks_and_fills_in_any_currency_then_it_answers_as_the_exact_day_pnl(
    path: list[tuple[object, ...]], quoted: set[str], account: str
) -> None:
    # Accounts in USD (JPY and GBP sums convert through one pair), GBP (JPY through USD: two pairs)
    # and JPY; a symbol never quoted leaves its currency without a rate (daily_pnl: None).
    for engine, clock, _ in _play(path, quoted, account):
        _assert_screen_answers_as_exact(engine, clock.now_ms())


def _play(
    path: list[tuple[object, ...]], quoted: set[str], account: str
) -> Iterator[tuple[Engine, ManualClock, dict[str, float]]]:
    """Play ``path`` (ticks, and fills of the quoted symbols) on a new engine; yield it after each step."""
    engine, clock = _engine(account)
    mids = dict(MIDS)
    for symbol in sorted(quoted):
        price_at(engine, symbol, mids[symbol])
    for number, step in enumerate(path, start=1):
        clock.advance(1)
        if step[0] == "tick":
            _, symbol, factor = step
            mids[symbol] = round(mids[symbol] * factor, 6)  # type: ignore[index, operator]
            price_at(engine, symbol, mids[symbol])  # type: ignore[arg-type, index]
        elif step[1] in quoted:
            _, symbol, hundredths, off = step
            price = round(mids[symbol] * off, 6)  # type: ignore[index, operator]
            record_fill(engine, number, symbol, Decimal(hundredths) / 100, price)  # type: ignore[arg-type, operator]
        yield engine, clock, mids


def _played(path: list[tuple[object, ...]], quoted: set[str], account: str) -> tuple[Engine, dict[str, float]]:
    """The engine after the whole of ``path`` (see _play) and the latest mids."""
    *_, (engine, _, mids) = _play(path, quoted, account)
    return engine, mids


@settings(max_examples=300, deadline=None)
@given(
    path=steps,
    quoted=st.sets(st.sampled_from(SYMBOLS), min_size=1),
    account=st.sampled_from(["USD", "GBP", "JPY"]),
    last=st.tuples(st.sampled_from(SYMBOLS), st.integers(-300, 300).filter(bool), st.sampled_from([0.998, 1.0, 1.002])),
    where=st.integers(0, 12),
    between=st.one_of(st.none(), st.tuples(st.sampled_from(SYMBOLS), st.sampled_from([0.99, 1.01]))),
)
def test_is_above_after_a_fill_when_asked_beside_the_day_after_it_then_it_answers_as_the_exact_day_pnl(
    path: list[tuple[object, ...]],
    quoted: set[str],
    account: str,
    last: tuple[str, int, float],
    where: int,
    between: tuple[str, float] | None,
) -> None:
    # As the breaker asks: the day's question before a fill (the gate's), then after it at the same floor,
    # answered from the first and the fill's move when only the fill changed the day (``between``: a tick
    # after the first question, which the second must not overlook). The floor sits beside the exact
    # figure after the fill (learnt on a twin engine that books the same fill).
    symbol, hundredths, off = last
    assume(symbol in quoted)
    twin, mids = _played(path, quoted, account)
    engine, _ = _played(path, quoted, account)
    now = engine.clock.now_ms() + 1
    submitted, filled = filled_order(999, symbol, Decimal(hundredths) / 100, round(mids[symbol] * off, 6), now)
    for played in (twin, engine):
        played.clock.set(now)
        played.state.apply(submitted)
    if between is not None:  # a tick after the gate's question, observed without the breakers' own questions
        moved = tick(now, round(mids[between[0]] * between[1], 6), between[0], mids[between[0]] * 0.00002)
        twin.state.observe_tick(moved)
    twin.state.apply(filled)
    exact = Valuation(twin.state).daily_pnl(twin.limits, now)
    floor = _floors(exact)[where] if where < len(_floors(exact)) else Decimal(0)
    engine.valuation.is_above(engine.limits, now, floor)  # the gate's question
    if between is not None:
        engine.state.observe_tick(moved)
    assert engine.state.apply(filled)
    expected = exact is not None and exact > floor
    assert engine.valuation.is_above_after(filled, engine.limits, floor) is expected, (exact, floor)
    assert engine.valuation.is_above(engine.limits, now, floor) is expected, (exact, floor)  # as it left the memo


def test_is_above_when_the_day_sits_on_the_limit_then_the_loss_breaker_trips_as_before() -> None:
    # A position whose open loss is exactly the limit: the estimate cannot tell, the exact sums trip it.
    engine, clock = _engine("USD")
    engine.limits = replace(engine.limits, daily_loss_limit=Decimal(300))
    price_at(engine, "EURUSD", 1.1, 0.0)
    record_fill(engine, 1, "EURUSD", Decimal("0.1"), 1.1)
    clock.advance(1)
    assert price_at(engine, "EURUSD", 1.0701, 0.0) == []  # -299.00 USD
    clock.advance(1)
    tripped = price_at(engine, "EURUSD", 1.07, 0.0)  # -300.00 USD: at the limit

    assert [event.trading_state for event in tripped] == ["REDUCING"]
    assert engine.daily_pnl(clock.now_ms()) == Decimal(-300)


def test_is_above_when_asked_at_the_exact_figure_on_every_tick_then_never_above_it() -> None:
    # Floats round a sum either way; at a floor equal to the exact figure the answer must be False
    # every time, and True one unit of its 80th digit below: the estimate's bound leaves both to the exact sums.
    engine, clock = _engine("USD")
    for symbol in ("EURUSD", "USDJPY"):
        price_at(engine, symbol, MIDS[symbol])
    record_fill(engine, 1, "EURUSD", Decimal("0.37"), 1.1003)
    record_fill(engine, 2, "USDJPY", Decimal("-1.13"), 149.987)
    for step in range(1, 200):
        clock.advance(1)
        symbol = ("EURUSD", "USDJPY")[step % 2]
        price_at(engine, symbol, round(MIDS[symbol] * (1 + step / 7919), 5))
        exact = Valuation(engine.state).daily_pnl(engine.limits, clock.now_ms())
        assert exact is not None
        assert engine.valuation.is_above(engine.limits, clock.now_ms(), exact) is False, (step, exact)
        assert engine.valuation.is_above(engine.limits, clock.now_ms(), WIDE.next_minus(exact)) is True, (step, exact)


def test_is_above_when_large_round_trips_close_at_the_exact_figure_then_never_above_it() -> None:
    # Positions of 10,000 lots opened and closed again: the floats carried across the fills cost
    # ~1e9 USD and end at a few dollars, so their roundings (~1e-7) exceed what the estimate's
    # relative bound allows for a sum of a few dollars; the drift they carried must cover them.
    engine, clock = _engine("USD")
    price_at(engine, "EURUSD", 1.1)
    for step in range(1, 60):
        clock.advance(1)
        lots = Decimal(9_999 - step) if step % 2 else -Decimal(9_999 - step + 1)
        record_fill(engine, step, "EURUSD", lots, round(1.1 + step / 1_000_003, 7))
        exact = Valuation(engine.state).daily_pnl(engine.limits, clock.now_ms())
        assert exact is not None
        assert engine.valuation.is_above(engine.limits, clock.now_ms(), exact) is False, (step, exact)
        assert engine.valuation.is_above(engine.limits, clock.now_ms(), exact - 1) is True, (step, exact)
