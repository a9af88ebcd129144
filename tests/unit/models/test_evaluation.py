"""Classification metrics and the backtest, on cases checked by hand."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.dataset import DOWN, FLAT, UP
from models.evaluation import (
    BacktestSettings,
    backtest,
    baseline_positions,
    binary_auc,
    classification_metrics,
    compare_with_baselines,
    log_loss,
    pip_size,
    reliability,
    signal_positions,
)
from streams.signals import signal_from
from tickwave.config import load_settings
from tickwave.contracts import Prediction
from tickwave.modeling import SignalRules

RULES = SignalRules(entry_probability=0.55, min_edge=0.10)
UNIT = BacktestSettings(lots=1.0, bars_per_year=1.0)


def rows(symbol: str, mids: list[float], next_mids: list[float], half_spread: str) -> pd.DataFrame:
    # Bid and ask a half spread either side of the mid, written as exact decimals.
    half = Decimal(half_spread)
    return pd.DataFrame(
        {
            "symbol": symbol,
            "bar_start_ms": [index * 60_000 for index in range(len(mids))],
            "mid_close": mids,
            "next_mid_close": next_mids,
            "bid_close": [float(Decimal(repr(float(mid))) - half) for mid in mids],
            "ask_close": [float(Decimal(repr(float(mid))) + half) for mid in mids],
        }
    )


# EURUSD, 4 bars, spread 2 pips; positions long, long, short, flat.
#   bar 0: enter long (cost 1 pip), earns +10 pips            -> net  +9
#   bar 1: hold long, earns -5 pips                           -> net  -5
#   bar 2: flip to short (cost 1 + 1 pips), earns -15 pips    -> net -17
#   bar 3: close the short (cost 1 pip), flat                 -> net  -1
HAND = rows("EURUSD", [1.1000, 1.1010, 1.1005, 1.1020], [1.1010, 1.1005, 1.1020, 1.1030], half_spread="0.0001")
HAND_POSITIONS = np.array([1, 1, -1, 0])


def test_backtest_when_hand_checked_then_pips_money_trades_and_drawdown_match() -> None:
    result = backtest(HAND, HAND_POSITIONS, UNIT)

    assert result.pnl_pips == Decimal(-14)
    assert result.pnl_account == Decimal(-140)  # -14 pips x 10 USD per pip, to the last digit
    assert result.trades == 2  # the long (bars 0-1: +5 - 1 - 1 = +3 pips) and the short (bar 2: -15 - 1 - 1 = -17)
    assert result.hit_rate == 0.5
    assert result.turnover == pytest.approx((1 + 0 + 2 + 1) / 4)
    assert result.max_drawdown_pips == Decimal(23)  # from +9 down to -14
    assert result.max_drawdown_account == Decimal(230)
    per_bar = np.array([90.0, -50.0, -170.0, -10.0])
    assert result.sharpe == pytest.approx(per_bar.mean() / per_bar.std(ddof=1))
    assert result.curve["equity_account"].to_numpy() == pytest.approx([90.0, 40.0, -130.0, -140.0])


def test_backtest_when_position_open_at_the_end_then_closed_at_half_the_last_spread() -> None:
    result = backtest(HAND.iloc[:2], np.array([1, 1]), UNIT)

    # +10 - 5 pips earned, 1 pip to enter, 1 pip to close at the end.
    assert result.pnl_pips == Decimal(3)
    assert result.trades == 1 and result.hit_rate == 1.0
    assert result.turnover == pytest.approx(2 / 2)


def test_backtest_when_usd_based_symbol_then_money_converted_at_the_mid() -> None:
    frame = rows("USDJPY", [150.00], [150.30], half_spread="0.01")

    result = backtest(frame, np.array([1]), UNIT)

    # +30 pips - 1 pip entry - 1 pip exit = 28 pips of 0.01 JPY: 2800 JPY per lot... / 150.30 USDJPY.
    assert pip_size("USDJPY", {}) == 0.01
    assert result.pnl_pips == Decimal(28)
    assert result.pnl_account == Decimal(28_000) / Decimal("150.3")


def test_backtest_when_no_signal_then_nothing_traded() -> None:
    result = backtest(HAND, np.zeros(4, dtype=int), UNIT)

    assert (result.trades, result.hit_rate, result.turnover, result.pnl_account) == (0, None, 0.0, Decimal(0))
    assert result.sharpe == 0.0 and result.max_drawdown_pips == 0.0


def test_backtest_when_rows_arrive_shuffled_and_symbols_mixed_then_identical_money() -> None:
    frame = pd.concat([HAND, rows("USDJPY", [150.0, 150.2, 150.1], [150.2, 150.1, 150.4], "0.01")], ignore_index=True)
    positions = np.array([1, 1, -1, 0, -1, 1, 1])
    order = np.random.default_rng(3).permutation(len(frame))

    straight = backtest(frame, positions, UNIT)
    shuffled = backtest(frame.iloc[order].reset_index(drop=True), positions[order], UNIT)

    assert shuffled.pnl_account == straight.pnl_account
    assert shuffled.max_drawdown_account == straight.max_drawdown_account
    assert shuffled.trades == straight.trades == 4


@settings(max_examples=50, deadline=None)
@given(moves=st.lists(st.integers(min_value=-30, max_value=30), min_size=2, max_size=40))
def test_backtest_when_always_long_without_spread_then_pnl_is_the_whole_move(moves: list[int]) -> None:
    mids = 1.1 + np.cumsum([0, *moves]) * 0.0001
    frame = rows("EURUSD", [round(mid, 4) for mid in mids[:-1]], [round(mid, 4) for mid in mids[1:]], "0")

    result = backtest(frame, np.ones(len(moves), dtype=int), UNIT)

    assert result.pnl_pips == sum(moves)
    assert result.trades == 1


@pytest.mark.parametrize(
    ("symbol", "digits", "expected"),
    [("EURUSD", 5, 0.0001), ("USDJPY", 3, 0.01), ("XAUUSD", 2, 0.01), ("EURUSD", 4, 0.0001), ("US500", 1, 0.1)],
)
def test_pip_size_when_symbol_registered_then_from_its_digits(symbol: str, digits: int, expected: float) -> None:
    assert pip_size(symbol, {symbol: digits}) == pytest.approx(expected)


def test_pip_size_when_symbol_unknown_then_fx_convention() -> None:
    assert (pip_size("EURJPY", {}), pip_size("EURGBP", {})) == (0.01, 0.0001)


def test_backtest_settings_when_from_settings_then_registry_digits_and_instruments() -> None:
    symbols = {
        "EURUSD": {"digits": 5, "tick_size": 0.00001, "contract_size": 1000.0},
        "USDJPY": {"digits": 3, "tick_size": 0.001},
    }
    settings = load_settings(symbols=symbols, models={"backtest_lots": 0.5, "timeframe": "1s"})

    backtest_settings = BacktestSettings.from_settings(settings)

    assert backtest_settings.lots == 0.5 and backtest_settings.instruments["EURUSD"].contract_size == 1000.0
    assert backtest_settings.digits["USDJPY"] == 3 and backtest_settings.bars_per_year == 252 * 86_400


def test_backtest_when_gold_then_a_lot_is_100_ounces() -> None:
    frame = rows("XAUUSD", [2300.00], [2310.00], half_spread="0.10")

    result = backtest(frame, np.array([1]), UNIT)

    # +10.00 USD per ounce - 0.10 entry - 0.10 exit = 9.80 per ounce x 100 oz (not x 100,000).
    assert result.pnl_account == Decimal(980)


def test_backtest_when_cross_then_converted_through_the_right_pairs() -> None:
    eurjpy = rows("EURJPY", [163.00], [163.50], half_spread="0")
    usdjpy = rows("USDJPY", [150.00], [150.00], half_spread="0")
    eurgbp = rows("EURGBP", [0.8700], [0.8710], half_spread="0")
    gbpusd = rows("GBPUSD", [1.2700], [1.2700], half_spread="0")
    flat = np.array([1, 0])

    jpy = backtest(pd.concat([eurjpy, usdjpy], ignore_index=True), flat, UNIT)
    gbp = backtest(pd.concat([eurgbp, gbpusd], ignore_index=True), flat, UNIT)

    assert jpy.pnl_account == Decimal(50_000) / Decimal(150)  # 0.50 JPY x 100,000 EUR, / USDJPY
    assert gbp.pnl_account == Decimal(100) * Decimal("1.27")  # 0.0010 GBP x 100,000, x GBPUSD
    with pytest.raises(ValueError, match="no rate to convert EURJPY's JPY P&L to USD"):
        backtest(eurjpy, np.array([1]), UNIT)


@pytest.mark.parametrize(
    ("positive", "scores", "expected"),
    [
        ([True, True, False, False], [0.9, 0.8, 0.2, 0.1], 1.0),  # every positive above every negative
        ([True, True, False, False], [0.1, 0.2, 0.8, 0.9], 0.0),
        ([True, False, True, False], [0.5, 0.5, 0.5, 0.5], 0.5),  # all tied
        ([True, False, False], [0.6, 0.6, 0.2], 0.75),  # one tie (half) and one win, over 2 pairs
    ],
)
def test_binary_auc_when_hand_checked_then_share_of_pairs_ranked_right(
    positive: list[bool], scores: list[float], expected: float
) -> None:
    assert binary_auc(np.array(positive), np.array(scores)) == pytest.approx(expected)


def test_log_loss_when_hand_checked_then_mean_negative_log_of_true_class() -> None:
    probabilities = np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]])

    assert log_loss(np.array([DOWN, UP]), probabilities) == pytest.approx(-(math.log(0.5) + math.log(0.8)) / 2)


def test_classification_metrics_when_hand_checked_then_brier_accuracy_precision_recall_match() -> None:
    labels = np.array([UP, UP, DOWN, FLAT, DOWN])
    probabilities = np.array(
        [
            [0.10, 0.20, 0.70],  # long, right
            [0.60, 0.20, 0.20],  # short, wrong
            [0.70, 0.20, 0.10],  # short, right
            [0.20, 0.20, 0.60],  # long, wrong (flat)
            [0.30, 0.40, 0.30],  # no signal
        ]
    )

    metrics = classification_metrics(labels, probabilities, RULES)

    assert metrics.accuracy == pytest.approx(2 / 5)
    assert metrics.brier == pytest.approx((0.14 + 1.04 + 0.14 + 1.04 + 0.74) / 5)
    assert metrics.signals == 4
    assert metrics.precision == pytest.approx(2 / 4)
    assert metrics.recall == pytest.approx(2 / 4)  # 2 of the 4 up/down rows got the matching signal
    assert (metrics.precision_long, metrics.recall_long) == (pytest.approx(1 / 2), pytest.approx(1 / 2))
    assert (metrics.precision_short, metrics.recall_short) == (pytest.approx(1 / 2), pytest.approx(1 / 2))
    assert metrics.auc is not None and 0.0 <= metrics.auc <= 1.0


def test_classification_metrics_when_no_signal_then_precision_undefined_and_left_out() -> None:
    labels = np.array([UP, DOWN])
    probabilities = np.full((2, 3), 1 / 3)

    metrics = classification_metrics(labels, probabilities, RULES)

    assert metrics.precision is None and metrics.signals == 0
    assert "precision" not in metrics.as_dict() and metrics.as_dict()["recall"] == 0.0


def test_reliability_when_hand_checked_then_expected_calibration_error_matches() -> None:
    labels = np.array([UP, UP, DOWN, DOWN])
    probabilities = np.array([[0.1, 0.1, 0.8], [0.1, 0.1, 0.8], [0.7, 0.1, 0.2], [0.7, 0.1, 0.2]])

    curve = reliability(labels, probabilities, UP)

    # bin [0.8, 0.9): mean 0.8, observed 1.0; bin [0.2, 0.3): mean 0.2, observed 0.0.
    assert curve.predicted == pytest.approx((0.2, 0.8))
    assert curve.observed == (0.0, 1.0)
    assert curve.error == pytest.approx(0.5 * 0.2 + 0.5 * 0.2)


probability_triples = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=3, max_size=3).filter(
    lambda values: sum(values) > 0
)


@settings(max_examples=200, deadline=None)
@given(triples=st.lists(probability_triples, min_size=1, max_size=20))
def test_signal_positions_when_any_probabilities_then_same_direction_as_the_streams(
    triples: list[list[float]],
) -> None:
    probabilities = np.array([[value / sum(triple) for value in triple] for triple in triples])

    positions = signal_positions(probabilities, RULES)

    for row, position in zip(probabilities, positions, strict=True):
        by_label = {"down": float(row[DOWN]), "flat": float(row[FLAT]), "up": float(row[UP])}
        prediction = Prediction(
            symbol="EURUSD",
            timeframe="1m",
            bar_start_ms=0,
            model_id="m",
            model_version=1,
            probabilities=by_label,
            inference_latency_us=1.0,
            predicted_at_ms=0,
        )
        direction = signal_from(prediction, RULES, 0).direction
        assert {"long": 1, "short": -1, "flat": 0}[direction] == position


def with_previous(frame: pd.DataFrame, first_previous: float) -> pd.DataFrame:
    """``frame`` with each row's previous close (the row before's mid; ``first_previous`` for the first)."""
    previous = [first_previous, *frame["mid_close"].tolist()[:-1]]
    return frame.assign(previous_mid_close=previous)


def test_baseline_positions_when_hand_checked_then_flat_never_trades_and_last_direction_follows_the_bar() -> None:
    frame = with_previous(
        HAND, 1.0990
    )  # closes 1.0990 -> 1.1000 (up), -> 1.1010 (up), -> 1.1005 (down), -> 1.1020 (up)

    assert baseline_positions(frame, "flat").tolist() == [0, 0, 0, 0]
    assert baseline_positions(frame, "last_direction").tolist() == [1, 1, -1, 1]
    assert baseline_positions(frame.assign(previous_mid_close=np.nan), "last_direction").tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_positions(frame, "coin")


def test_compare_with_baselines_when_hand_checked_then_pnl_after_costs_of_each() -> None:
    frame = with_previous(HAND, 1.0990)
    # The candidate goes long, long, short, flat: HAND_POSITIONS, -140 USD.
    probabilities = np.array([[0.1, 0.1, 0.8], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1], [0.3, 0.4, 0.3]])

    comparison = compare_with_baselines(frame, probabilities, RULES, UNIT)

    # last_direction: long, long, short, long: +9, -5, -17, then flip long (1 + 1 pips) +10, close at the end -1:
    # 9 - 5 - 17 + 7 = -6 pips = -60 USD.
    assert comparison.figures() == {
        "candidate_pnl_account": -140.0,
        "candidate_trades": 2.0,
        "baseline_flat_pnl_account": 0.0,
        "baseline_last_direction_pnl_account": -60.0,
    }
