"""Operator commands: halt, reduce, resume, set_limit, flatten and status, decided read-only.

Each command becomes risk events (and, for ``flatten``, reduce-only orders) to journal and
apply; halt, reduce, resume and flatten are decided by the core (``stops.rs``).
``set_limit`` returns the new limits in its outcome and the engine puts them in force
(limits come from the configuration, so a restart returns to the configured ones and the
command is not replayed).
"""

from __future__ import annotations

import json
import math
from dataclasses import fields, replace
from decimal import Decimal
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from execution.core.decisions import ControlOutcome, EventBuilder
from execution.core.engine_state import EngineState
from execution.core.limits import RiskLimits
from execution.core.valuation import Valuation, status_summary
from tickwave.clock import Clock
from tickwave.config import RiskSettings
from tickwave.contracts import ControlCommand
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


class Commands:
    """Turns operator commands into events and orders (reads the state only)."""

    def __init__(self, state: EngineState, clock: Clock, events: EventBuilder, valuation: Valuation) -> None:
        self.state = state
        self.clock = clock
        self.events = events
        self.valuation = valuation

    def on_control(self, command: ControlCommand) -> ControlOutcome:
        """Turn an operator command into state-change events and the orders to send (flatten).

        Halt, reduce, resume and flatten are the core's (``stops.rs``), as is a command applied
        before (a duplicate); ``set_limit`` (the configuration's validation) and ``status`` (the
        valuation's summary) are decided here.
        """
        now_ms = self.clock.now_ms()
        decided = self.state.on_control(command, self.events.instance_id, now_ms)
        if not isinstance(decided, str):
            events, intents, is_duplicate = decided
            return ControlOutcome(events, intents, is_duplicate)
        who = decided
        if command.command == "set_limit":
            return self._set_limit(command, who, now_ms)
        status = {**status_summary(self.valuation, self.events.instance_id, now_ms), "command_id": command.command_id}
        return ControlOutcome((self.events.risk("status", "info", json.dumps(status, sort_keys=True), now_ms),))

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
