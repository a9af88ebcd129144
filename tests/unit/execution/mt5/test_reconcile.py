"""The execution service on the MT5 broker: restarts, adoption, the history window, the venue.

Every test runs on a netting and on a hedging account (the ``margin_mode`` fixture).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from adapters.mt5.api import Constants as C
from execution.core.state import OrderStatus
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, ListPublisher, signal, tick
from tests.unit.execution.mt5.helpers import history_starts, make_broker, make_intent, make_terminal, mt5_service
from tickwave.contracts import OrderSubmitted, RiskEvent


def test_reconcile_when_restarted_then_orders_and_positions_agree_with_the_terminal(tmp_path: Path) -> None:
    _, terminal = make_terminal()
    service = mt5_service(tmp_path, terminal)
    service.handle_tick(tick(WEDNESDAY_NOON_MS, 1.10005, spread=0.0001))
    service.handle_signal(signal(1, WEDNESDAY_NOON_MS, "long", 0.5))
    service.handle_signal(signal(2, WEDNESDAY_NOON_MS, "short", 0.2))
    service.journal.close()
    publisher = ListPublisher()
    restarted = mt5_service(tmp_path, terminal, publisher)
    differences = [e.detail for e in publisher.of_type(RiskEvent) if e.kind == "reconcile_difference"]
    assert differences == []
    assert restarted.engine.view.positions == {"EURUSD": restarted.broker.positions()["EURUSD"]}
    assert all(order.status == OrderStatus.FILLED for order in restarted.engine.orders.values())


def test_reconcile_when_terminal_has_an_order_the_journal_lacks_then_adopted_and_reported(tmp_path: Path) -> None:
    _, terminal = make_terminal()
    make_broker(terminal).submit(make_intent(9))  # placed by someone with our magic, not in this journal
    publisher = ListPublisher()
    service = mt5_service(tmp_path, terminal, publisher)
    details = [e.detail for e in publisher.of_type(RiskEvent) if e.kind == "reconcile_difference"]
    assert any("unknown to the journal: adopted" in d for d in details)
    assert not any("journal position" in d for d in details)  # adopted with its fill: the books agree
    adopted = service.engine.orders[make_intent(9).client_order_id]
    assert adopted.signal_id.startswith("adopted-") and adopted.status == OrderStatus.FILLED


def test_reconcile_when_send_went_unanswered_but_filled_then_journal_catches_up(tmp_path: Path) -> None:
    _, terminal = make_terminal()
    service = mt5_service(tmp_path, terminal)
    service.handle_tick(tick(WEDNESDAY_NOON_MS, 1.10005, spread=0.0001))
    intent = service.engine.on_signal(signal(1, WEDNESDAY_NOON_MS, "long", 0.5)).intent
    assert intent is not None
    service.journal.append(service.engine.submission(intent), sync=True)
    make_broker(terminal).submit(intent)  # reached the terminal; the answer was lost with the process
    service.journal.close()
    restarted = mt5_service(tmp_path, terminal)
    order = restarted.engine.orders[intent.client_order_id]
    assert (order.status, order.filled_lots) == (OrderStatus.FILLED, 0.5)
    assert not restarted.engine.defects


def test_reconcile_when_periodic_then_history_is_read_from_a_window_and_an_old_working_order_still_catches_up(
    tmp_path: Path,
) -> None:
    fake, terminal = make_terminal()
    service = mt5_service(tmp_path, terminal)
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
    assert history_starts(fake) == {created_less_a_day}  # not the whole history since 2000
    fake.calls.clear()
    service.reconcile_now()  # nothing working now: the window is the last day's
    now_less_two_days = datetime.fromtimestamp((WEDNESDAY_NOON_MS + three_days_ms) / 1000 - 2 * 86_400, UTC)
    assert history_starts(fake) == {now_less_two_days.replace(tzinfo=None)}


def test_venue_when_the_terminal_answers_then_mt5_and_its_trade_server_read_once() -> None:
    fake, terminal = make_terminal()
    broker = make_broker(terminal)
    before = sum(name == "account_info" for name, _, _ in fake.calls)  # connecting reads it too

    venues = [broker.venue(), broker.venue()]

    assert venues == ["mt5:Fake-Demo"] * 2
    assert sum(name == "account_info" for name, _, _ in fake.calls) - before == 1, "read once, not per order"


def test_venue_when_account_info_fails_then_configured_server_now_and_the_terminal_next_time() -> None:
    fake, terminal = make_terminal()
    terminal.settings = terminal.settings.model_copy(update={"server": "Broker-Live"})
    fake.fail_next("account_info", C.RES_E_FAIL)
    broker = make_broker(terminal)

    assert broker.venue() == "mt5:Broker-Live"
    assert broker.venue() == "mt5:Fake-Demo"


def test_service_when_an_order_is_sent_then_its_submission_names_the_mt5_venue(tmp_path: Path) -> None:
    _, terminal = make_terminal()
    publisher = ListPublisher()
    service = mt5_service(tmp_path, terminal, publisher)
    service.handle_tick(tick(WEDNESDAY_NOON_MS, 1.10005, spread=0.0001))

    service.handle_signal(signal(1, WEDNESDAY_NOON_MS, "long", 0.5))

    assert [event.venue for event in publisher.of_type(OrderSubmitted)] == ["mt5:Fake-Demo"]


def test_reconcile_when_an_order_is_adopted_then_its_submission_names_the_mt5_venue(tmp_path: Path) -> None:
    _, terminal = make_terminal()
    make_broker(terminal).submit(make_intent(9))  # placed by someone with our magic, not in this journal
    publisher = ListPublisher()

    mt5_service(tmp_path, terminal, publisher)

    assert [event.venue for event in publisher.of_type(OrderSubmitted)] == ["mt5:Fake-Demo"]
