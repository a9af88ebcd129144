"""Sizing: a signal's direction and strength to a target position, and the order to reach it.

The rules are the execution core's (:mod:`tickwave_core`, ``sizing.rs``): the target is
``sign(direction) x strength x max position``, rounded towards zero to the lot step, so it
never exceeds the cap; the order is the difference to the current position, itself capped at
the largest order size (a big move is reached over several signals, never by one oversized
order). This module is their Python face: the policy built from the settings, and the calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import tickwave_core

from tickwave.config import ExecutionSettings
from tickwave.contracts import Side, Signal

to_steps = tickwave_core.to_steps
lot_decimals = tickwave_core.lot_decimals
round_lots = tickwave_core.round_lots


@dataclass(frozen=True)
class SizingPolicy:
    """The sizing parameters, taken from the execution settings."""

    max_position_lots: float
    max_order_lots: float
    lot_step: float
    min_strength: float = 0.0

    @cached_property
    def rules(self) -> tickwave_core.Sizing:
        """Return the core's sizing for these parameters (caps in steps and decimals worked out once)."""
        return tickwave_core.Sizing(self.max_position_lots, self.max_order_lots, self.lot_step, self.min_strength)

    @property
    def position_cap_steps(self) -> int:
        """Return the largest position as whole lot steps."""
        return self.rules.position_cap_steps

    @property
    def order_cap_steps(self) -> int:
        """Return the largest order as whole lot steps."""
        return self.rules.order_cap_steps

    @property
    def lot_decimals(self) -> int:
        """Return the decimals :func:`round_lots` rounds to."""
        return self.rules.lot_decimals

    @classmethod
    def from_settings(cls, settings: ExecutionSettings) -> SizingPolicy:
        """Build the policy from the ``execution`` settings."""
        risk = settings.risk
        return cls(risk.max_position_lots, risk.max_order_lots, risk.lot_step, risk.min_strength)


def target_position_lots(signal: Signal, policy: SizingPolicy) -> float:
    """Return the signed position the signal asks for, within ``[-max, +max]``."""
    return policy.rules.target_lots(signal.direction, signal.strength)


def order_for(target_lots: float, current_lots: float, policy: SizingPolicy) -> tuple[Side, float] | None:
    """Return the side and size that move ``current`` towards ``target`` (None when already there).

    The size is capped at the largest order size and is a whole number of lot steps.
    """
    return policy.rules.order_for(target_lots, current_lots)
