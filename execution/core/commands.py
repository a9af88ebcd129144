"""Operator commands: halt, reduce, resume, set_limit, flatten and status, decided read-only.

Each command becomes risk events (and, for ``flatten``, reduce-only orders) to journal and
apply; ``set_limit`` returns the new limits in its outcome and the engine puts them in
force (limits come from the configuration, so a restart returns to the configured ones
and the command is not replayed).
"""

from __future__ import annotations

import json
import math
from dataclasses import fields, replace
from decimal import Decimal
from functools import partial
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from execution.core.decisions import ControlOutcome, EventBuilder, closing_orders
from execution.core.engine_state import FLATTEN, SYMBOL_HALTED, SYMBOL_RESUMED, TRADING_STATE, EngineState
from execution.core.limits import RiskLimits
from execution.core.valuation import Valuation, status_summary
from tickwave.clock import Clock
from tickwave.config import RiskSettings
from tickwave.contracts import ControlCommand, OrderDenied, OrderIntent, RiskEvent, Signal
from tickwave.money import to_decimal

# Limits an operator may change at run time with ``set_limit`` (until the next restart).
SETTABLE_LIMITS = frozenset(
    f.name
    for f in fields(RiskLimits)
    if f.name
    not in {
        "allowed_symbols",
        "market",
        "instruments",
        "account_currency",
        "daily_loss_action",
        "signal_timeframe",
        "signal_timeframes",
    }
)


def parse_limit(name: str, text: str) -> float | int | str:
    """The value of a ``set_limit`` parameter under the setting's own rules, or why it is refused.

    The same pydantic field as ``[execution.risk]`` in the configuration (type and range), and
    finite: ``nan`` or ``inf`` would disable a check.
    """
    field_info = RiskSettings.model_fields[name]
    try:
        value: object = TypeAdapter(Annotated[field_info.annotation, field_info]).validate_python(text)
    except ValidationError as exc:
        return "; ".join(error["msg"] for error in exc.errors())
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "not a finite number"
    return value


def flatten_signal(command: ControlCommand, symbol: str, part: int, now_ms: int) -> Signal:
    """The operator's decision a flatten order traces to (its id names the command, symbol and part)."""
    return Signal(
        signal_id=f"flatten-{command.command_id}-{symbol}-{part}",
        symbol=symbol,
        timeframe="operator",
        bar_start_ms=now_ms,
        direction="flat",
        strength=0.0,
        confidence=1.0,
        model_id=f"operator:{command.issued_by}",
        model_version=0,
        created_at_ms=now_ms,
    )


class Commands:
    """Turns operator commands into events and orders (reads the state only)."""

    def __init__(self, state: EngineState, clock: Clock, events: EventBuilder, valuation: Valuation) -> None:
        self.state = state
        self.clock = clock
        self.events = events
        self.valuation = valuation

    def on_control(self, command: ControlCommand) -> ControlOutcome:
        """Turn an operator command into state-change events and the orders to send (flatten)."""
        if command.command_id in self.state.applied_commands:
            return ControlOutcome(is_duplicate=True)
        now_ms = self.clock.now_ms()
        took_ms = now_ms - command.issued_at_ms
        who = (
            f"by {command.issued_by} ({command.reason or 'no reason given'}) [command {command.command_id}]; "
            f"{took_ms} ms after it was issued"
        )
        risk = self.events.risk
        if command.command == "halt" and command.symbol:
            event = risk(
                SYMBOL_HALTED,
                "critical",
                f"{command.symbol} halted {who}",
                now_ms,
                symbol=command.symbol,
                check="operator",
            )
            return ControlOutcome((event,))
        if command.command == "halt":
            return ControlOutcome(
                (risk(TRADING_STATE, "critical", f"HALTED {who}", now_ms, "HALTED", check="operator"),)
            )
        if command.command == "reduce":
            return ControlOutcome(
                (risk(TRADING_STATE, "warning", f"REDUCING {who}", now_ms, "REDUCING", check="operator"),)
            )
        if command.command == "resume":
            return ControlOutcome(self._resume_events(command, who, now_ms))
        if command.command == "set_limit":
            return self._set_limit(command, who, now_ms)
        if command.command == "flatten":
            return self._flatten(command, who, now_ms)
        status = {**status_summary(self.valuation, self.events.instance_id, now_ms), "command_id": command.command_id}
        return ControlOutcome((risk("status", "info", json.dumps(status, sort_keys=True), now_ms),))

    def _resume_events(self, command: ControlCommand, who: str, now_ms: int) -> tuple[RiskEvent, ...]:
        risk = self.events.risk
        symbols = [command.symbol] if command.symbol else sorted(self.state.view.halted_symbols)
        events = [
            risk(SYMBOL_RESUMED, "info", f"{symbol} resumed {who}", now_ms, symbol=symbol, check="operator")
            for symbol in symbols
        ]
        if not command.symbol:
            events.append(risk(TRADING_STATE, "info", f"ACTIVE {who}", now_ms, "ACTIVE", check="operator"))
        return tuple(events)

    def _flatten(self, command: ControlCommand, who: str, now_ms: int) -> ControlOutcome:
        """Close positions (all, or one symbol's) with reduce-only market orders; cancel their working orders.

        Each order is named by the command and the symbol (idempotent: a repeated command
        is a duplicate), is at most ``max_order_lots`` (larger positions close in several
        orders) and passes the gate except the trading state: an operator may flatten while
        HALTED. A denied one (no price, market closed, collar) is recorded with its check.
        """
        state = self.state
        symbols = [command.symbol] if command.symbol else sorted(s for s, lots in state.view.positions.items() if lots)
        intents: list[OrderIntent] = []
        denials: list[OrderDenied] = []
        closing: list[str] = []
        for symbol in symbols:
            position = state.view.position(symbol)
            signal_for = partial(flatten_signal, command, symbol, now_ms=now_ms)
            closes, denied = closing_orders(state, symbol, signal_for, now_ms)
            intents.extend(closes)
            denials.extend(denied)
            if position:
                closing.append(f"{symbol} {position} lots")
        working = [order.client_order_id for order in state.working_orders() if order.symbol in symbols]
        scope = command.symbol or "all symbols"
        detail = (
            f"FLATTEN {scope} {who}: closing {', '.join(closing) or 'nothing (flat)'} with {len(intents)} "
            f"reduce-only orders; canceling {len(working)} working orders; {len(denials)} denied"
        )
        report = self.events.risk(FLATTEN, "critical", detail, now_ms, symbol=command.symbol, check="operator")
        return ControlOutcome(events=(report, *denials), intents=tuple(intents))

    def _set_limit(self, command: ControlCommand, who: str, now_ms: int) -> ControlOutcome:
        risk = self.events.risk
        unknown = sorted(set(command.params) - SETTABLE_LIMITS)
        if unknown or not command.params:
            detail = f"set_limit refused: unknown or missing limits {unknown} (settable: {sorted(SETTABLE_LIMITS)})"
            return ControlOutcome((risk("limit_refused", "warning", detail, now_ms, check="operator"),))
        limits = self.state.limits
        changes: dict[str, Any] = {}
        for name, text in command.params.items():
            value = parse_limit(name, text)
            if isinstance(value, str):
                detail = f"set_limit refused {who}: {name}={text!r}: {value}; limits unchanged"
                return ControlOutcome((risk("limit_refused", "warning", detail, now_ms, check="operator"),))
            current = getattr(limits, name)
            changes[name] = to_decimal(value) if isinstance(current, Decimal) else value
        detail = f"limits changed {who}: " + ", ".join(f"{k}={v}" for k, v in sorted(command.params.items()))
        event = risk("limit_changed", "warning", detail, now_ms, check="operator")
        return ControlOutcome((event,), limits=replace(limits, **changes))
