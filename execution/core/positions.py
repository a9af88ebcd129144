"""Net positions in exact decimals, first-in first-out (shared by the engine and the paper broker).

FIFO lots rather than an average price: an average needs a division, which cannot be
exact, while matching a closing fill against the oldest open lots needs only products
and sums, so realised and open P&L stay exact.

This is Tickwave's one accounting rule, kept by the execution core (``positions.rs``, with
``money.rs``'s exact decimals: every sum and product gives the coefficient and exponent
:data:`tickwave.money.MONEY_CONTEXT` gives, and an amount beyond 77 digits raises
``OverflowError`` rather than rounding): :meth:`Book.book` says what each fill did to the
position (before and after, realised P&L, the round trip), the engine puts that on the
fill's record, and the warehouse's marts and reports only add those figures up.

- ``Book()``: one symbol's open lots, oldest first (``entries``: ``(signed lots, entry price)``
  pairs), the open round trip ``trip_id`` (the fill that opened it, ``""`` when flat), the
  net position ``lots``, a ``revision`` bumped by every change; ``fill``, ``book``,
  ``entry_value``, ``unrealized``, ``copy`` and ``take``.
- ``Booking``: what one fill did (``position_before``, ``position_after``,
  ``entry_value_after``, ``realized`` in price x lots, ``round_trip_id``,
  ``opens_round_trip_id``).
"""

from __future__ import annotations

from tickwave_core import Book, Booking

__all__ = ["Book", "Booking", "book_of"]


def book_of(books: dict[str, Book], symbol: str) -> Book:
    """Return ``symbol``'s book in ``books``, made (flat) on its first fill (no empty book built per call)."""
    book = books.get(symbol)
    if book is None:
        book = books[symbol] = Book()
    return book
