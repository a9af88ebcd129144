"""The MT5 broker follows its orders: placed orders filling later or in parts, lost sends, cancels.

Every test runs on a netting and on a hedging account (the ``margin_mode`` fixture).
"""

from __future__ import annotations

from adapters.mt5.api import Constants as C
from execution.core.state import OrderStatus
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS
from tests.unit.execution.mt5.helpers import make_broker, make_intent, make_terminal, placed_order
from tickwave.contracts import OrderFilled


def test_poll_when_placed_order_fills_later_then_fill_events() -> None:
    fake, terminal = make_terminal()
    fake.script(C.TRADE_RETCODE_PLACED)
    broker = make_broker(terminal)
    events = broker.submit(make_intent())
    assert [type(e).__name__ for e in events] == ["OrderAccepted"]
    broker.clock.advance(1_000)  # type: ignore[attr-defined]
    assert broker.poll() == []
    fake.fill_pending(int(events[0].broker_order_id))  # type: ignore[union-attr]
    broker.clock.advance(1_000)  # type: ignore[attr-defined]
    assert [type(e).__name__ for e in broker.poll()] == ["OrderFilled", "Fill"]


def test_submit_when_terminal_link_breaks_then_no_event_and_history_decides_later() -> None:
    fake, terminal = make_terminal()
    fake.fail_next("order_send", C.RES_E_INTERNAL_FAIL_CONNECT)
    broker = make_broker(terminal)
    assert broker.submit(make_intent()) == []
    terminal.connect()
    broker.clock.advance(1_000)  # type: ignore[attr-defined]
    assert broker.poll() == [], "never sent: stays unknown (reconciliation expires it on restart)"


def test_poll_when_a_placed_order_fills_in_parts_then_it_stays_working_until_the_last_part() -> None:
    fake, terminal = make_terminal()
    broker = make_broker(terminal)
    ticket = placed_order(fake, broker)
    fake.fill_pending(ticket, 0.1)
    broker.clock.advance(1_000)  # type: ignore[attr-defined]

    first = broker.poll()
    fake.fill_pending(ticket)
    broker.clock.advance(1_000)  # type: ignore[attr-defined]
    second = broker.poll()

    fills = [e for e in first + second if isinstance(e, OrderFilled)]
    assert [(f.fill_lots, f.cumulative_lots, f.is_final) for f in fills] == [(0.1, 0.1, False), (0.2, 0.3, True)]


def test_cancel_when_the_broker_restarted_then_the_working_order_is_found_and_removed() -> None:
    fake, terminal = make_terminal()
    ticket = placed_order(fake, make_broker(terminal))
    restarted = make_broker(terminal)  # a new process: nothing tracked in memory
    from execution.core.state import Order

    order = Order(
        client_order_id=make_intent(1).client_order_id,
        signal_id="s",
        symbol="EURUSD",
        side="buy",
        quantity_lots=0.3,
        model_id="m1",
        model_version=1,
        created_at_ms=WEDNESDAY_NOON_MS,
        status=OrderStatus.ACCEPTED,
    )

    events = restarted.cancel(order, "halt")

    assert [type(e).__name__ for e in events] == ["OrderCanceled"]
    assert ticket not in {o.ticket for o in fake.orders_get()}


def test_poll_when_a_send_got_no_answer_and_never_arrived_then_expired_after_a_while() -> None:
    fake, terminal = make_terminal()
    broker = make_broker(terminal)
    fake.fail_next("order_send", C.RES_E_INTERNAL_FAIL_TIMEOUT)

    assert broker.submit(make_intent()) == []
    terminal.connect()  # the link comes back
    broker.clock.advance(5_000)  # type: ignore[attr-defined]
    assert broker.poll() == []
    broker.clock.advance(6_000)  # type: ignore[attr-defined]
    events = broker.poll()

    assert [type(e).__name__ for e in events] == ["OrderCanceled"] and "no answer" in events[0].reason  # type: ignore[union-attr]
