"""The contracts' plain functions: deterministic ids, the mid price, the kind test, the wire encoder.

The one copy of each rule; :mod:`app.native` compiles this module with the execution core,
which asks for them several times per event (from the compiled core, a C call each).
"""

from __future__ import annotations

import hashlib
from typing import Final

import msgspec

_ENCODER: Final = msgspec.json.Encoder()  # the wire format's one encoder (see tickwave.contracts)
_BLAKE2B: Final = {n: hashlib.blake2b(digest_size=n // 2) for n in (24, 32)}  # copied: blake2b() parses its keywords


def encode(message: msgspec.Struct) -> bytes:
    """Serialize a message to JSON bytes (the only wire format)."""
    return _ENCODER.encode(message)


def stable_id(*parts: object, length: int = 32) -> str:
    """Return a deterministic hex id of ``parts`` (the same inputs always give the same id)."""
    return joined_id("\x1f".join(map(str, parts)), length)


def joined_id(text: str, length: int = 32) -> str:
    """Return the :func:`stable_id` of parts joined with its separator (U+001F), as the ids of orders and fills do."""
    digest = _BLAKE2B[length].copy() if length in _BLAKE2B else hashlib.blake2b(digest_size=length // 2)
    digest.update(text.encode())
    return digest.hexdigest()


def client_order_id_for(signal_id: str) -> str:
    """Return the id of the one order a signal may produce (31 characters at most: MT5's order ``comment``)."""
    return "tw-" + joined_id("order\x1f" + signal_id, 24)


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
