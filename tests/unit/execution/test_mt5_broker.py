"""The MT5 broker against the fake terminal: requests, retcodes, retries, polling, reconciliation.

Every test runs on a netting and on a hedging account (the ``margin_mode`` fixture).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.mt5.api import Constants as C
from adapters.mt5.terminal import Terminal
from execution.app import build_service
from execution.brokers.mt5 import Mt5Broker
from execution.service import ExecutionService
from execution.state import OrderStatus
from testkit.mt5_fake import make_ticks
from testkit.mt5_fake_trading import HEDGING, NETTING, FakeTradingMetaTrader5
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, ListPublisher, signal, tick
from tickwave.clock import ManualClock
from tickwave.config import ExecutionSettings, MT5BrokerSettings, RiskSettings, load_settings
from tickwave.contracts import (
    ControlCommand,
    OrderAccepted,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderSubmitted,
    RiskEvent,
)

MAGIC = 770_077
MARGIN_MODE = {"mode": NETTING}


@pytest.fixture(autouse=True, params=[NETTING, HEDGING], ids=["netting", "hedging"])
def margin_mode(request: pytest.FixtureRequest) -> int:
    MARGIN_MODE["mode"] = request.param
    return int(request.param)


def _terminal(filling_mode: int = 1) -> tuple[FakeTradingMetaTrader5, Terminal]:
    fake = FakeTradingMetaTrader5(margin_mode=MARGIN_MODE["mode"])
    fake.add_symbol("EURUSD", digits=5, filling_mode=filling_mode)
    fake.push_ticks("EURUSD", make_ticks([(WEDNESDAY_NOON_MS, 1.10000, 1.10010)]))
    terminal = Terminal(load_settings().mt5, api=fake)
    terminal.connect()
    terminal.call("symbol_select", "EURUSD", True)
    return fake, terminal


def _intent(index: int = 1, side: str = "buy", lots: float = 0.1) -> OrderIntent:
    s = signal(index, WEDNESDAY_NOON_MS)
    return OrderIntent(client_order_id=f"tw-{index:024x}", signal_id=s.signal_id, symbol="EURUSD", side=side,  # type: ignore[arg-type]
                       quantity_lots=lots, order_type="market", model_id="m1", model_version=1,
                       created_at_ms=WEDNESDAY_NOON_MS)  # fmt: skip


def _broker(terminal: Terminal, risk: dict[str, Any] | None = None, **mt5_broker: Any) -> Mt5Broker:
    settings = ExecutionSettings(risk=RiskSettings(**(risk or {})), mt5_broker=MT5BrokerSettings(**mt5_broker))
    return Mt5Broker(settings, ManualClock(WEDNESDAY_NOON_MS), terminal)


def _sent(fake: FakeTradingMetaTrader5) -> list[dict[str, object]]:
    return [args[0] for name, args, _ in fake.calls if name == "order_send"]


@pytest.mark.parametrize(("filling_mode", "expected"), [(1, C.ORDER_FILLING_FOK), (3, C.ORDER_FILLING_FOK),
                                                        (2, C.ORDER_FILLING_IOC)])  # fmt: skip
def test_submit_when_done_then_accepted_and_filled_with_magic_comment_and_allowed_filling(
    filling_mode: int, expected: int
) -> None:
    fake, terminal = _terminal(filling_mode)
    events = _broker(terminal).submit(_intent())
    assert [type(e).__name__ for e in events] == ["OrderAccepted", "OrderFilled", "Fill"]
    filled = events[1]
    assert isinstance(filled, OrderFilled) and filled.fill_price == 1.1001 and filled.is_final
    request = _sent(fake)[0]
    assert (request["magic"], request["comment"], request["type_filling"]) == (
        MAGIC,
        _intent().client_order_id,
        expected,
    )
    assert [name for name, _, _ in fake.calls].index("order_check") < [name for name, _, _ in fake.calls].index(
        "order_send"
    )


def test_submit_when_requoted_then_retried_and_one_order_exists() -> None:
    fake, terminal = _terminal()
    fake.script(C.TRADE_RETCODE_REQUOTE, C.TRADE_RETCODE_PRICE_OFF)
    events = _broker(terminal).submit(_intent())
    assert isinstance(events[0], OrderAccepted)
    assert len(_sent(fake)) == 3
    assert len(fake.history_orders_get(ticket=int(events[0].broker_order_id))) == 1
    assert len(fake.history_deals_get(0, 2_000_000_000)) == 1


def test_submit_when_requotes_outlast_retries_then_rejected() -> None:
    fake, terminal = _terminal()
    fake.script(*[C.TRADE_RETCODE_REQUOTE] * 5)
    events = _broker(terminal, max_retries=2).submit(_intent())
    assert len(_sent(fake)) == 3
    assert isinstance(events[0], OrderRejected) and events[0].broker_code == C.TRADE_RETCODE_REQUOTE


@pytest.mark.parametrize(
    "retcode", [C.TRADE_RETCODE_REJECT, C.TRADE_RETCODE_NO_MONEY, C.TRADE_RETCODE_TOO_MANY_REQUESTS]
)
def test_submit_when_refused_by_server_then_rejected_without_retry(retcode: int) -> None:
    fake, terminal = _terminal()
    fake.script(retcode)
    events = _broker(terminal).submit(_intent())
    assert len(_sent(fake)) == 1
    assert isinstance(events[0], OrderRejected) and events[0].broker_code == retcode


@pytest.mark.parametrize(
    ("setup", "retcode"),
    [
        (lambda fake: fake.closed_symbols.add("EURUSD"), C.TRADE_RETCODE_MARKET_CLOSED),
        (lambda fake: setattr(fake, "is_trade_allowed", False), C.TRADE_RETCODE_CLIENT_DISABLES_AT),
    ],
)
def test_submit_when_order_check_refuses_then_rejected_and_nothing_sent(setup: object, retcode: int) -> None:
    fake, terminal = _terminal()
    setup(fake)  # type: ignore[operator]
    events = _broker(terminal).submit(_intent())
    assert _sent(fake) == []
    assert isinstance(events[0], OrderRejected) and events[0].broker_code == retcode


def test_submit_when_symbol_allows_no_market_filling_then_invalid_fill() -> None:
    _, terminal = _terminal(filling_mode=0)
    events = _broker(terminal).submit(_intent())
    assert isinstance(events[0], OrderRejected) and events[0].broker_code == C.TRADE_RETCODE_INVALID_FILL


def test_submit_when_partial_then_partial_fill_and_rest_canceled() -> None:
    fake, terminal = _terminal(filling_mode=2)
    fake.script(C.TRADE_RETCODE_DONE_PARTIAL)
    events = _broker(terminal).submit(_intent(lots=0.4))
    assert [type(e).__name__ for e in events] == ["OrderAccepted", "OrderFilled", "Fill", "OrderCanceled"]
    assert events[1].fill_lots == 0.2 and not events[1].is_final  # type: ignore[union-attr]


def test_poll_when_placed_order_fills_later_then_fill_events() -> None:
    fake, terminal = _terminal()
    fake.script(C.TRADE_RETCODE_PLACED)
    broker = _broker(terminal)
    events = broker.submit(_intent())
    assert [type(e).__name__ for e in events] == ["OrderAccepted"]
    broker.clock.advance(1_000)  # type: ignore[attr-defined]
    assert broker.poll() == []
    fake.fill_pending(int(events[0].broker_order_id))  # type: ignore[union-attr]
    broker.clock.advance(1_000)  # type: ignore[attr-defined]
    assert [type(e).__name__ for e in broker.poll()] == ["OrderFilled", "Fill"]


def test_submit_when_terminal_link_breaks_then_no_event_and_history_decides_later() -> None:
    fake, terminal = _terminal()
    fake.fail_next("order_send", C.RES_E_INTERNAL_FAIL_CONNECT)
    broker = _broker(terminal)
    assert broker.submit(_intent()) == []
    terminal.connect()
    broker.clock.advance(1_000)  # type: ignore[attr-defined]
    assert broker.poll() == [], "never sent: stays unknown (reconciliation expires it on restart)"


def _service(
    tmp_path: Path, terminal: Terminal, publisher: ListPublisher | None = None, **risk: object
) -> ExecutionService:
    clock = ManualClock(WEDNESDAY_NOON_MS)
    settings = load_settings(state_dir=tmp_path, market={"hours": "always"},
                             execution={"journal_fsync": False, "broker": "mt5", "risk": risk})  # fmt: skip
    broker = Mt5Broker(settings.execution, clock, terminal)
    service = build_service(settings, publisher or ListPublisher(), clock, broker)
    service.start()
    return service


def test_reconcile_when_restarted_then_orders_and_positions_agree_with_the_terminal(tmp_path: Path) -> None:
    _, terminal = _terminal()
    service = _service(tmp_path, terminal)
    service.handle_tick(tick(WEDNESDAY_NOON_MS, 1.10005, spread=0.0001))
    service.handle_signal(signal(1, WEDNESDAY_NOON_MS, "long", 0.5))
    service.handle_signal(signal(2, WEDNESDAY_NOON_MS, "short", 0.2))
    service.journal.close()
    publisher = ListPublisher()
    restarted = _service(tmp_path, terminal, publisher)
    differences = [e.detail for e in publisher.of_type(RiskEvent) if e.kind == "reconcile_difference"]
    assert differences == []
    assert restarted.engine.view.positions == {"EURUSD": restarted.broker.positions()["EURUSD"]}
    assert all(order.status == OrderStatus.FILLED for order in restarted.engine.orders.values())


def test_reconcile_when_terminal_has_an_order_the_journal_lacks_then_adopted_and_reported(tmp_path: Path) -> None:
    _, terminal = _terminal()
    _broker(terminal).submit(_intent(9))  # placed by someone with our magic, not in this journal
    publisher = ListPublisher()
    service = _service(tmp_path, terminal, publisher)
    details = [e.detail for e in publisher.of_type(RiskEvent) if e.kind == "reconcile_difference"]
    assert any("unknown to the journal: adopted" in d for d in details)
    assert not any("journal position" in d for d in details)  # adopted with its fill: the books agree
    adopted = service.engine.orders[_intent(9).client_order_id]
    assert adopted.signal_id.startswith("adopted-") and adopted.status == OrderStatus.FILLED


def test_reconcile_when_send_went_unanswered_but_filled_then_journal_catches_up(tmp_path: Path) -> None:
    _, terminal = _terminal()
    service = _service(tmp_path, terminal)
    service.handle_tick(tick(WEDNESDAY_NOON_MS, 1.10005, spread=0.0001))
    intent = service.engine.on_signal(signal(1, WEDNESDAY_NOON_MS, "long", 0.5)).intent
    assert intent is not None
    service.journal.append(service.engine.submission(intent), sync=True)
    _broker(terminal).submit(intent)  # reached the terminal; the answer was lost with the process
    service.journal.close()
    restarted = _service(tmp_path, terminal)
    order = restarted.engine.orders[intent.client_order_id]
    assert (order.status, order.filled_lots) == (OrderStatus.FILLED, 0.5)
    assert not restarted.engine.defects


def _placed(fake: FakeTradingMetaTrader5, broker: Mt5Broker, index: int = 1) -> int:
    fake.script(C.TRADE_RETCODE_PLACED)
    events = broker.submit(_intent(index, lots=0.3))
    assert [type(e).__name__ for e in events] == ["OrderAccepted"]
    return int(events[0].broker_order_id)  # type: ignore[union-attr]


def test_poll_when_a_placed_order_fills_in_parts_then_it_stays_working_until_the_last_part() -> None:
    fake, terminal = _terminal()
    broker = _broker(terminal)
    ticket = _placed(fake, broker)
    fake.fill_pending(ticket, 0.1)
    broker.clock.advance(1_000)  # type: ignore[attr-defined]

    first = broker.poll()
    fake.fill_pending(ticket)
    broker.clock.advance(1_000)  # type: ignore[attr-defined]
    second = broker.poll()

    fills = [e for e in first + second if isinstance(e, OrderFilled)]
    assert [(f.fill_lots, f.cumulative_lots, f.is_final) for f in fills] == [(0.1, 0.1, False), (0.2, 0.3, True)]


def test_cancel_when_the_broker_restarted_then_the_working_order_is_found_and_removed() -> None:
    fake, terminal = _terminal()
    ticket = _placed(fake, _broker(terminal))
    restarted = _broker(terminal)  # a new process: nothing tracked in memory
    from execution.state import Order

    order = Order(client_order_id=_intent(1).client_order_id, signal_id="s", symbol="EURUSD", side="buy",
                  quantity_lots=0.3, model_id="m1", model_version=1, created_at_ms=WEDNESDAY_NOON_MS,
                  status=OrderStatus.ACCEPTED)  # fmt: skip

    events = restarted.cancel(order, "halt")

    assert [type(e).__name__ for e in events] == ["OrderCanceled"]
    assert ticket not in {o.ticket for o in fake.orders_get()}


def test_poll_when_a_send_got_no_answer_and_never_arrived_then_expired_after_a_while() -> None:
    fake, terminal = _terminal()
    broker = _broker(terminal)
    fake.fail_next("order_send", C.RES_E_INTERNAL_FAIL_TIMEOUT)

    assert broker.submit(_intent()) == []
    terminal.connect()  # the link comes back
    broker.clock.advance(5_000)  # type: ignore[attr-defined]
    assert broker.poll() == []
    broker.clock.advance(6_000)  # type: ignore[attr-defined]
    events = broker.poll()

    assert [type(e).__name__ for e in events] == ["OrderCanceled"] and "no answer" in events[0].reason  # type: ignore[union-attr]


def test_submit_when_the_same_client_order_id_comes_again_then_sent_once_even_after_a_restart() -> None:
    fake, terminal = _terminal()
    _broker(terminal).submit(_intent())

    again = _broker(terminal).submit(_intent())  # a new process, the same order

    assert again == [] and len(_sent(fake)) == 1


def test_submit_when_the_quote_fails_after_a_requote_then_rejected_not_raised() -> None:
    fake, terminal = _terminal()
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

    events = _broker(terminal).submit(_intent())

    assert [type(e).__name__ for e in events] == ["OrderRejected"] and "requote" in events[0].reason  # type: ignore[union-attr]


# -- hedging accounts -------------------------------------------------------------------------


def test_submit_when_an_order_reduces_then_the_position_shrinks_on_netting_and_hedging(margin_mode: int) -> None:
    fake, terminal = _terminal()
    broker = _broker(terminal)
    opened = [broker.submit(_intent(1, "buy", 0.1))[0], broker.submit(_intent(2, "buy", 0.2))[0]]
    fake.now_msc += 1_000

    events = broker.submit(_intent(3, "sell", 0.25))  # closes the first long, 0.15 of the second

    assert [(p.type, p.volume) for p in fake.positions_get()] == [(C.POSITION_TYPE_BUY, 0.05)]  # no short beside
    assert broker.positions() == {"EURUSD": Decimal("0.05")}
    filled = [e for e in events if isinstance(e, OrderFilled)]
    assert filled[-1].cumulative_lots == pytest.approx(0.25) and filled[-1].is_final
    if margin_mode == HEDGING:  # closed by ticket, oldest first (a position's ticket is its opening order's)
        closes = [(request.get("position"), request["volume"]) for request in _sent(fake)[2:]]
        assert closes == [(int(e.broker_order_id), lots) for e, lots in zip(opened, (0.1, 0.15), strict=True)
                          if isinstance(e, OrderAccepted)]  # fmt: skip
    order = broker.orders()[_intent(3).client_order_id]  # the MT5 orders of one comment merged back into one
    assert order.quantity_lots == pytest.approx(0.25) and order.status == OrderStatus.FILLED
    assert [fill.fill_id for fill in order.fills] == [f.fill_id for f in filled]


def test_flatten_when_hedging_positions_are_open_then_all_are_closed_once(tmp_path: Path) -> None:
    fake, terminal = _terminal()
    publisher = ListPublisher()
    service = _service(tmp_path, terminal, publisher)
    service.handle_tick(tick(WEDNESDAY_NOON_MS, 1.10005, spread=0.0001))
    for index in (1, 2):  # long 0.5, then long 1.0: two positions on a hedging account
        service.handle_signal(signal(index, WEDNESDAY_NOON_MS, "long", 0.5 * index))
    assert service.engine.view.positions["EURUSD"] == broker_net(fake) == Decimal("1.0")

    service.handle_control(ControlCommand(command_id="f1", command="flatten", issued_by="t",
                                          issued_at_ms=WEDNESDAY_NOON_MS))  # fmt: skip

    assert fake.positions_get() == () and service.engine.view.positions.get("EURUSD", 0) == 0


def broker_net(fake: FakeTradingMetaTrader5) -> Decimal:
    return sum((Decimal(str(p.volume)) * (1 if p.type == C.POSITION_TYPE_BUY else -1) for p in fake.positions_get()),
               Decimal(0))  # fmt: skip


def _hedging_with_two_longs(margin_mode: int) -> tuple[FakeTradingMetaTrader5, Terminal, Mt5Broker]:
    assert margin_mode == HEDGING, "two positions of one symbol exist only on a hedging account"
    fake, terminal = _terminal()
    broker = _broker(terminal)
    broker.submit(_intent(1, "buy", 0.1))
    fake.now_msc += 1_000
    broker.submit(_intent(2, "buy", 0.2))
    return fake, terminal, broker


@pytest.mark.parametrize("margin_mode", [HEDGING], indirect=True, ids=["hedging"])
def test_submit_when_a_later_hedging_close_is_refused_then_the_part_done_is_filled_and_the_rest_canceled(
    margin_mode: int,
) -> None:
    fake, _, broker = _hedging_with_two_longs(margin_mode)
    fake.script(C.TRADE_RETCODE_DONE, C.TRADE_RETCODE_REJECT)
    events = broker.submit(_intent(3, "sell", 0.25))
    assert [type(e).__name__ for e in events] == ["OrderAccepted", "OrderFilled", "Fill", "OrderCanceled"]
    assert events[1].fill_lots == 0.1 and not events[1].is_final  # type: ignore[union-attr]


@pytest.mark.parametrize("margin_mode", [HEDGING], indirect=True, ids=["hedging"])
def test_poll_when_a_later_hedging_close_goes_unanswered_then_its_fill_comes_once_without_a_second_accept(
    margin_mode: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, terminal, broker = _hedging_with_two_longs(margin_mode)
    original, sends = fake.order_send, []

    def send(request: dict[str, object]) -> object:
        sends.append(request)
        if len(sends) == 2:
            original(request)  # executed at the server, but the answer is lost
            fake.fail_next("order_send", C.RES_E_INTERNAL_FAIL_CONNECT)
            return original(request)  # the failing call: None with last_error set
        return original(request)

    monkeypatch.setattr(fake, "order_send", send)
    events = broker.submit(_intent(3, "sell", 0.25))
    assert [type(e).__name__ for e in events] == ["OrderAccepted", "OrderFilled", "Fill"]
    terminal.connect()
    broker.clock.advance(1_000)  # type: ignore[attr-defined]
    later = broker.poll()
    assert [type(e).__name__ for e in later] == ["OrderFilled", "Fill"]
    assert later[0].cumulative_lots == pytest.approx(0.25) and later[0].is_final  # type: ignore[union-attr]


def _history_starts(fake: FakeTradingMetaTrader5) -> set[object]:
    return {args[0] for name, args, _ in fake.calls if name in ("history_orders_get", "history_deals_get")}


def test_reconcile_when_periodic_then_history_is_read_from_a_window_and_an_old_working_order_still_catches_up(
    tmp_path: Path,
) -> None:
    fake, terminal = _terminal()
    service = _service(tmp_path, terminal)
    service.handle_tick(tick(WEDNESDAY_NOON_MS, 1.10005, spread=0.0001))
    fake.script(C.TRADE_RETCODE_PLACED)
    service.handle_signal(signal(1, WEDNESDAY_NOON_MS, "long", 0.5))
    (order,) = service.engine.orders.values()
    assert order.status == OrderStatus.ACCEPTED
    three_days_ms = 3 * 86_400_000  # beyond the one-day window: only its being still working keeps it in
    service.engine.clock.advance(three_days_ms)  # type: ignore[attr-defined]
    fake.now_msc += three_days_ms
    (placed,) = fake.orders_get()
    fake.fill_pending(placed.ticket)
    fake.calls.clear()

    service.reconcile_now()

    order = service.engine.orders[order.client_order_id]
    assert (order.status, order.filled_lots) == (OrderStatus.FILLED, 0.5)
    created_less_a_day = datetime.fromtimestamp(WEDNESDAY_NOON_MS / 1000 - 86_400, UTC).replace(tzinfo=None)
    assert _history_starts(fake) == {created_less_a_day}  # not the whole history since 2000
    fake.calls.clear()
    service.reconcile_now()  # nothing working now: the window is the last day's
    now_less_two_days = datetime.fromtimestamp((WEDNESDAY_NOON_MS + three_days_ms) / 1000 - 2 * 86_400, UTC)
    assert _history_starts(fake) == {now_less_two_days.replace(tzinfo=None)}


def test_server_stops_when_the_process_is_down_then_the_server_closes_and_the_restart_books_the_close(
    tmp_path: Path,
) -> None:
    fake, terminal = _terminal()
    stops = {"stop_loss_pips": 10, "take_profit_pips": 20}
    service = _service(tmp_path, terminal, **stops)
    service.handle_tick(tick(WEDNESDAY_NOON_MS, 1.10005, spread=0.0001))
    service.handle_signal(signal(1, WEDNESDAY_NOON_MS, "long", 0.5))
    (position,) = fake.positions_get()
    # the engine's levels are 10 / 20 pips; the server's lie 5 pips beyond them
    expected = (round(position.price_open - 0.0015, 5), round(position.price_open + 0.0025, 5))
    assert (position.sl, position.tp) == expected

    service.journal.close()  # the process is down when the price falls through both stops
    fake.push_ticks("EURUSD", make_ticks([(WEDNESDAY_NOON_MS + 60_000, 1.09800, 1.09810)]))
    assert fake.positions_get() == ()
    publisher = ListPublisher()
    restarted = _service(tmp_path, terminal, publisher, **stops)

    (close,) = [order for cid, order in restarted.engine.orders.items() if cid.startswith("mt5-sl-")]
    assert (close.side, close.status, close.filled_lots) == ("sell", OrderStatus.FILLED, 0.5)
    assert restarted.engine.view.positions.get("EURUSD", Decimal(0)) == 0 and restarted.broker.positions() == {}
    assert not [e for e in publisher.of_type(RiskEvent) if e.kind == "reconcile_mismatch"]


def test_server_stops_when_off_then_no_sltp_request_is_sent() -> None:
    fake, terminal = _terminal()
    broker = _broker(terminal, {"stop_loss_pips": 10}, server_stops=False)
    broker.submit(_intent())
    assert not [request for request in _sent(fake) if request["action"] == C.TRADE_ACTION_SLTP]
    assert [(p.sl, p.tp) for p in fake.positions_get()] == [(0.0, 0.0)]


def test_venue_when_the_terminal_answers_then_mt5_and_its_trade_server_read_once() -> None:
    fake, terminal = _terminal()
    broker = _broker(terminal)
    before = sum(name == "account_info" for name, _, _ in fake.calls)  # connecting reads it too

    venues = [broker.venue(), broker.venue()]

    assert venues == ["mt5:Fake-Demo"] * 2
    assert sum(name == "account_info" for name, _, _ in fake.calls) - before == 1, "read once, not per order"


def test_venue_when_account_info_fails_then_configured_server_now_and_the_terminal_next_time() -> None:
    fake, terminal = _terminal()
    terminal.settings = terminal.settings.model_copy(update={"server": "Broker-Live"})
    fake.fail_next("account_info", C.RES_E_FAIL)
    broker = _broker(terminal)

    assert broker.venue() == "mt5:Broker-Live"
    assert broker.venue() == "mt5:Fake-Demo"


def test_service_when_an_order_is_sent_then_its_submission_names_the_mt5_venue(tmp_path: Path) -> None:
    _, terminal = _terminal()
    publisher = ListPublisher()
    service = _service(tmp_path, terminal, publisher)
    service.handle_tick(tick(WEDNESDAY_NOON_MS, 1.10005, spread=0.0001))

    service.handle_signal(signal(1, WEDNESDAY_NOON_MS, "long", 0.5))

    assert [event.venue for event in publisher.of_type(OrderSubmitted)] == ["mt5:Fake-Demo"]


def test_reconcile_when_an_order_is_adopted_then_its_submission_names_the_mt5_venue(tmp_path: Path) -> None:
    _, terminal = _terminal()
    _broker(terminal).submit(_intent(9))  # placed by someone with our magic, not in this journal
    publisher = ListPublisher()

    _service(tmp_path, terminal, publisher)

    assert [event.venue for event in publisher.of_type(OrderSubmitted)] == ["mt5:Fake-Demo"]
