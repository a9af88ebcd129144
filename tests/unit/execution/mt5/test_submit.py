"""The MT5 broker's requests and retcodes: filling, retries, refusals, partial fills, resends.

Every test runs on a netting and on a hedging account (the ``margin_mode`` fixture).
"""

from __future__ import annotations

import pytest

from adapters.mt5.api import Constants as C
from tests.unit.execution.mt5.helpers import MAGIC, make_broker, make_intent, make_terminal, sent_requests
from tickwave.contracts import OrderAccepted, OrderFilled, OrderRejected


@pytest.mark.parametrize(
    ("filling_mode", "expected"), [(1, C.ORDER_FILLING_FOK), (3, C.ORDER_FILLING_FOK), (2, C.ORDER_FILLING_IOC)]
)
def test_submit_when_done_then_accepted_and_filled_with_magic_comment_and_allowed_filling(
    filling_mode: int, expected: int
) -> None:
    fake, terminal = make_terminal(filling_mode)
    events = make_broker(terminal).submit(make_intent())
    assert [type(e).__name__ for e in events] == ["OrderAccepted", "OrderFilled", "Fill"]
    filled = events[1]
    assert isinstance(filled, OrderFilled) and filled.fill_price == 1.1001 and filled.is_final
    request = sent_requests(fake)[0]
    assert (request["magic"], request["comment"], request["type_filling"]) == (
        MAGIC,
        make_intent().client_order_id,
        expected,
    )
    assert [name for name, _, _ in fake.calls].index("order_check") < [name for name, _, _ in fake.calls].index(
        "order_send"
    )


def test_submit_when_requoted_then_retried_and_one_order_exists() -> None:
    fake, terminal = make_terminal()
    fake.script(C.TRADE_RETCODE_REQUOTE, C.TRADE_RETCODE_PRICE_OFF)
    events = make_broker(terminal).submit(make_intent())
    assert isinstance(events[0], OrderAccepted)
    assert len(sent_requests(fake)) == 3
    assert len(fake.history_orders_get(ticket=int(events[0].broker_order_id))) == 1
    assert len(fake.history_deals_get(0, 2_000_000_000)) == 1


def test_submit_when_requotes_outlast_retries_then_rejected() -> None:
    fake, terminal = make_terminal()
    fake.script(*[C.TRADE_RETCODE_REQUOTE] * 5)
    events = make_broker(terminal, max_retries=2).submit(make_intent())
    assert len(sent_requests(fake)) == 3
    assert isinstance(events[0], OrderRejected) and events[0].broker_code == C.TRADE_RETCODE_REQUOTE


@pytest.mark.parametrize(
    "retcode", [C.TRADE_RETCODE_REJECT, C.TRADE_RETCODE_NO_MONEY, C.TRADE_RETCODE_TOO_MANY_REQUESTS]
)
def test_submit_when_refused_by_server_then_rejected_without_retry(retcode: int) -> None:
    fake, terminal = make_terminal()
    fake.script(retcode)
    events = make_broker(terminal).submit(make_intent())
    assert len(sent_requests(fake)) == 1
    assert isinstance(events[0], OrderRejected) and events[0].broker_code == retcode


@pytest.mark.parametrize(
    ("setup", "retcode"),
    [
        (lambda fake: fake.closed_symbols.add("EURUSD"), C.TRADE_RETCODE_MARKET_CLOSED),
        (lambda fake: setattr(fake, "is_trade_allowed", False), C.TRADE_RETCODE_CLIENT_DISABLES_AT),
    ],
)
def test_submit_when_order_check_refuses_then_rejected_and_nothing_sent(setup: object, retcode: int) -> None:
    fake, terminal = make_terminal()
    setup(fake)  # type: ignore[operator]
    events = make_broker(terminal).submit(make_intent())
    assert sent_requests(fake) == []
    assert isinstance(events[0], OrderRejected) and events[0].broker_code == retcode


def test_submit_when_symbol_allows_no_market_filling_then_invalid_fill() -> None:
    _, terminal = make_terminal(filling_mode=0)
    events = make_broker(terminal).submit(make_intent())
    assert isinstance(events[0], OrderRejected) and events[0].broker_code == C.TRADE_RETCODE_INVALID_FILL


def test_submit_when_partial_then_partial_fill_and_rest_canceled() -> None:
    fake, terminal = make_terminal(filling_mode=2)
    fake.script(C.TRADE_RETCODE_DONE_PARTIAL)
    events = make_broker(terminal).submit(make_intent(lots=0.4))
    assert [type(e).__name__ for e in events] == ["OrderAccepted", "OrderFilled", "Fill", "OrderCanceled"]
    assert events[1].fill_lots == 0.2 and not events[1].is_final  # type: ignore[union-attr]


def test_submit_when_the_same_client_order_id_comes_again_then_sent_once_even_after_a_restart() -> None:
    fake, terminal = make_terminal()
    make_broker(terminal).submit(make_intent())

    again = make_broker(terminal).submit(make_intent())  # a new process, the same order

    assert again == [] and len(sent_requests(fake)) == 1


def test_submit_when_the_quote_fails_after_a_requote_then_rejected_not_raised() -> None:
    fake, terminal = make_terminal()
    fake.script(C.TRADE_RETCODE_REQUOTE)
    calls = {"n": 0}
    original = fake.symbol_info_tick

    def flaky_tick(symbol: str) -> object:
        calls["n"] += 1
        if calls["n"] >= 2:  # the retry's fresh quote
            fake._fail(C.RES_E_INTERNAL_FAIL_TIMEOUT, "Terminal: timeout")
            return None
        return original(symbol)

    fake.symbol_info_tick = flaky_tick  # type: ignore[method-assign]

    events = make_broker(terminal).submit(make_intent())

    assert [type(e).__name__ for e in events] == ["OrderRejected"] and "requote" in events[0].reason  # type: ignore[union-attr]
