"""Builders shared by the MT5 broker tests: a fake terminal, intents, a broker, a service on it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.mt5.api import Constants as C
from adapters.mt5.terminal import Terminal
from execution.app import build_service
from execution.brokers.mt5 import Mt5Broker
from execution.service import ExecutionService
from testkit.mt5 import HEDGING, NETTING, FakeTradingMetaTrader5, make_ticks
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, ListPublisher, signal
from tickwave.clock import ManualClock
from tickwave.config import ExecutionSettings, MT5BrokerSettings, RiskSettings, load_settings
from tickwave.contracts import OrderIntent

MAGIC = 770_077
MARGIN_MODE = {"mode": NETTING}  # set by the margin_mode fixture (conftest.py)


def make_terminal(filling_mode: int = 1) -> tuple[FakeTradingMetaTrader5, Terminal]:
    fake = FakeTradingMetaTrader5(margin_mode=MARGIN_MODE["mode"])
    fake.add_symbol("EURUSD", digits=5, filling_mode=filling_mode)
    fake.push_ticks("EURUSD", make_ticks([(WEDNESDAY_NOON_MS, 1.10000, 1.10010)]))
    terminal = Terminal(load_settings().mt5, api=fake)
    terminal.connect()
    terminal.call("symbol_select", "EURUSD", True)
    return fake, terminal


def make_intent(index: int = 1, side: str = "buy", lots: float = 0.1) -> OrderIntent:
    s = signal(index, WEDNESDAY_NOON_MS)
    return OrderIntent(
        client_order_id=f"tw-{index:024x}",
        signal_id=s.signal_id,
        symbol="EURUSD",
        side=side,  # type: ignore[arg-type]
        quantity_lots=lots,
        order_type="market",
        model_id="m1",
        model_version=1,
        created_at_ms=WEDNESDAY_NOON_MS,
    )


def make_broker(terminal: Terminal, risk: dict[str, Any] | None = None, **mt5_broker: Any) -> Mt5Broker:
    settings = ExecutionSettings(risk=RiskSettings(**(risk or {})), mt5_broker=MT5BrokerSettings(**mt5_broker))
    return Mt5Broker(settings, ManualClock(WEDNESDAY_NOON_MS), terminal)


def sent_requests(fake: FakeTradingMetaTrader5) -> list[dict[str, object]]:
    return [args[0] for name, args, _ in fake.calls if name == "order_send"]


def mt5_service(
    tmp_path: Path, terminal: Terminal, publisher: ListPublisher | None = None, **risk: object
) -> ExecutionService:
    clock = ManualClock(WEDNESDAY_NOON_MS)
    settings = load_settings(
        state_dir=tmp_path,
        market={"hours": "always"},
        execution={"journal_fsync": False, "broker": "mt5", "risk": risk},
    )
    broker = Mt5Broker(settings.execution, clock, terminal)
    service = build_service(settings, publisher or ListPublisher(), clock, broker)
    service.start()
    return service


def placed_order(fake: FakeTradingMetaTrader5, broker: Mt5Broker, index: int = 1) -> int:
    fake.script(C.TRADE_RETCODE_PLACED)
    events = broker.submit(make_intent(index, lots=0.3))
    assert [type(e).__name__ for e in events] == ["OrderAccepted"]
    return int(events[0].broker_order_id)  # type: ignore[union-attr]


def broker_net(fake: FakeTradingMetaTrader5) -> Decimal:
    return sum(
        (Decimal(str(p.volume)) * (1 if p.type == C.POSITION_TYPE_BUY else -1) for p in fake.positions_get()),
        Decimal(0),
    )


def hedging_with_two_longs(margin_mode: int) -> tuple[FakeTradingMetaTrader5, Terminal, Mt5Broker]:
    assert margin_mode == HEDGING, "two positions of one symbol exist only on a hedging account"
    fake, terminal = make_terminal()
    broker = make_broker(terminal)
    broker.submit(make_intent(1, "buy", 0.1))
    fake.now_msc += 1_000
    broker.submit(make_intent(2, "buy", 0.2))
    return fake, terminal, broker


def history_starts(fake: FakeTradingMetaTrader5) -> set[object]:
    return {args[0] for name, args, _ in fake.calls if name in ("history_orders_get", "history_deals_get")}
