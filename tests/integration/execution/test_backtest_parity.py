"""Backtest/live parity: a recorded session through the live paper process and through the engine backtest.

The session is 20 s of the shipped sample (three symbols) moved to now, and signals
placed where no tick of their symbol lands near the paper fill's due time, which the live
process reaches a little later than the replay (see ``execution/backtest.py``). The live run is the real
``python -m execution`` process with the paper broker (300 ms latency, the default
slippage), fed over the real Kafka at the session's own pace; the backtest replays the
same messages. Orders, denials, fills and P&L must match order by order.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from adapters.endpoints import ready_marker
from execution.backtest import fill_pnls, replay_session
from execution.brokers.paper import LEDGER_NAME, open_paper_broker
from execution.journal import JOURNAL_NAME, Journal
from streams.ingest.sample import sample_paths
from tests.integration.execution.conftest import Bus, Processes, now_ms
from tests.integration.ingest.test_replay_kafka import expected_ticks
from tickwave.clock import ManualClock
from tickwave.config import Settings, load_settings
from tickwave.contracts import AnyMessage, OrderDenied, OrderFilled, OrderSubmitted, Signal, Tick
from tickwave.instruments import registry

LATENCY_MS = 300
WINDOW_MS = 20_000
SKIP_MS = 10_000  # into the sample: every symbol has quoted by then
QUIET_BEFORE_MS = 150  # no tick of the symbol this long before a fill's due time...
# ...nor this long after it: the live order is accepted, and so falls due, after the signal's own time by the
# Kafka hop and the decision (slack for a busy machine). When the live loop polls no longer matters: the venue
# fills at the quote in effect at the due time, however late the poll and whatever ticks it has read by then.
QUIET_AFTER_MS = 400
SIGNAL_GAP_MS = 1_200
INTENTS = (("long", 0.6), ("short", 1.0), ("flat", 0.0), ("long", 0.3), ("short", 0.5))


def _window() -> list[Tick]:
    ticks = sorted((tick for path in sample_paths() for tick in expected_ticks(path)), key=lambda t: (t.time_ms, t.seq))
    start = ticks[0].time_ms + SKIP_MS
    return [tick for tick in ticks if start <= tick.time_ms < start + WINDOW_MS]


def _quiet_signals(ticks: list[Tick], model_version: int = 1) -> list[Signal]:
    """Signals, rotating over the symbols, at moments whose fill (due + LATENCY_MS) no tick of the symbol races."""
    symbols = sorted({tick.symbol for tick in ticks})
    times = {symbol: [tick.time_ms for tick in ticks if tick.symbol == symbol] for symbol in symbols}
    start, end = ticks[0].time_ms + 1_000, ticks[-1].time_ms - 2_000
    signals: list[Signal] = []
    candidate, turn = start, 0
    while candidate < end:
        symbol = symbols[turn % len(symbols)]
        due = candidate + LATENCY_MS
        if not any(due - QUIET_BEFORE_MS <= at <= due + QUIET_AFTER_MS for at in times[symbol]):
            direction, strength = INTENTS[len(signals) % len(INTENTS)]
            signals.append(
                Signal(
                    signal_id=Signal.make_id("parity", model_version, symbol, "1m", candidate),
                    symbol=symbol,
                    timeframe="1m",
                    bar_start_ms=candidate,
                    direction=direction,
                    strength=strength,  # type: ignore[arg-type]
                    confidence=0.8,
                    model_id="parity",
                    model_version=model_version,
                    created_at_ms=candidate,
                )
            )
            turn += 1
            candidate += SIGNAL_GAP_MS
        else:
            candidate += 50
    return signals


def _quote(ticks: list[Tick], symbol: str, at_ms: int) -> tuple[float, float]:
    latest = [tick for tick in ticks if tick.symbol == symbol and tick.time_ms <= at_ms][-1]
    return latest.bid, latest.ask


def _moved(message: Tick | Signal, offset_ms: int) -> Tick | Signal:
    if isinstance(message, Tick):
        return Tick(
            message.symbol,
            message.time_ms + offset_ms,
            message.seq,
            message.bid,
            message.ask,
            message.last,
            message.volume,
            message.flags,
            message.source,
        )
    return Signal(
        signal_id=message.signal_id,
        symbol=message.symbol,
        timeframe=message.timeframe,
        bar_start_ms=message.bar_start_ms + offset_ms,
        direction=message.direction,
        strength=message.strength,
        confidence=message.confidence,
        model_id=message.model_id,
        model_version=message.model_version,
        created_at_ms=message.created_at_ms + offset_ms,
    )


def _orders(events: list[AnyMessage]) -> list[tuple[str, str, str, str, float]]:
    return [
        (e.client_order_id, e.signal_id, e.symbol, e.side, e.quantity_lots)
        for e in events
        if isinstance(e, OrderSubmitted)
    ]


def _fills(events: list[AnyMessage]) -> list[tuple[str, str, float, float, bool]]:
    return [
        (e.client_order_id, e.fill_id, e.fill_price, e.fill_lots, e.is_final)
        for e in events
        if isinstance(e, OrderFilled)
    ]


def _denials(events: list[AnyMessage]) -> list[tuple[str, str]]:
    return [(e.signal_id, e.check) for e in events if isinstance(e, OrderDenied)]


def test_backtest_when_a_recorded_session_replays_then_orders_fills_and_pnl_equal_the_live_paper_run(
    processes: Processes, bus: Bus, topics: Settings, tmp_path: Path
) -> None:
    ticks = _window()
    signals = _quiet_signals(ticks)
    # One signal the gate must deny (a symbol outside allowed_symbols) and one delivered twice.
    stray = Signal(
        signal_id=Signal.make_id("parity", 1, "NZDUSD", "1m", 0),
        symbol="NZDUSD",
        timeframe="1m",
        bar_start_ms=0,
        direction="long",
        strength=1.0,
        confidence=0.8,
        model_id="parity",
        model_version=1,
        created_at_ms=signals[1].created_at_ms + 10,
    )
    session: list[Tick | Signal] = [*ticks, *signals, stray, signals[2]]
    assert len(signals) >= 8, f"only {len(signals)} quiet moments in the window"
    # Latency matters here: for most signals the quote moves between the decision and the fill.
    assert (
        sum(
            _quote(ticks, s.symbol, s.created_at_ms) != _quote(ticks, s.symbol, s.created_at_ms + LATENCY_MS)
            for s in signals
        )
        >= len(signals) // 2
    )

    env = {"TICKWAVE_EXECUTION_PAPER_BROKER_LATENCY_MS": str(LATENCY_MS)}
    processes.start(extra_env=env)
    marker = ready_marker(processes.state_dir.resolve(), "execution")
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, processes.log_tail()
        time.sleep(0.05)

    # Live: each message at its own time, moved to now (+1 s to get going).
    offset_ms = now_ms() + 1_000 - ticks[0].time_ms
    moved = sorted(
        (_moved(message, offset_ms) for message in session),
        key=lambda m: (m.time_ms, 0) if isinstance(m, Tick) else (m.created_at_ms, 1),
    )
    for message in moved:
        at_ms = message.time_ms if isinstance(message, Tick) else message.created_at_ms
        time.sleep(max(0.0, (at_ms - now_ms()) / 1000))
        bus.send(message)
    signal_ids = {m.signal_id for m in moved if isinstance(m, Signal)}

    def done(events: list[AnyMessage]) -> bool:
        decided = {e.signal_id for e in events if isinstance(e, OrderSubmitted | OrderDenied)}
        submitted = sum(isinstance(e, OrderSubmitted) for e in events)
        return signal_ids <= decided and sum(isinstance(e, OrderFilled) for e in events) == submitted

    bus.wait_for(done, 20, "every signal decided and every order filled")
    processes.stop_all()
    instance = processes.state_dir / "execution" / "execution-1"
    with Journal(instance / JOURNAL_NAME, fsync=False) as journal:
        live = list(journal.events())
    settings = load_settings(
        state_dir=tmp_path, market={"hours": "always"}, execution={"paper_broker": {"latency_ms": LATENCY_MS}}
    )
    ledger = open_paper_broker(settings.execution, ManualClock(0), instance / LEDGER_NAME, registry(settings.symbols))
    live_realized = {currency: amount for currency, amount in ledger.realized.items() if amount}
    live_positions = dict(ledger.positions())
    ledger.close()

    # The backtest: the same messages, replayed.
    replayed = replay_session(
        settings, [m for m in moved if isinstance(m, Tick)], [m for m in moved if isinstance(m, Signal)]
    )
    backtest = list(replayed.events)

    assert _orders(backtest) == _orders(live), processes.log_tail()
    assert _denials(backtest) == _denials(live)
    assert _fills(backtest) == _fills(live)
    instruments = registry(settings.symbols)
    assert fill_pnls(backtest, instruments) == fill_pnls(live, instruments)
    assert {c: a for c, a in replayed.realized_by_currency.items() if a} == live_realized
    assert replayed.positions == live_positions
    # The session did trade: one order per signal, closes that realised P&L, the gate denied the stray symbol.
    live_signals = [order[1] for order in _orders(live)]
    assert len(live_signals) == len(set(live_signals)) >= 6
    assert (stray.signal_id, "symbol_allowed") in _denials(live)
    assert any(pnl.realized != Decimal(0) for pnl in fill_pnls(live, instruments))
