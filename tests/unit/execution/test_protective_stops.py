"""Protective stops: a position closes when its bid (long) or ask (short) crosses the levels."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from execution.service import ExecutionService
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, ListPublisher, make_service, signal, tick
from tickwave.clock import ManualClock
from tickwave.contracts import ControlCommand, OrderFilled, OrderSubmitted, RiskEvent, Tick

STOPS = {
    "market_hours": "always",
    "stop_loss_pips": 20,
    "take_profit_pips": 40,
    "flash_crash_pct": 50.0,
    "paper_broker": {"slippage_bps": 0.0},
}


def _open(tmp_path: Path, direction: str = "long") -> tuple[ExecutionService, ManualClock, ListPublisher]:
    clock, publisher = ManualClock(WEDNESDAY_NOON_MS), ListPublisher()
    service = make_service(tmp_path, clock, publisher, **STOPS)
    service.handle_tick(tick(clock.now_ms(), 1.1, spread=0.0002))
    service.handle_signal(signal(1, clock.now_ms(), direction, 0.5))  # 0.5 lots, filled at 1.1001 (long)
    assert service.engine.view.positions["EURUSD"] == Decimal("0.5") * (1 if direction == "long" else -1)
    return service, clock, publisher


def _protective_orders(publisher: ListPublisher) -> list[OrderSubmitted]:
    return [e for e in publisher.of_type(OrderSubmitted) if e.model_id.startswith("protective:")]


def _move(service: ExecutionService, clock: ManualClock, mid: float) -> None:
    clock.advance(100)
    service.handle_tick(tick(clock.now_ms(), mid, spread=0.0002, seq=clock.now_ms()))


def test_stop_loss_when_the_bid_crosses_then_one_reduce_only_close_through_the_journal(tmp_path: Path) -> None:
    service, clock, publisher = _open(tmp_path)  # long from 1.1001: stop at bid <= 1.0981

    _move(service, clock, 1.0984)  # bid 1.0983: 18 pips down, inside the stop
    assert _protective_orders(publisher) == []
    _move(service, clock, 1.0980)  # bid 1.0979: 22 pips down
    _move(service, clock, 1.0970)  # lower still: already flat, nothing more

    (close,) = _protective_orders(publisher)
    assert (close.side, close.quantity_lots, close.signal_id[:3]) == ("sell", 0.5, "sl-")
    assert service.engine.view.positions.get("EURUSD", 0) == 0 and service.broker.positions() == {}
    stops = [e for e in publisher.of_type(RiskEvent) if e.kind == "protective_stop"]
    assert len(stops) == 1 and "stop loss EURUSD" in stops[0].detail
    service.close()


def test_take_profit_when_a_short_gains_then_closed_at_the_ask(tmp_path: Path) -> None:
    service, clock, publisher = _open(tmp_path, "short")  # short from the bid 1.0999: profit at ask <= 1.0959

    _move(service, clock, 1.0962)  # ask 1.0963: 36 pips
    assert _protective_orders(publisher) == []
    _move(service, clock, 1.0956)  # ask 1.0957: 42 pips

    (close,) = _protective_orders(publisher)
    assert (close.side, close.signal_id[:3]) == ("buy", "tp-")
    fills = [e for e in publisher.of_type(OrderFilled) if e.client_order_id == close.client_order_id]
    assert fills and fills[-1].is_final and service.engine.view.positions.get("EURUSD", 0) == 0
    service.close()


def test_stops_when_restarted_or_halted_then_still_protect(tmp_path: Path) -> None:
    service, clock, _ = _open(tmp_path)
    service.handle_control(ControlCommand(command_id="h", command="halt", issued_by="t", issued_at_ms=clock.now_ms()))
    service.close()
    publisher = ListPublisher()
    restarted = make_service(tmp_path, clock, publisher, **STOPS)  # levels come back from the journaled fills
    assert restarted.engine.trading_state == "HALTED"

    _move(restarted, clock, 1.0975)

    assert [o.side for o in _protective_orders(publisher)] == ["sell"]
    assert restarted.engine.view.positions.get("EURUSD", 0) == 0
    restarted.close()


def test_stop_when_its_close_is_denied_then_retried_once_a_second_not_on_every_tick(tmp_path: Path) -> None:
    service, clock, publisher = _open(tmp_path)
    for _ in range(5):  # crossed, but the spread is outside the collar: denied
        clock.advance(100)
        service.handle_tick(tick(clock.now_ms(), 1.0975, spread=0.02, seq=clock.now_ms()))
    assert len([e for e in publisher.of_type(RiskEvent) if e.kind == "protective_stop"]) == 1
    clock.advance(1_000)
    _move(service, clock, 1.0975)  # a second later, a normal spread: closed
    assert [o.side for o in _protective_orders(publisher)] == ["sell"]
    service.close()


def test_stops_when_a_symbol_has_its_own_pips_then_they_replace_the_defaults_for_it(tmp_path: Path) -> None:
    clock, publisher = ManualClock(WEDNESDAY_NOON_MS), ListPublisher()
    service = make_service(tmp_path, clock, publisher, **{**STOPS, "stop_pips_by_symbol": {"EURUSD": (5, 0)}})
    service.handle_tick(tick(clock.now_ms(), 1.1, spread=0.0002))
    service.handle_signal(signal(1, clock.now_ms(), "long", 0.5))  # long from 1.1001: own stop at bid <= 1.0996

    _move(service, clock, 1.0998)  # bid 1.0997: 4 pips down
    assert _protective_orders(publisher) == []
    _move(service, clock, 1.0996)  # bid 1.0995: 6 pips down (the default 20 would not close)

    (close,) = _protective_orders(publisher)
    assert (close.side, close.signal_id[:3]) == ("sell", "sl-")
    service.close()


def test_stop_loss_when_the_bid_reaches_the_level_exactly_then_it_closes(tmp_path: Path) -> None:
    service, clock, publisher = _open(tmp_path)  # long from 1.1001: 20 pips down is a bid of 1.0981 exactly

    clock.advance(100)
    service.handle_tick(Tick(symbol="EURUSD", time_ms=clock.now_ms(), seq=1, bid=1.0982, ask=1.0984))
    assert _protective_orders(publisher) == []  # 19 pips
    clock.advance(100)
    service.handle_tick(Tick(symbol="EURUSD", time_ms=clock.now_ms(), seq=2, bid=1.0981, ask=1.0983))

    (close,) = _protective_orders(publisher)
    assert (close.side, close.quantity_lots) == ("sell", 0.5)
    stops = [e for e in publisher.of_type(RiskEvent) if e.kind == "protective_stop"]
    assert stops[0].detail == (
        "stop loss EURUSD: 0.5 lots from 1.1001 at 1.0981 (-20.0 pips); closing with 1 reduce-only orders, 0 denied"
    )
    service.close()
