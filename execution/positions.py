"""Net positions with average entry price, in exact decimals (shared by the engine and the paper broker)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tickwave.money import MONEY_CONTEXT


@dataclass
class Book:
    """One symbol's signed net position (lots) and average entry price."""

    lots: Decimal = Decimal(0)
    average_price: Decimal = Decimal(0)

    def fill(self, signed_lots: Decimal, price: Decimal) -> Decimal:
        """Apply one execution; return the realised P&L in price x lots (multiply by contract size).

        Adding to a position moves the average price; reducing it realises P&L against
        the average; crossing through zero opens the remainder at the fill price.
        """
        held = self.lots
        after = held + signed_lots
        realized = Decimal(0)
        if held == 0 or (held > 0) == (signed_lots > 0):
            cost = MONEY_CONTEXT.add(MONEY_CONTEXT.multiply(abs(held), self.average_price), abs(signed_lots) * price)
            self.average_price = MONEY_CONTEXT.divide(cost, abs(after))
        else:
            closed = min(abs(signed_lots), abs(held))
            direction = 1 if held > 0 else -1
            realized = closed * (price - self.average_price) * direction
            if after == 0:
                self.average_price = Decimal(0)
            elif (after > 0) != (held > 0):
                self.average_price = price
        self.lots = after
        return realized

    def unrealized(self, mid: Decimal) -> Decimal:
        """Return the open P&L at ``mid`` in price x lots."""
        return (mid - self.average_price) * self.lots
