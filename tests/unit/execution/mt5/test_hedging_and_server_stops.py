"""The MT5 broker on hedging accounts (closes by ticket) and its server-side stops.

Every test runs on a netting and on a hedging account (the ``margin_mode`` fixture).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from adapters.mt5.api import Constants as C
from execution.core.state import OrderStatus
from testkit.mt5 import HEDGING, make_ticks
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, ListPublisher, signal, tick
from tests.unit.execution.mt5.helpers import (
    broker_net,
    hedging_with_two_longs,
    make_broker,
    make_intent,
    make_terminal,
    mt5_service,
    sent_requests,
)
from tickwave.contracts import ControlCommand, OrderAccepted, OrderFilled, RiskEvent


def test_submit_when_an_order_reduces_then_the_position_shrinks_on_netting_and_hedging(margin_mode: int) -> None:
    fake, terminal = make_terminal()
    broker = make_broker(terminal)
    opened = [broker.submit(make_intent(1, "buy", 0.1))[0], broker.submit(make_intent(2, "buy", 0.2))[0]]
    fake.now_msc += 1_000

    events = broker.submit(make_intent(3, "sell", 0.25))  # closes the first long, 0.15 of the second

    assert [(p.type, p.volume) for p in fake.positions_get()] == [(C.POSITION_TYPE_BUY, 0.05)]  # no short beside
    assert broker.positions() == {"EURUSD": Decimal("0.05")}
    filled = [e for e in events if isinstance(e, OrderFilled)]
    assert filled[-1].cumulative_lots == pytest.approx(0.25) and filled[-1].is_final
    if margin_mode == HEDGING:  # closed by ticket, oldest first (a position's ticket is its opening order's)
        closes = [(request.get("position"), request["volume"]) for request in sent_requests(fake)[2:]]
        assert closes == [
            (int(e.broker_order_id), lots)
            for e, lots in zip(opened, (0.1, 0.15), strict=True)
            if isinstance(e, OrderAccepted)
        ]
    order = broker.orders()[make_intent(3).client_order_id]  # the MT5 orders of one comment merged back into one
    assert order.quantity_lots == pytest.approx(0.25) and order.status == OrderStatus.FILLED
    assert [fill.fill_id for fill in order.fills] == [f.fill_id for f in filled]


def test_flatten_when_hedging_positions_are_open_then_all_are_closed_once(tmp_path: Path) -> None:
    fake, terminal = make_terminal()
    publisher = ListPublisher()
    service = mt5_service(tmp_path, terminal, publisher)
    service.handle_tick(tick(WEDNESDAY_NOON_MS, 1.10005, spread=0.0001))
    for index in (1, 2):  # long 0.5, then long 1.0: two positions on a hedging account
        service.handle_signal(signal(index, WEDNESDAY_NOON_MS, "long", 0.5 * index))
    assert service.engine.view.positions["EURUSD"] == broker_net(fake) == Decimal("1.0")

    service.handle_control(
        ControlCommand(command_id="f1", command="flatten", issued_by="t", issued_at_ms=WEDNESDAY_NOON_MS)
    )

    assert fake.positions_get() == () and service.engine.view.positions.get("EURUSD", 0) == 0


@pytest.mark.parametrize("margin_mode", [HEDGING], indirect=True, ids=["hedging"])
def test_submit_when_a_later_hedging_close_is_refused_then_the_part_done_is_filled_and_the_rest_canceled(
    margin_mode: int,
) -> None:
    fake, _, broker = hedging_with_two_longs(margin_mode)
    fake.script(C.TRADE_RETCODE_DONE, C.TRADE_RETCODE_REJECT)
    events = broker.submit(make_intent(3, "sell", 0.25))
    assert [type(e).__name__ for e in events] == ["OrderAccepted", "OrderFilled", "Fill", "OrderCanceled"]
    assert events[1].fill_lots == 0.1 and not events[1].is_final  # type: ignore[union-attr]


@pytest.mark.parametrize("margin_mode", [HEDGING], indirect=True, ids=["hedging"])
def test_submit_when_hedging_closes_add_up_inexactly_in_floats_then_each_cumulative_lots_is_exact(
    margin_mode: int,
) -> None:
    fake, _, broker = hedging_with_two_longs(margin_mode)  # 0.1 and 0.2 lots: 0.30000000000000004 in floats
    events = broker.submit(make_intent(3, "sell", 0.3))  # closed by ticket: 0.1, then 0.2

    filled = [e for e in events if isinstance(e, OrderFilled)]
    assert [(f.fill_lots, f.cumulative_lots, f.is_final) for f in filled] == [(0.1, 0.1, False), (0.2, 0.3, True)]
    assert fake.positions_get() == ()


@pytest.mark.parametrize("margin_mode", [HEDGING], indirect=True, ids=["hedging"])
def test_poll_when_a_later_hedging_close_goes_unanswered_then_its_fill_comes_once_without_a_second_accept(
    margin_mode: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, terminal, broker = hedging_with_two_longs(margin_mode)
    original, sends = fake.order_send, []

    def send(request: dict[str, object]) -> object:
        sends.append(request)
        if len(sends) == 2:
            original(request)  # executed at the server, but the answer is lost
            fake.fail_next("order_send", C.RES_E_INTERNAL_FAIL_CONNECT)
            return original(request)  # the failing call: None with last_error set
        return original(request)

    monkeypatch.setattr(fake, "order_send", send)
    events = broker.submit(make_intent(3, "sell", 0.3))  # 0.1 + 0.2: 0.30000000000000004 in floats
    assert [type(e).__name__ for e in events] == ["OrderAccepted", "OrderFilled", "Fill"]
    terminal.connect()
    broker.clock.advance(1_000)  # type: ignore[attr-defined]
    later = broker.poll()
    assert [type(e).__name__ for e in later] == ["OrderFilled", "Fill"]
    assert later[0].cumulative_lots == 0.3 and later[0].is_final  # type: ignore[union-attr]


def test_server_stops_when_the_process_is_down_then_the_server_closes_and_the_restart_books_the_close(
    tmp_path: Path,
) -> None:
    fake, terminal = make_terminal()
    stops = {"stop_loss_pips": 10, "take_profit_pips": 20}
    service = mt5_service(tmp_path, terminal, **stops)
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
    restarted = mt5_service(tmp_path, terminal, publisher, **stops)

    (close,) = [order for cid, order in restarted.engine.orders.items() if cid.startswith("mt5-sl-")]
    assert (close.side, close.status, close.filled_lots) == ("sell", OrderStatus.FILLED, 0.5)
    assert restarted.engine.view.positions.get("EURUSD", Decimal(0)) == 0 and restarted.broker.positions() == {}
    assert not [e for e in publisher.of_type(RiskEvent) if e.kind == "reconcile_mismatch"]


def test_server_stops_when_off_then_no_sltp_request_is_sent() -> None:
    fake, terminal = make_terminal()
    broker = make_broker(terminal, {"stop_loss_pips": 10}, server_stops=False)
    broker.submit(make_intent())
    assert not [request for request in sent_requests(fake) if request["action"] == C.TRADE_ACTION_SLTP]
    assert [(p.sl, p.tp) for p in fake.positions_get()] == [(0.0, 0.0)]
