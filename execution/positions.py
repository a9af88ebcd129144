"""Net positions in exact decimals, first-in first-out (shared by the engine and the paper broker).

FIFO lots rather than an average price: an average needs a division, which cannot be
exact, while matching a closing fill against the oldest open lots needs only products
and sums, so realised and open P&L stay exact (``tickwave.money`` traps any rounding).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from tickwave.money import MONEY_CONTEXT


@dataclass
class Book:
    """One symbol's open lots, oldest first, each with its entry price (signed lots: + long, - short)."""

    entries: deque[tuple[Decimal, Decimal]] = field(default_factory=deque)

    @property
    def lots(self) -> Decimal:
        """Return the signed net position."""
        total = Decimal(0)
        for lots, _ in self.entries:
            total = MONEY_CONTEXT.add(total, lots)
        return total

    def fill(self, signed_lots: Decimal, price: Decimal) -> Decimal:
        """Apply one execution; return the realised P&L in price x lots (multiply by contract size).

        A fill on the side of the position opens new lots; the other way it closes the
        oldest lots first, and whatever is left over opens a position the other way.
        """
        realized = Decimal(0)
        remaining = signed_lots
        while remaining and self.entries and (self.entries[0][0] > 0) != (remaining > 0):
            open_lots, entry_price = self.entries[0]
            closed = min(abs(remaining), abs(open_lots))
            direction = 1 if open_lots > 0 else -1
            realized = MONEY_CONTEXT.add(realized, closed * (price - entry_price) * direction)
            left = open_lots - closed * direction
            if left:
                self.entries[0] = (left, entry_price)
            else:
                self.entries.popleft()
            remaining += closed * direction
        if remaining:
            self.entries.append((remaining, price))
        return realized

    def unrealized(self, mid: Decimal) -> Decimal:
        """Return the open P&L at ``mid`` in price x lots."""
        total = Decimal(0)
        for lots, entry_price in self.entries:
            total = MONEY_CONTEXT.add(total, MONEY_CONTEXT.multiply(mid - entry_price, lots))
        return total
