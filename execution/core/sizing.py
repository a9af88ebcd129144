"""Sizing: a signal's direction and strength to a target position, and the order to reach it.

Pure functions of their inputs. The target is ``sign(direction) x strength x max
position``, rounded towards zero to the lot step, so it never exceeds the cap; the order
is the difference to the current position, itself capped at the largest order size
(a big move is reached over several signals, never by one oversized order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Final

from tickwave.config import ExecutionSettings
from tickwave.contracts import Direction, Side, Signal

_DIRECTION_SIGN: Final[dict[Direction, int]] = {"long": 1, "short": -1, "flat": 0}


@dataclass(frozen=True)
class SizingPolicy:
    """The sizing parameters, taken from the execution settings."""

    max_position_lots: float
    max_order_lots: float
    lot_step: float
    min_strength: float = 0.0

    # Whole lot steps of the caps, and the decimals lots are rounded to: fixed per policy, so
    # worked out once rather than on each signal (two log10 and three divisions; ~2 us a signal).
    @cached_property
    def position_cap_steps(self) -> int:
        """Return the largest position as whole lot steps."""
        return to_steps(self.max_position_lots, self.lot_step)

    @cached_property
    def order_cap_steps(self) -> int:
        """Return the largest order as whole lot steps."""
        return to_steps(self.max_order_lots, self.lot_step)

    @cached_property
    def lot_decimals(self) -> int:
        """Return the decimals :func:`round_lots` rounds to."""
        return lot_decimals(self.lot_step)

    @classmethod
    def from_settings(cls, settings: ExecutionSettings) -> SizingPolicy:
        """Build the policy from the ``execution`` settings."""
        risk = settings.risk
        return cls(risk.max_position_lots, risk.max_order_lots, risk.lot_step, risk.min_strength)


def to_steps(lots: float, lot_step: float) -> int:
    """Return ``lots`` as a whole number of lot steps, rounded towards zero."""
    # The epsilon absorbs float noise such as 0.3 / 0.1 = 2.9999999999999996.
    steps = lots / lot_step
    return int(math.copysign(math.floor(abs(steps) + 1e-9), steps))


def lot_decimals(lot_step: float) -> int:
    """Return the decimals a multiple of ``lot_step`` is rounded to (two more than the step has)."""
    return max(0, -math.floor(math.log10(lot_step))) + 2


def round_lots(steps: int, lot_step: float, decimals: int | None = None) -> float:
    """Return a whole number of lot steps as lots, without float noise (0.07, not 0.07000000000000001)."""
    return _rounded(steps, lot_step, lot_decimals(lot_step) if decimals is None else decimals)


@lru_cache(maxsize=4096)  # the same few hundred steps recur with every signal; round() to decimals is ~0.2 us
def _rounded(steps: int, lot_step: float, decimals: int) -> float:
    return round(steps * lot_step, decimals)


def target_position_lots(signal: Signal, policy: SizingPolicy) -> float:
    """Return the signed position the signal asks for, within ``[-max, +max]``."""
    if signal.strength < policy.min_strength:
        return 0.0
    raw = _DIRECTION_SIGN[signal.direction] * signal.strength * policy.max_position_lots
    steps = to_steps(raw, policy.lot_step)
    cap = policy.position_cap_steps
    return round_lots(max(-cap, min(cap, steps)), policy.lot_step, policy.lot_decimals)


def order_for(target_lots: float, current_lots: float, policy: SizingPolicy) -> tuple[Side, float] | None:
    """Return the side and size that move ``current`` towards ``target`` (None when already there).

    The size is capped at the largest order size and is a whole number of lot steps.
    """
    delta_steps = to_steps(target_lots, policy.lot_step) - to_steps(current_lots, policy.lot_step)
    size_steps = min(abs(delta_steps), policy.order_cap_steps)
    if size_steps == 0:
        return None
    side: Side = "buy" if delta_steps > 0 else "sell"
    return side, round_lots(size_steps, policy.lot_step, policy.lot_decimals)
