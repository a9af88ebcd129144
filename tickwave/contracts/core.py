"""The contracts' plain functions: deterministic ids, the mid price, the kind test, the wire encoder.

They are the one copy of each rule (the message structs and their users call them) and
hold no struct of their own, so :mod:`app.native` compiles this module with the execution
core: a decision asks for a mid, an id or a kind several times per event, and from the
compiled core each is then a C call instead of a Python frame (about a tenth of a fast
replay's time went to such frames). Without the build the source runs, with the same results.
"""

from __future__ import annotations

import hashlib
from typing import Final

import msgspec

# The one JSON encoder of the wire format (see :mod:`tickwave.contracts`).
_ENCODER: Final = msgspec.json.Encoder()


def encode(message: msgspec.Struct) -> bytes:
    """Serialize a message to JSON bytes (the only wire format)."""
    return _ENCODER.encode(message)


def stable_id(*parts: object, length: int = 32) -> str:
    """Return a deterministic hex id of ``parts`` (the same inputs always give the same id)."""
    text = "\x1f".join(map(str, parts))
    return hashlib.blake2b(text.encode(), digest_size=length // 2).hexdigest()


def client_order_id_for(signal_id: str) -> str:
    """Return the client order id of the (single) order a signal may produce.

    MT5 carries it in the order ``comment`` (31 characters at most), hence the length.
    """
    return "tw-" + stable_id("order", signal_id, length=24)


def mid_price(bid: float, ask: float) -> float:
    """Return the mid price of a quote (``Tick.mid``)."""
    return (bid + ask) / 2.0


class KindTest:
    """``isinstance(message, kinds)``, worked out once per message type and then looked up.

    ``isinstance`` against a msgspec struct class costs ~150 ns for each class that does
    not match (~0.9 us for a tuple of six order events), measured here; on the decision
    path the journal and the paper broker ask it several times per order. The answer is
    ``issubclass(type(message), kinds)``, the same as ``isinstance`` for these classes.
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
