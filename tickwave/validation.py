"""Tick validation, shared by the dataflow and the execution process: a ``Tick`` or a ``Rejection`` with its reason.

Stateless checks (``check_raw``) run first: the contract (decodes, finite, bid > 0,
ask >= bid), a known symbol, and time sanity (not before ``min_time_ms``, not more than
``max_tick_lead_ms`` ahead of the wall clock). The stateful spike filter (``SpikeFilter``,
one per symbol) then rejects a mid price that jumps more than ``threshold_bps`` away
from a slow reference; after ``confirm_after`` consecutive rejections on the same side
the move is taken as real (a gap, not a bad tick), the reference jumps to it and the
filter carries on, so a genuine level shift never locks a symbol out.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from tickwave.contracts import DeadLetter, Tick, decode
from tickwave.errors import ContractError

# How far ahead of the reader's wall clock a tick on the bus may be stamped, ms: the default
# of ValidationRules and of the streams.max_tick_lead_ms setting.
MAX_TICK_LEAD_MS = 5_000


@dataclass(frozen=True)
class Rejection:
    """A message that failed validation, ready for the quarantine table and the DLQ."""

    reason: str
    raw: bytes
    symbol: str = ""
    check: str = ""


@dataclass(frozen=True)
class ValidationRules:
    """Limits for the stateless checks."""

    known_symbols: frozenset[str] | None = None  # None accepts every symbol
    min_time_ms: int = 946_684_800_000  # 2000-01-01T00:00:00Z
    max_tick_lead_ms: int = MAX_TICK_LEAD_MS


def check_raw(raw: bytes, rules: ValidationRules, now_ms: int) -> Tick | Rejection:
    """Decode and check one message without any state."""
    try:
        tick = decode(raw, Tick)
    except ContractError as error:
        return Rejection(error.reason, raw, check="contract")
    if rules.known_symbols is not None and tick.symbol not in rules.known_symbols:
        return Rejection(f"unknown symbol {tick.symbol!r}", raw, tick.symbol, "symbol")
    if tick.time_ms < rules.min_time_ms:
        return Rejection(f"time_ms {tick.time_ms} is before {rules.min_time_ms}", raw, tick.symbol, "time")
    if tick.time_ms > now_ms + rules.max_tick_lead_ms:
        ahead_s = (tick.time_ms - now_ms) / 1000
        return Rejection(f"time_ms {tick.time_ms} is {ahead_s:.1f} s in the future", raw, tick.symbol, "time")
    return tick


@dataclass
class SpikeFilter:
    """Rejects isolated price spikes of one symbol against a slow EMA reference."""

    threshold_bps: float = 300.0
    alpha: float = 0.05
    confirm_after: int = 5
    reference: float = 0.0
    pending_side: int = 0
    pending_count: int = 0

    def check(self, tick: Tick) -> str | None:
        """Return a rejection reason for a spike, or None (and update the reference)."""
        mid = tick.mid
        if self.reference == 0.0:
            self.reference = mid
            return None
        move_bps = (mid / self.reference - 1.0) * 10_000.0
        if abs(move_bps) <= self.threshold_bps:
            self.reference += self.alpha * (mid - self.reference)
            self.pending_side = self.pending_count = 0
            return None
        side = 1 if move_bps > 0 else -1
        self.pending_count = self.pending_count + 1 if side == self.pending_side else 1
        self.pending_side = side
        if self.pending_count >= self.confirm_after:
            self.reference = mid  # a level shift confirmed by consecutive ticks: follow it
            self.pending_side = self.pending_count = 0
            return None
        return f"spike: mid {mid!r} is {move_bps:+.0f} bps from reference {self.reference!r}"


def dead_letter(rejection: Rejection, received_at_ms: int, source: str = "streams") -> DeadLetter:
    """Return the quarantine record of a rejection (raw bytes as UTF-8, or base64 if binary)."""
    try:
        raw, encoding = rejection.raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        raw, encoding = base64.b64encode(rejection.raw).decode("ascii"), "base64"
    reason = f"{rejection.check}: {rejection.reason}" if rejection.check else rejection.reason
    return DeadLetter(
        source=source, reason=reason, raw=raw, received_at_ms=received_at_ms,
        raw_encoding=encoding,  # type: ignore[arg-type]
        symbol=rejection.symbol,
    )  # fmt: skip
