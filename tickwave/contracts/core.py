"""The contracts' plain functions: deterministic ids, the mid price, the kind test, the wire encoder.

The one copy of each rule; the execution core asks for them several times per event.
"""

from __future__ import annotations

from typing import Final

import msgspec
import tickwave_core

_ENCODER: Final = msgspec.json.Encoder()  # the wire format's one encoder (see tickwave.contracts)


def encode(message: msgspec.Struct) -> bytes:
    """Serialize a message to JSON bytes (the only wire format)."""
    return _ENCODER.encode(message)


def stable_id(*parts: object, length: int = 32) -> str:
    """Return a deterministic hex id of ``parts`` (the same inputs always give the same id)."""
    return joined_id("\x1f".join(map(str, parts)), length)


def joined_id(text: str, length: int = 32) -> str:
    """Return the :func:`stable_id` of parts joined with its separator (U+001F), as the ids of orders and fills do.

    The hex BLAKE2b digest of ``length`` (24 or 32) digits, worked out by the execution core (``ids.rs``).
    """
    return tickwave_core.joined_id(text, length)


def client_order_id_for(signal_id: str) -> str:
    """Return the id of the one order a signal may produce (31 characters at most: MT5's order ``comment``)."""
    return tickwave_core.client_order_id_for(signal_id)


def mid_price(bid: float, ask: float) -> float:
    """Return the mid price of a quote (``Tick.mid``)."""
    return (bid + ask) / 2.0


class KindTest:
    """``isinstance(message, kinds)`` worked out once per type (a miss costs ~150 ns a struct class, per order)."""

    def __init__(self, *kinds: type) -> None:
        self.kinds = kinds
        self._known: dict[type, bool] = {}

    def __call__(self, message: object) -> bool:
        """Return whether ``message`` is an instance of one of the kinds."""
        known = self._known.get(kind := type(message))
        if known is None:
            known = self._known[kind] = issubclass(kind, self.kinds)
        return known
