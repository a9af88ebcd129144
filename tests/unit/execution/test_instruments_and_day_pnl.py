"""Instrument specs and conversion (gold, a JPY pair, crosses), the day's P&L across the rollover, reduce-only."""

from __future__ import annotations

import decimal
import json
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution.core.engine import Engine
from execution.core.engine_state import DAY_ROLLOVER
from execution.core.limits import RiskLimits
from execution.core.risk import (
    FixedDayPnl,
    ProposedOrder,
    RiskView,
    check_gross_exposure,
    denial_of,
    exposure,
    first_denial,
    mids_of,
)
from execution.core.sizing import SizingPolicy
from execution.core.valuation import Valuation
from tests.unit.execution.helpers import (
    ALWAYS_OPEN,
    WEDNESDAY_NOON_MS,
    execution_settings,
    price_at,
    record_fill,
    signal,
    tick,
)
from tickwave.clock import ManualClock
from tickwave.config import SymbolSpec, default_symbols
from tickwave.contracts.core import mid_price
from tickwave.instruments import conversion_route, convert, from_mt5_symbol_info, rate_symbols, registry
from tickwave.money import MONEY_CONTEXT, to_decimal

NOW = WEDNESDAY_NOON_MS
INSTRUMENTS = registry(default_symbols())
LIMITS = RiskLimits.from_settings(execution_settings(max_gross_exposure=250_000), market=ALWAYS_OPEN)
HOUR_MS = 3_600_000


def view_with(**mids: float) -> RiskView:
    return RiskView(last_ticks={symbol: tick(NOW, mid, symbol, mid * 0.00002) for symbol, mid in mids.items()})


def test_instruments_when_resolved_then_gold_jpy_crosses_and_index_have_their_own_lot() -> None:
    assert INSTRUMENTS["XAUUSD"].contract_size == 100 and INSTRUMENTS["XAGUSD"].contract_size == 5_000
    assert (INSTRUMENTS["EURJPY"].base, INSTRUMENTS["EURJPY"].quote, INSTRUMENTS["EURJPY"].pip_size) == (
        "EUR",
        "JPY",
        pytest.approx(0.01),
    )
    assert (INSTRUMENTS["US500"].contract_size, INSTRUMENTS["US500"].quote) == (1.0, "USD")
    custom = registry({"XAUUSD": SymbolSpec(digits=2, tick_size=0.01, contract_size=10.0)})
    assert custom["XAUUSD"].contract_size == 10.0  # configuration wins


@pytest.mark.parametrize(
    ("symbol", "lots", "mids", "expected"),
    [
        ("XAUUSD", "0.01", {"XAUUSD": 2300.0}, Decimal("2300")),  # 1 oz x 2300, not 0.01 x 100,000 x 2300
        ("USDJPY", "1", {"USDJPY": 150.0}, Decimal("100000")),
        ("EURJPY", "1", {"EURJPY": 163.0, "USDJPY": 150.0}, Decimal(16_300_000) / Decimal(150)),
        ("EURGBP", "1", {"EURGBP": 0.87, "GBPUSD": 1.27}, Decimal("87000") * Decimal("1.27")),
        ("US500", "2", {"US500": 5000.0}, Decimal("10000")),
    ],
)
def test_exposure_when_any_symbol_then_lots_times_contract_times_price_in_usd(
    symbol: str, lots: str, mids: dict[str, float], expected: Decimal
) -> None:
    amount = exposure(symbol, Decimal(lots), view_with(**mids), LIMITS)

    assert amount is not None and abs(amount - expected) < Decimal("1e-18")


# An independent table: units per lot, and how one unit of the quote currency becomes USD.
QUOTE_TO_USD = {
    "EURUSD": (100_000, lambda m: 1.0),
    "XAUUSD": (100, lambda m: 1.0),
    "XAGUSD": (5_000, lambda m: 1.0),
    "US500": (1, lambda m: 1.0),
    "USDJPY": (100_000, lambda m: 1 / m["USDJPY"]),
    "EURJPY": (100_000, lambda m: 1 / m["USDJPY"]),
    "GBPJPY": (100_000, lambda m: 1 / m["USDJPY"]),
    "USDCHF": (100_000, lambda m: 1 / m["USDCHF"]),
    "EURCHF": (100_000, lambda m: 1 / m["USDCHF"]),
    "EURGBP": (100_000, lambda m: m["GBPUSD"]),
    "AUDUSD": (100_000, lambda m: 1.0),
}


@given(
    symbol=st.sampled_from(sorted(QUOTE_TO_USD)),
    lots=st.decimals(min_value=-50, max_value=50, places=2),
    mids=st.fixed_dictionaries({name: st.floats(min_value=0.5, max_value=5_000) for name in [*QUOTE_TO_USD, "GBPUSD"]}),
)
def test_exposure_when_any_symbol_lots_and_prices_then_lots_x_contract_x_price_through_the_right_pair(
    symbol: str, lots: Decimal, mids: dict[str, float]
) -> None:
    contract, to_usd = QUOTE_TO_USD[symbol]

    amount = exposure(symbol, lots, view_with(**mids), LIMITS)

    expected = abs(float(lots)) * contract * mids[symbol] * to_usd(mids)
    assert amount is not None and float(amount) == pytest.approx(expected, rel=1e-12, abs=1e-9)
    alone = exposure(symbol, lots, view_with(**{symbol: mids[symbol]}), LIMITS)  # no other pair quoted
    own_rate = symbol.startswith("USD") or symbol.endswith("USD") or symbol == "US500"  # USD in the pair itself
    assert (alone is not None) == own_rate  # a missing rate is refused, never guessed


def test_gross_exposure_when_gold_is_small_then_allowed_and_no_rate_is_its_own_denial() -> None:
    gold = ProposedOrder(signal(1, NOW, symbol="XAUUSD"), "buy", 0.01)
    cross = ProposedOrder(signal(2, NOW, symbol="EURJPY"), "buy", 0.1)

    assert check_gross_exposure(gold, view_with(XAUUSD=2300.0), LIMITS, NOW) is None
    denial = check_gross_exposure(cross, view_with(EURJPY=163.0), LIMITS, NOW)
    assert denial is not None and denial.check == "no_rate" and "JPY -> USD" in denial.reason


def test_gate_when_no_price_then_denied_by_its_own_check_first() -> None:
    order = ProposedOrder(signal(1, NOW, symbol="GBPUSD"), "buy", 0.1)

    denial = first_denial(order, view_with(EURUSD=1.1), LIMITS, NOW)

    assert denial is not None and denial.check == "no_price"


@given(
    amount=st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False, allow_infinity=False),
    usdjpy=st.floats(min_value=80, max_value=200),
    gbpusd=st.floats(min_value=0.9, max_value=2.0),
)
def test_convert_when_round_trip_through_pairs_then_amount_comes_back(
    amount: Decimal, usdjpy: float, gbpusd: float
) -> None:
    mids = {"USDJPY": usdjpy, "GBPUSD": gbpusd}

    in_gbp = convert(amount, "JPY", "GBP", INSTRUMENTS, mids)  # JPY -> USD (divide) -> GBP (divide)
    back = convert(in_gbp or Decimal(0), "GBP", "JPY", INSTRUMENTS, mids)

    assert in_gbp is not None and back is not None
    assert abs(back - amount) <= abs(amount) * Decimal("1e-20") + Decimal("1e-20")
    assert convert(amount, "JPY", "CHF", INSTRUMENTS, mids) is None  # no USDCHF quote: refused, not guessed


_CURRENCIES = sorted({currency for spec in INSTRUMENTS.values() for currency in (spec.base, spec.quote)})


@given(
    source=st.sampled_from(_CURRENCIES),
    target=st.sampled_from(_CURRENCIES),
    quoted=st.dictionaries(st.sampled_from(sorted(INSTRUMENTS)), st.floats(min_value=0.5, max_value=3000), min_size=1),
)
def test_convert_when_only_the_rate_symbols_are_quoted_then_the_same_amount(
    source: str, target: str, quoted: dict[str, float]
) -> None:
    # rate_symbols names every mid convert may read (the valuation keeps a conversion while their ticks stay).
    kept = {symbol: mid for symbol, mid in quoted.items() if symbol in rate_symbols(source, target, INSTRUMENTS)}

    assert convert(Decimal("1234.56"), source, target, INSTRUMENTS, kept) == convert(
        Decimal("1234.56"), source, target, INSTRUMENTS, quoted
    )


def test_from_mt5_symbol_info_when_gold_then_fields_follow_the_terminal() -> None:
    from testkit.mt5 import SymbolInfo

    info = SymbolInfo(
        name="XAUUSD",
        digits=2,
        point=0.01,
        trade_contract_size=100.0,
        currency_base="XAU",
        currency_profit="USD",
        currency_margin="XAU",
        volume_min=0.01,
        volume_step=0.01,
        volume_max=50.0,
    )
    gold = from_mt5_symbol_info(info)
    assert (gold.contract_size, gold.digits, gold.quote, gold.pip_size) == (100.0, 2, "USD", 0.01)


# ---------------------------------------------------------------------------------------
# The day's P&L
# ---------------------------------------------------------------------------------------


def _engine(start_ms: int = NOW, **overrides: object) -> tuple[Engine, ManualClock]:
    options = {
        "daily_loss_limit": 1e12,
        "flash_crash_pct": 90.0,
        "max_position_lots": 100.0,
        "max_order_lots": 100.0,
        "max_gross_exposure": 1e15,
        **overrides,
    }
    settings = execution_settings(**options)
    clock = ManualClock(start_ms)
    limits = RiskLimits.from_settings(settings, market=ALWAYS_OPEN)
    return Engine(limits, SizingPolicy.from_settings(settings), clock), clock


trades = st.lists(
    st.tuples(st.integers(min_value=-50, max_value=50).filter(bool), st.integers(min_value=10_500, max_value=11_500)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=80, deadline=None)
@given(fills=trades, final=st.integers(min_value=10_500, max_value=11_500))
def test_day_pnl_when_trading_within_one_day_then_equals_cash_flows_plus_marked_position(
    fills: list[tuple[int, int]], final: int
) -> None:
    engine, _ = _engine()
    price_at(engine, "EURUSD", 1.1)
    cash = position = Decimal(0)
    for number, (hundredths, price_points) in enumerate(fills):
        lots, mid = Decimal(hundredths) / 100, Decimal(price_points) / 10_000
        paid = mid + Decimal(3) / 10_000 * (1 if lots > 0 else -1)  # filled 3 points off the mid: a cost
        price_at(engine, "EURUSD", float(mid))
        record_fill(engine, number, "EURUSD", lots, float(paid))
        # Independent recomputation: every fill's cash flow, plus what the open position is worth at the mid.
        cash -= lots * paid
        position += lots
        # Right after the fill, with no tick since, the fill's cost is already in the day's P&L.
        assert engine.daily_pnl(engine.clock.now_ms()) == (cash + position * mid) * 100_000
    price_at(engine, "EURUSD", final / 10_000)

    assert engine.daily_pnl(engine.clock.now_ms()) == (cash + position * Decimal(final) / 10_000) * 100_000


def test_day_pnl_when_yesterday_gained_then_today_shows_only_todays_loss() -> None:
    tuesday_noon_utc = NOW - 24 * HOUR_MS
    engine, clock = _engine(tuesday_noon_utc, daily_loss_limit=1_000.0)
    price_at(engine, "EURUSD", 1.1000)
    record_fill(engine, 1, "EURUSD", Decimal(1), 1.1000)
    price_at(engine, "EURUSD", 1.1300)  # +3,000 USD open gain on Tuesday
    clock.advance(24 * HOUR_MS)  # Wednesday noon: past the 17:00 New York rollover
    price_at(engine, "EURUSD", 1.1300)  # the first tick of the new day marks the open gain
    price_at(engine, "EURUSD", 1.1150)  # -1,500 today, still +1,500 since entry

    pnl = engine.daily_pnl(clock.now_ms())

    assert pnl == Decimal(-1500)
    assert engine.trading_state == "REDUCING"  # the old definition (+1,500) would have hidden the breach


def test_day_pnl_when_the_days_marks_are_replayed_after_it_was_valued_then_valued_against_them() -> None:
    # A restart replays the journal's rollover marks onto an engine that may have valued the day already.
    engine, clock = _engine()
    price_at(engine, "EURUSD", 1.1000)
    record_fill(engine, 1, "EURUSD", Decimal(1), 1.1000)
    price_at(engine, "EURUSD", 1.1010)
    assert engine.daily_pnl(clock.now_ms()) == Decimal(100)  # marked flat at the day's first tick
    day = engine.marked_day

    marks = json.dumps({"trading_day": day, "marks": {"EURUSD": "40"}})
    engine.apply(engine.events.risk(DAY_ROLLOVER, "info", marks, clock.now_ms(), check="daily_loss"))

    assert engine.daily_pnl(clock.now_ms()) == Decimal(60)


def test_day_pnl_when_a_cross_trades_then_valued_in_usd_and_unknown_without_a_rate() -> None:
    engine, clock = _engine()
    price_at(engine, "EURJPY", 163.0)
    record_fill(engine, 1, "EURJPY", Decimal(1), 163.0)
    price_at(engine, "EURJPY", 162.0)  # -1 JPY x 100,000 EUR = -100,000 JPY

    assert engine.daily_pnl(clock.now_ms()) is None  # no USDJPY quote yet: unknown, never guessed
    price_at(engine, "USDJPY", 160.0)
    assert engine.daily_pnl(clock.now_ms()) == Decimal(-100_000) / Decimal(160)


@settings(max_examples=100, deadline=None)
@given(
    position=st.integers(min_value=-100, max_value=100),
    order=st.integers(min_value=-200, max_value=200).filter(bool),
    state=st.sampled_from(["ACTIVE", "REDUCING"]),
    loss=st.booleans(),
)
def test_gate_when_an_order_passes_while_reducing_or_breached_then_it_never_grows_the_position(
    position: int, order: int, state: str, loss: bool
) -> None:
    limits = RiskLimits.from_settings(
        execution_settings(max_order_lots=5.0, max_position_lots=1.0, daily_loss_limit=100.0), market=ALWAYS_OPEN
    )
    view = view_with(EURUSD=1.1)
    view.positions = {"EURUSD": Decimal(position) / 100}
    view.trading_state = state  # type: ignore[assignment]
    view.day_pnl = FixedDayPnl(Decimal(-1000) if loss else Decimal(0))
    lots = Decimal(order) / 100
    proposed = ProposedOrder(signal(1, NOW), "buy" if lots > 0 else "sell", float(abs(lots)))

    denial = first_denial(proposed, view, limits, NOW)

    after = MONEY_CONTEXT.add(to_decimal(position) / 100, lots)
    if denial is None and (state == "REDUCING" or loss):
        assert abs(after) < abs(Decimal(position) / 100) and (after == 0 or (after > 0) == (position > 0))


# ---------------------------------------------------------------------------------------
# The routes the engine's gate keeps between decisions: never stale
# ---------------------------------------------------------------------------------------

MEMO_MIDS = {"EURUSD": 1.1, "USDJPY": 150.0, "EURJPY": 165.0, "XAUUSD": 2300.0, "GBPUSD": 1.27, "EURGBP": 0.87}
MEMO_SYMBOLS = sorted(MEMO_MIDS)
memo_steps = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.sampled_from(MEMO_SYMBOLS), st.sampled_from([0.999, 1.0, 1.001, 1.3])),
        st.tuples(st.just("fill"), st.sampled_from(MEMO_SYMBOLS), st.integers(-300, 300).filter(bool)),
        st.tuples(
            st.just("signal"),
            st.sampled_from(MEMO_SYMBOLS),
            st.sampled_from(["long", "short", "flat"]),
            st.sampled_from([0.1, 0.5, 1.0]),
        ),
        st.tuples(st.just("limit"), st.sampled_from([1e5, 3e5, 1e6, 1e7])),
        st.tuples(st.just("gold_lot"), st.sampled_from([10.0, 100.0])),  # new limits with another registry
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(steps=memo_steps, quoted=st.sets(st.sampled_from(MEMO_SYMBOLS), min_size=1))
def test_gross_exposure_when_ticks_fills_signals_and_limits_change_then_the_gate_equals_one_on_the_view_read_afresh(
    steps: list[tuple[object, ...]], quoted: set[str]
) -> None:
    # Decisions go through the engine (whose gate keeps each currency's route while the quotes
    # and limits are the same); after every step, probe orders on every symbol, both ways, are
    # decided by the engine's gate and by the gate on its view read afresh.
    engine, clock = _engine(max_gross_exposure=1e6, max_position_lots=5.0, max_order_lots=5.0)
    mids = dict(MEMO_MIDS)
    for symbol in sorted(quoted):  # some symbols unquoted at first: the no_rate path is memoised too
        price_at(engine, symbol, mids[symbol])
    number = 0
    for step in steps:
        number += 1
        clock.advance(1)
        if step[0] == "tick":
            _, symbol, factor = step
            mids[symbol] = round(mids[symbol] * factor, 6)  # type: ignore[operator]
            price_at(engine, symbol, mids[symbol])  # type: ignore[arg-type]
        elif step[0] == "fill":
            _, symbol, hundredths = step
            record_fill(engine, number, symbol, Decimal(hundredths) / 100, mids[symbol])  # type: ignore[arg-type,index]
        elif step[0] == "signal":
            _, symbol, direction, strength = step
            decision = engine.on_signal(signal(number, clock.now_ms(), direction, strength, symbol))  # type: ignore[arg-type]
            if decision.intent is not None:  # a working order: counted as pending exposure
                engine.apply(engine.submission(decision.intent))
        elif step[0] == "limit":
            engine.limits = replace(engine.limits, max_gross_exposure=to_decimal(step[1]))  # as set_limit does
        else:
            gold = SymbolSpec(digits=2, tick_size=0.01, contract_size=step[1])  # type: ignore[arg-type]
            engine.limits = replace(engine.limits, instruments={**INSTRUMENTS, **registry({"XAUUSD": gold})})
        _assert_legs_as_valued_afresh(engine)
        for symbol in MEMO_SYMBOLS:
            for side in ("buy", "sell"):
                order = ProposedOrder(signal(10_000 + number, clock.now_ms(), symbol=symbol), side, 0.7)  # type: ignore[arg-type]
                expected = first_denial(order, engine.view, engine.limits, clock.now_ms())
                found = engine.state.first_denial(symbol, side, 0.7, order.signal.created_at_ms, clock.now_ms())  # type: ignore[arg-type]
                assert denial_of(found) == expected
        _assert_legs_as_valued_afresh(engine)


def _assert_legs_as_valued_afresh(engine: Engine) -> None:
    # Each leg's amount itself (a denial shows the total only when it is over the limit): the core's
    # against the instrument's notional converted by the kernel.
    view_mids, limits = mids_of(engine.view), engine.limits
    for symbol in MEMO_SYMBOLS:
        lots = engine.view.exposure_lots(symbol)
        spec, tick = limits.instruments.get(symbol), engine.view.last_ticks.get(symbol)
        expected = None
        if spec is not None and tick is not None:
            notional = spec.notional(lots, mid_price(tick.bid, tick.ask))
            expected = convert(notional, spec.quote, limits.account_currency, limits.instruments, view_mids)
        assert exposure(symbol, lots, engine.view, limits, view_mids) == expected


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.one_of(memo_steps.map(lambda steps: steps[0]), st.tuples(st.just("next_day"))),  # next_day: marks
        min_size=1,
        max_size=40,
    ),
    quoted=st.sets(st.sampled_from(MEMO_SYMBOLS), min_size=1),
)
def test_day_pnl_when_ticks_fills_days_and_limits_change_then_a_fresh_valuation_and_pythons_decimals_agree(
    steps: list[tuple[object, ...]], quoted: set[str]
) -> None:
    # The valuation keeps the day's parts while the books are the same; after every step the
    # engine's day P&L is the one a valuation without any memo gives, and the one Python's
    # decimals give over the same parts (_day_pnl_the_long_way), digit for digit.
    engine, clock = _engine()
    mids = dict(MEMO_MIDS)
    for symbol in sorted(quoted):
        price_at(engine, symbol, mids[symbol])
    for number, step in enumerate(steps, start=1):
        clock.advance(1)
        if step[0] == "next_day":  # past the rollover: the open positions are marked
            clock.advance(86_400_000)
            for symbol in sorted(quoted):
                price_at(engine, symbol, mids[symbol])
        elif step[0] == "tick":
            _, symbol, factor = step
            mids[symbol] = round(mids[symbol] * factor, 6)  # type: ignore[operator]
            price_at(engine, symbol, mids[symbol])  # type: ignore[arg-type]
        elif step[0] == "fill" and step[1] in quoted:  # off the mid: a cost, so the sum changes and no rate does
            _, symbol, hundredths = step
            price = round(mids[symbol] * 1.001, 6)  # type: ignore[index]
            record_fill(engine, number, symbol, Decimal(hundredths) / 100, price)  # type: ignore[arg-type]
        elif step[0] == "gold_lot":
            gold = SymbolSpec(digits=2, tick_size=0.01, contract_size=step[1])  # type: ignore[arg-type]
            engine.limits = replace(engine.limits, instruments={**INSTRUMENTS, **registry({"XAUUSD": gold})})
        expected = Valuation(engine.state).daily_pnl(engine.limits, clock.now_ms())
        assert str(engine.daily_pnl(clock.now_ms())) == str(expected)
        assert str(expected) == str(_day_pnl_the_long_way(engine, clock.now_ms()))


# The day's P&L as the engine valued it in Python before the core did, kept here as the oracle: per
# quote currency the realised P&L less the marks plus each open leg's units x mid - cost (exact),
# each non-zero sum converted at 28 digits along its route, the total summed from Decimal(0).
_CONVERTING = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN, traps=[decimal.InvalidOperation])


def _day_pnl_the_long_way(engine: Engine, now_ms: int) -> Decimal | None:
    state, limits = engine.state, engine.limits
    day = limits.market.trading_day(now_ms).isoformat()
    last_ticks, account = state.view.last_ticks, limits.account_currency
    sums: dict[str, Decimal] = dict(state.realized_by_day.get(day, {}))
    if day == state.marked_day:
        for symbol, mark in state.day_marks.items():
            quote = limits.instruments[symbol].quote
            sums[quote] = MONEY_CONTEXT.subtract(sums.get(quote, Decimal(0)), mark)
        for symbol, book in state.books.items():
            spec = limits.instruments.get(symbol)
            if not book.lots or spec is None:
                continue
            contract = to_decimal(spec.contract_size)
            units, cost = (
                MONEY_CONTEXT.multiply(book.lots, contract),
                MONEY_CONTEXT.multiply(book.entry_value(), contract),
            )
            amount = sums.get(spec.quote, Decimal(0))
            tick = last_ticks.get(symbol)
            if tick is not None:
                value = MONEY_CONTEXT.multiply(units, to_decimal(mid_price(tick.bid, tick.ask)))
                amount = MONEY_CONTEXT.add(amount, MONEY_CONTEXT.subtract(value, cost))
            sums[spec.quote] = amount
    total = Decimal(0)
    for currency, amount in sums.items():
        if not amount:
            continue
        if currency != account:
            rate_mids = {
                symbol: mid_price(tick.bid, tick.ask)
                for symbol in rate_symbols(currency, account, limits.instruments)
                if (tick := last_ticks.get(symbol)) is not None
            }
            route = conversion_route(currency, account, limits.instruments, rate_mids)
            if route is None:
                return None
            for mid, multiplies in route:
                rate = Decimal(repr(mid))
                amount = _CONVERTING.multiply(amount, rate) if multiplies else _CONVERTING.divide(amount, rate)
        total = MONEY_CONTEXT.add(total, amount)
    return total
