"""The fake terminal's trading calls behave as the package documents them."""

from __future__ import annotations

from adapters.mt5.api import Constants as C
from testkit.mt5 import HEDGING, NETTING, FakeTradingMetaTrader5, make_ticks

NOW = 1_700_000_000_000


def _fake(margin_mode: int = NETTING) -> FakeTradingMetaTrader5:
    fake = FakeTradingMetaTrader5(margin_mode=margin_mode)
    fake.add_symbol("EURUSD", digits=5, filling_mode=1)
    fake.push_ticks("EURUSD", make_ticks([(NOW, 1.1, 1.1002)]))
    assert fake.initialize()
    return fake


def _deal(side: int, volume: float, comment: str = "tw-x") -> dict[str, object]:
    return {
        "action": C.TRADE_ACTION_DEAL,
        "symbol": "EURUSD",
        "volume": volume,
        "type": side,
        "price": 0.0,
        "deviation": 10,
        "magic": 7,
        "comment": comment,
        "type_time": C.ORDER_TIME_GTC,
        "type_filling": C.ORDER_FILLING_FOK,
    }


def test_order_send_when_buy_then_sell_more_then_netting_position_flips_with_deal_entries() -> None:
    fake = _fake()
    first = fake.order_send(_deal(C.ORDER_TYPE_BUY, 0.3))
    second = fake.order_send(_deal(C.ORDER_TYPE_SELL, 0.5))
    assert first is not None and second is not None
    assert (first.retcode, first.price, second.price) == (C.TRADE_RETCODE_DONE, 1.1002, 1.1)
    (position,) = fake.positions_get(symbol="EURUSD")
    assert (position.type, position.volume, position.price_open) == (C.POSITION_TYPE_SELL, 0.2, 1.1)
    entries = [deal.entry for deal in fake.history_deals_get(0, 2_000_000_000)]
    assert entries == [C.DEAL_ENTRY_IN, C.DEAL_ENTRY_INOUT]
    assert [d.order for d in fake.history_deals_get(ticket=second.order)] == [second.order]


def test_order_check_when_fine_then_retcode_zero_and_nothing_traded() -> None:
    fake = _fake()
    result = fake.order_check(_deal(C.ORDER_TYPE_BUY, 0.1))
    assert result is not None and (result.retcode, result.comment) == (0, "Done")
    assert fake.history_orders_get(0, 2_000_000_000) == ()


def test_order_send_when_comment_too_long_or_bad_volume_then_truncated_or_refused() -> None:
    fake = _fake()
    result = fake.order_send(_deal(C.ORDER_TYPE_BUY, 0.1, comment="x" * 40))
    assert result is not None and result.request.comment == "x" * 31
    refused = fake.order_send(_deal(C.ORDER_TYPE_BUY, 0.015))
    assert refused is not None and refused.retcode == C.TRADE_RETCODE_INVALID_VOLUME


def test_calls_when_not_initialized_then_none_and_last_error_no_ipc() -> None:
    fake = FakeTradingMetaTrader5()
    assert fake.order_send(_deal(C.ORDER_TYPE_BUY, 0.1)) is None
    assert fake.last_error()[0] == C.RES_E_INTERNAL_FAIL_CONNECT


def test_order_send_when_hedging_then_a_sell_opens_beside_and_only_position_closes() -> None:
    fake = _fake(HEDGING)
    assert fake.account_info().margin_mode == C.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
    long = fake.order_send(_deal(C.ORDER_TYPE_BUY, 0.3))
    fake.order_send(_deal(C.ORDER_TYPE_SELL, 0.1))  # no position: a new short beside the long
    assert long is not None
    assert sorted((p.type, p.volume) for p in fake.positions_get()) == [
        (C.POSITION_TYPE_BUY, 0.3),
        (C.POSITION_TYPE_SELL, 0.1),
    ]
    too_much = fake.order_send({**_deal(C.ORDER_TYPE_SELL, 0.5), "position": long.order})
    unknown = fake.order_send({**_deal(C.ORDER_TYPE_SELL, 0.1), "position": 42})
    closed = fake.order_send({**_deal(C.ORDER_TYPE_SELL, 0.3), "position": long.order})
    assert too_much is not None and unknown is not None and closed is not None
    assert (too_much.retcode, unknown.retcode, closed.retcode) == (
        C.TRADE_RETCODE_INVALID_CLOSE_VOLUME,
        C.TRADE_RETCODE_POSITION_CLOSED,
        C.TRADE_RETCODE_DONE,
    )
    assert [(p.type, p.volume) for p in fake.positions_get()] == [(C.POSITION_TYPE_SELL, 0.1)]
    assert fake.history_deals_get(ticket=closed.order)[0].entry == C.DEAL_ENTRY_OUT


def _stops(position: int, sl: float, tp: float) -> dict[str, object]:
    return {"action": C.TRADE_ACTION_SLTP, "symbol": "EURUSD", "position": position, "sl": sl, "tp": tp, "magic": 7}


def test_order_send_when_sltp_then_levels_set_checked_and_the_server_closes_on_the_crossing_tick() -> None:
    fake = _fake(HEDGING)
    opened = fake.order_send(_deal(C.ORDER_TYPE_BUY, 0.2))  # long at the ask 1.1002
    assert opened is not None
    ticket = opened.order

    wrong_side = fake.order_send(_stops(ticket, 1.1001, 0.0))  # a long's stop above the bid 1.1
    unknown = fake.order_send(_stops(ticket + 99, 1.0990, 0.0))
    done = fake.order_send(_stops(ticket, 1.0990, 1.1050))
    again = fake.order_send(_stops(ticket, 1.0990, 1.1050))

    assert [r.retcode for r in (wrong_side, unknown, done, again) if r is not None] == [
        C.TRADE_RETCODE_INVALID_STOPS,
        C.TRADE_RETCODE_POSITION_CLOSED,
        C.TRADE_RETCODE_DONE,
        C.TRADE_RETCODE_NO_CHANGES,
    ]
    (position,) = fake.positions_get()
    assert (position.sl, position.tp) == (1.0990, 1.1050)
    fake.push_ticks(
        "EURUSD",
        make_ticks([(NOW + 1_000, 1.0995, 1.0997), (NOW + 2_000, 1.0985, 1.0987), (NOW + 3_000, 1.0980, 1.0982)]),
    )
    assert fake.positions_get() == ()
    close = fake.history_deals_get(0, 2_000_000_000)[-1]
    assert (close.reason, close.price, close.volume, close.magic, close.position_id) == (
        C.DEAL_REASON_SL,
        1.0985,
        0.2,
        7,
        ticket,
    )  # the first tick at or below the stop, at its bid
    order = fake.history_orders_get(ticket=close.order)[0]
    assert (order.reason, order.comment, order.state) == (C.ORDER_REASON_SL, "[sl 1.099]", C.ORDER_STATE_FILLED)
