"""The contracts' plain functions: deterministic ids, the mid price, the kind test, the wire encoder.

The one copy of each rule; :mod:`app.native` compiles this module with the execution core,
which asks for them several times per event (from the compiled core, a C call each).
"""

from __future__ import annotations

import hashlib
from typing import Final

import msgspec

_ENCODER: Final = msgspec.json.Encoder()  # the wire format's one encoder (see tickwave.contracts)
_BLAKE2B: Final = hashlib.blake2b


def encode(message: msgspec.Struct) -> bytes:
    """Serialize a message to JSON bytes (the only wire format)."""
    return _ENCODER.encode(message)


def stable_id(*parts: object, length: int = 32) -> str:
    """Return a deterministic hex id of ``parts`` (the same inputs always give the same id)."""
    return joined_id("\x1f".join(map(str, parts)), length)


def joined_id(text: str, length: int = 32) -> str:
    """Return the :func:`stable_id` of parts joined with its separator (U+001F), as the ids of orders and fills do."""
    return _BLAKE2B(text.encode(), digest_size=length // 2).hexdigest()


def client_order_id_for(signal_id: str) -> str:
    """Return the id of the one order a signal may produce (31 characters at most: MT5's order ``comment``)."""
    return "tw-" + joined_id("order\x1f" + signal_id, 24)


def mid_price(bid: float, ask: float) -> float:
    """Return the mid price of a quote (``Tick.mid``)."""
    return (bid + ask) / 2.0


class KindTest:
    """``isinstance(message, kinds)`` as ``issubclass(type(message), kinds)``, worked out once per type.

    An ``isinstance`` that misses a msgspec struct class costs ~150 ns per class, asked several times per order.
    """

    def __init__(self, *kinds: type) -> None:
        self.kinds = kinds
        self._known: dict[type, bool] = {}

    def __call__(self, message: object) -> bool:
        """Return whether ``message`` is an instance of one of the kinds."""
        kind = type(message)
        known = self._known.get(kind)
        if known is None:
            known = self._known[kind] = issubclass(kind, self.kinds)
        return known
