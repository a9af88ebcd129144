"""Each pre-trade check on its own, and the gate's order."""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from execution.core.limits import RiskLimits
from execution.core.risk import (
    CHECKS,
    FixedDayPnl,
    PriceWindow,
    ProposedOrder,
    RiskView,
    check_consecutive_rejects,
    check_daily_loss,
    check_flash_crash,
    check_gross_exposure,
    check_market_open,
    check_max_order_size,
    check_max_position,
    check_order_rate,
    check_price_collar,
    check_signal_ttl,
    check_symbol_allowed,
    check_trading_state,
    first_denial,
    is_reducing,
)
from tests.unit.execution.helpers import ALWAYS_OPEN, WEDNESDAY_NOON_MS, execution_settings, signal, tick
from tickwave.config import MarketSettings

NOW = WEDNESDAY_NOON_MS
LIMITS = RiskLimits.from_settings(execution_settings(max_orders_per_second=2, max_gross_exposure=250_000))


def _order(side: str = "buy", lots: float = 0.5, symbol: str = "EURUSD", age_ms: int = 0) -> ProposedOrder:
    return ProposedOrder(signal(1, NOW - age_ms, symbol=symbol), side, lots)  # type: ignore[arg-type]


def _view(**changes: object) -> RiskView:
    view = RiskView(last_ticks={"EURUSD": tick(NOW), "USDJPY": tick(NOW, 150.0, "USDJPY", 0.01)})
    for name, value in changes.items():
        setattr(view, name, value)
    return view


def test_is_reducing_when_the_view_changed_after_a_gate_pass_then_it_answers_for_the_new_view() -> None:
    # The gate works the answer out once for its checks; it must not outlive the pass.
    view, order = _view(positions={"EURUSD": Decimal("1.0")}), _order("sell", 0.5)
    assert first_denial(order, view, LIMITS, NOW) is None
    assert is_reducing(order, view)
    view.positions["EURUSD"] = Decimal("-1.0")  # now short: selling adds to the position
    assert not is_reducing(order, view)
    assert check_max_position(_order("sell", 0.5), view, LIMITS, NOW) == check_max_position(order, view, LIMITS, NOW)


def test_checks_when_listed_then_in_the_documented_order() -> None:
    assert [check.__name__.removeprefix("check_") for check in CHECKS] == [
        "trading_state",
        "symbol_allowed",
        "market_open",
        "signal_ttl",
        "max_order_size",
        "no_price",
        "max_position",
        "gross_exposure",
        "price_collar",
        "order_rate",
        "daily_loss",
        "consecutive_rejects",
        "flash_crash",
    ]


def test_gate_when_everything_is_fine_then_no_denial() -> None:
    assert first_denial(_order(), _view(), LIMITS, NOW) is None


@pytest.mark.parametrize(
    ("state", "halted", "position", "side", "lots", "denied"),
    [
        ("HALTED", set(), Decimal(0), "buy", 0.1, True),
        ("ACTIVE", {"EURUSD"}, Decimal(0), "buy", 0.1, True),
        ("ACTIVE", {"GBPUSD"}, Decimal(0), "buy", 0.1, False),
        ("REDUCING", set(), Decimal("0.5"), "sell", 0.2, False),
        ("REDUCING", set(), Decimal("0.5"), "buy", 0.1, True),
        ("REDUCING", set(), Decimal("0.5"), "sell", 1.0, True),  # flips to short: not a reduction
        ("REDUCING", set(), Decimal(0), "buy", 0.1, True),
    ],
)
def test_trading_state_when_state_and_order_then_denied_as_expected(
    state: str, halted: set[str], position: Decimal, side: str, lots: float, denied: bool
) -> None:
    view = _view(trading_state=state, halted_symbols=halted, positions={"EURUSD": position})
    assert (check_trading_state(_order(side, lots), view, LIMITS, NOW) is not None) is denied


@pytest.mark.parametrize(
    ("position", "pending", "side", "lots", "denied"),
    [
        # Long 1.0 with a working sell of 1.0: flat once it fills, so a further sell opens a short.
        (Decimal("1.0"), Decimal("-1.0"), "sell", 0.5, True),
        # Flat with a working buy of 1.0: a sell of 0.5 brings what will be held towards flat.
        (Decimal(0), Decimal("1.0"), "sell", 0.5, False),
        # Long 0.5 with a working buy of 0.5: a sell of 0.8 still leaves a long, so it reduces.
        (Decimal("0.5"), Decimal("0.5"), "sell", 0.8, False),
    ],
)
def test_trading_state_when_reducing_then_working_orders_count_towards_the_position(
    position: Decimal, pending: Decimal, side: str, lots: float, denied: bool
) -> None:
    view = _view(trading_state="REDUCING", positions={"EURUSD": position}, pending={"EURUSD": pending})
    assert (check_trading_state(_order(side, lots), view, LIMITS, NOW) is not None) is denied
    # The capital checks let only a true reduction through unchecked: a max position of 0.1 lots
    # denies the new short, not the reduction.
    tight = RiskLimits.from_settings(execution_settings(max_position_lots=0.1, max_gross_exposure=250_000))
    assert (check_max_position(_order(side, lots), view, tight, NOW) is not None) is denied


def test_symbol_allowed_when_unknown_symbol_then_denied() -> None:
    assert check_symbol_allowed(_order(symbol="DOGEUSD"), _view(), LIMITS, NOW) is not None
    assert check_symbol_allowed(_order(), _view(), LIMITS, NOW) is None


@pytest.mark.parametrize(
    ("iso_offset_hours", "is_open"),
    [(0, True), (2 * 24 + 9, True), (2 * 24 + 10, False), (3 * 24, False), (4 * 24 + 9, False), (4 * 24 + 10, True)],
)
def test_market_open_when_fx_hours_then_closed_friday_to_sunday_17_new_york(
    iso_offset_hours: int, is_open: bool
) -> None:
    # November (New York on EST, UTC-5): Wednesday 12:00 UTC + 2 days 9 h = Friday 21:00 UTC = 16:00 New York
    # (open); +10 h = 17:00 New York (closed); Sunday 22:00 UTC = 17:00 New York reopens.
    now_ms = NOW + iso_offset_hours * 3_600_000
    assert LIMITS.market.is_open(now_ms) is is_open
    assert (check_market_open(_order(), _view(), LIMITS, now_ms) is None) is is_open
    always = RiskLimits.from_settings(execution_settings(), market=ALWAYS_OPEN)
    assert always.market.is_open(now_ms)


def test_market_open_when_summer_or_holiday_then_new_york_time_decides() -> None:
    friday_july_2100_utc = 1_720_213_200_000  # 2024-07-05 21:00 UTC = 17:00 New York (EDT): closed
    assert not LIMITS.market.is_open(friday_july_2100_utc)
    assert LIMITS.market.is_open(friday_july_2100_utc - 60_000)
    holiday = RiskLimits.from_settings(execution_settings(), market=MarketSettings(holidays=(date(2023, 11, 15),)))
    assert not holiday.market.is_open(NOW)


def test_signal_ttl_when_older_than_ttl_then_denied() -> None:
    assert check_signal_ttl(_order(age_ms=LIMITS.signal_ttl_ms + 1), _view(), LIMITS, NOW) is not None
    assert check_signal_ttl(_order(age_ms=LIMITS.signal_ttl_ms), _view(), LIMITS, NOW) is None


def test_max_order_size_when_larger_than_limit_then_denied() -> None:
    assert check_max_order_size(_order(lots=1.01), _view(), LIMITS, NOW) is not None
    assert check_max_order_size(_order(lots=1.0), _view(), LIMITS, NOW) is None


@pytest.mark.parametrize(
    ("position", "side", "lots", "denied"),
    [("0.6", "buy", 0.4, False), ("0.6", "buy", 0.5, True), ("-0.9", "sell", 0.2, True), ("-0.9", "buy", 1.0, False)],
)
def test_max_position_when_order_would_exceed_then_denied(position: str, side: str, lots: float, denied: bool) -> None:
    view = _view(positions={"EURUSD": Decimal(position)})
    assert (check_max_position(_order(side, lots), view, LIMITS, NOW) is not None) is denied


def test_gross_exposure_when_sum_of_notionals_exceeds_then_denied() -> None:
    # 1 lot USDJPY = 100k USD; 1.2 lots EURUSD at 1.1 = 132k USD: 232k < 250k; 1.5 lots = 265k > 250k.
    view = _view(positions={"USDJPY": Decimal("1")})
    assert check_gross_exposure(_order(lots=1.2), view, LIMITS, NOW) is None
    assert check_gross_exposure(_order(lots=1.5), view, LIMITS, NOW) is not None
    view.last_ticks.pop("USDJPY")
    denial = check_gross_exposure(_order(lots=0.1), view, LIMITS, NOW) or pytest.fail()
    assert denial.check == "no_rate" and "USDJPY" in denial.reason


def test_price_collar_when_no_stale_or_wide_quote_then_denied() -> None:
    assert check_price_collar(_order(symbol="GBPUSD"), _view(), LIMITS, NOW) is not None
    stale = _view(last_ticks={"EURUSD": tick(NOW - LIMITS.max_tick_age_ms - 1)})
    assert check_price_collar(_order(), stale, LIMITS, NOW) is not None
    wide = _view(last_ticks={"EURUSD": tick(NOW, spread=0.0060)})  # ~55 bps > 50
    assert check_price_collar(_order(), wide, LIMITS, NOW) is not None
    far_limit = ProposedOrder(signal(1, NOW), "buy", 0.1, limit_price=1.2)
    assert check_price_collar(far_limit, _view(), LIMITS, NOW) is not None


def test_price_collar_when_spread_or_limit_distance_is_exactly_the_collar_then_passes() -> None:
    # bid 0.75, ask 1.25: mid 1.0 and a spread of exactly 5,000 bps (every figure exact in binary).
    at_collar = _view(last_ticks={"EURUSD": tick(NOW, mid=1.0, spread=0.5)})
    limits = replace(LIMITS, price_collar_bps=5_000.0)
    assert check_price_collar(_order(), at_collar, limits, NOW) is None
    assert check_price_collar(_order(), at_collar, replace(LIMITS, price_collar_bps=4_999.0), NOW) is not None
    wide_limit = ProposedOrder(signal(1, NOW), "buy", 0.1, limit_price=1.5)  # 5,000 bps from mid 1.0
    narrow = _view(last_ticks={"EURUSD": tick(NOW, mid=1.0, spread=0.25)})
    assert check_price_collar(wide_limit, narrow, limits, NOW) is None


def test_order_rate_when_limit_reached_within_one_second_then_denied() -> None:
    assert check_order_rate(_order(), _view(order_times_ms=deque([NOW - 999, NOW - 10])), LIMITS, NOW) is not None
    assert check_order_rate(_order(), _view(order_times_ms=deque([NOW - 1000, NOW - 10])), LIMITS, NOW) is None


def test_daily_loss_when_breached_then_denied_and_halts_trading() -> None:
    denial = check_daily_loss(_order(), _view(day_pnl=FixedDayPnl(-LIMITS.daily_loss_limit)), LIMITS, NOW)
    assert denial is not None and denial.halts == "trading"
    assert check_daily_loss(_order(), _view(day_pnl=FixedDayPnl(-LIMITS.daily_loss_limit + 1)), LIMITS, NOW) is None


def test_consecutive_rejects_when_limit_reached_then_denied_and_halts_trading() -> None:
    denial = check_consecutive_rejects(_order(), _view(consecutive_rejects=LIMITS.max_consecutive_rejects), LIMITS, NOW)
    assert denial is not None and denial.halts == "trading"


def test_flash_crash_when_move_exceeds_threshold_within_window_then_halts_symbol() -> None:
    window = PriceWindow(LIMITS.flash_crash_window_ms)
    window.update(NOW - 4000, 1.10)
    window.update(NOW, 1.10 * 0.97)
    denial = check_flash_crash(_order(), _view(price_windows={"EURUSD": window}), LIMITS, NOW)
    assert denial is not None and denial.halts == "symbol"


def test_price_window_when_old_prices_leave_the_window_then_move_shrinks() -> None:
    window = PriceWindow(1000)
    window.update(0, 100.0)
    window.update(500, 103.0)
    assert window.move_pct() == pytest.approx(3.0)
    window.update(1600, 103.0)
    assert window.move_pct() == 0.0
