"""The gross exposure check answered as its exact sum answers it, with or without the float screen.

``check_gross_exposure`` first sums the legs in floats (the core's ``gate.rs``) and lets the
order through when that sum is under the limit by more than its error bound; these tests
hold its answer equal to the exact sum's (each leg's :func:`exposure`, added exactly) at
limits right beside that sum, where only the exact sum can tell, and far from it.
"""

from __future__ import annotations

import decimal
from dataclasses import replace
from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from execution.core.limits import RiskLimits
from execution.core.risk import ProposedOrder, RiskView, check_gross_exposure, exposure, is_reducing
from tests.unit.execution.helpers import ALWAYS_OPEN, WEDNESDAY_NOON_MS, execution_settings, signal, tick
from tickwave.money import MONEY_CONTEXT

NOW = WEDNESDAY_NOON_MS
LIMITS = RiskLimits.from_settings(execution_settings(), market=ALWAYS_OPEN)
# Quoted in USD, JPY (through USDJPY), GBP (through GBPUSD) and CHF (through USDCHF).
SYMBOLS = ["EURUSD", "XAUUSD", "USDJPY", "EURJPY", "GBPUSD", "EURGBP", "USDCHF", "EURCHF"]
WIDE = decimal.Context(prec=80)  # digits enough to step one unit of the last place of any total here
lots = st.decimals(min_value=-40, max_value=40, places=2)


def _exact_total(order: ProposedOrder, view: RiskView, limits: RiskLimits) -> Decimal | None:
    """The gross exposure after ``order``: every leg's exact exposure, summed exactly (None: a rate is missing)."""
    total = Decimal(0)
    for held in view.positions.keys() | view.pending.keys() | {order.signal.symbol}:
        amount = view.exposure_lots(held) + (order.signed_lots if held == order.signal.symbol else 0)
        if amount == 0:
            continue
        value = exposure(held, amount, view, limits)
        if value is None:
            return None
        total = MONEY_CONTEXT.add(total, value)
    return total


@settings(max_examples=300, deadline=None)
@given(
    mids=st.fixed_dictionaries({symbol: st.floats(min_value=0.3, max_value=3_000) for symbol in SYMBOLS}),
    positions=st.dictionaries(st.sampled_from(SYMBOLS), lots, max_size=5),
    pending=st.dictionaries(st.sampled_from(SYMBOLS), lots, max_size=3),
    symbol=st.sampled_from(SYMBOLS),
    side=st.sampled_from(["buy", "sell"]),
    size=st.sampled_from([0.01, 0.1, 0.37, 1.0, 12.5]),
    where=st.sampled_from(["at", "unit_below", "unit_above", "ulp_below", "ulp_above", "far_below", "far_above"]),
)
def test_gross_exposure_when_the_limit_is_beside_or_far_from_the_sum_then_it_answers_as_the_exact_sum(
    mids: dict[str, float],
    positions: dict[str, Decimal],
    pending: dict[str, Decimal],
    symbol: str,
    side: str,
    size: float,
    where: str,
) -> None:
    view = RiskView(
        last_ticks={name: tick(NOW, mid, name, mid * 0.00002) for name, mid in mids.items()},
        positions=positions,
        pending=pending,
    )
    order = ProposedOrder(signal(1, NOW, symbol=symbol), side, size)  # type: ignore[arg-type]
    assume(not is_reducing(order, view))  # a reducing order passes before any sum
    total = _exact_total(order, view, LIMITS)
    assume(total is not None and total > 0)
    unit = Decimal(1).scaleb(total.adjusted() - 79)  # one unit of the 80th digit
    limit = {
        "at": total,
        "unit_below": WIDE.subtract(total, unit),
        "unit_above": WIDE.add(total, unit),
        "ulp_below": WIDE.multiply(total, Decimal(1 - 2**-50)),
        "ulp_above": WIDE.multiply(total, Decimal(1 + 2**-50)),
        "far_below": total / 2,
        "far_above": total * 2,
    }[where]
    limits = replace(LIMITS, max_gross_exposure=limit)
    denial = check_gross_exposure(order, view, limits, NOW)
    assert (denial is not None) == (total > limit), (total, limit)
    if denial is not None:
        assert denial.check == "gross_exposure"


def test_gross_exposure_when_one_unit_over_on_every_sum_then_always_denied() -> None:
    # A book across USD, JPY and GBP legs, the limit one unit of the 80th digit under its exact sum,
    # then at it: the float sum cannot tell these apart, so every answer is the exact one's.
    positions = {"EURJPY": Decimal("3.17"), "GBPUSD": Decimal("-1.03"), "EURGBP": Decimal("0.29")}
    for step in range(200):
        mids = {
            "EURUSD": 1.1,
            "XAUUSD": 2300.0,
            "USDJPY": 150.0 + step * 0.0137,
            "EURJPY": 163.0 - step * 0.0071,
            "GBPUSD": 1.27 + step * 0.00013,
            "EURGBP": 0.87,
            "USDCHF": 0.9,
            "EURCHF": 0.95,
        }
        view = RiskView(
            last_ticks={name: tick(NOW, mid, name, mid * 0.00002) for name, mid in mids.items()}, positions=positions
        )
        order = ProposedOrder(signal(step, NOW, symbol="USDJPY"), "buy", 0.37)
        total = _exact_total(order, view, LIMITS)
        assert total is not None
        under = WIDE.subtract(total, Decimal(1).scaleb(total.adjusted() - 79))
        denial = check_gross_exposure(order, view, replace(LIMITS, max_gross_exposure=under), NOW)
        assert denial is not None and denial.check == "gross_exposure", step
        assert check_gross_exposure(order, view, replace(LIMITS, max_gross_exposure=total), NOW) is None
