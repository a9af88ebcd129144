"""The order events' hash chain: what makes the audit trail tamper-evident.

Each order event (``OrderSubmitted | OrderAccepted | OrderRejected | OrderFilled |
OrderCanceled | OrderDenied``, the rows of the warehouse's ``order_events``) gets a link
in the order the execution process journals it (computed when it is published): its
position in the chain (``seq``, from 0), the previous link's hash, and
``sha256(previous hash, a newline, the canonical bytes)``.
The canonical bytes are the event's contract JSON (:func:`tickwave.contracts.encode`),
exactly the bytes the journal writes and the warehouse keeps in ``order_events.payload``,
so anyone holding the warehouse can recompute the chain without the execution process.

Shared by the execution process (which computes links where it journals) and the
reports (which verify them): so it lives in the core; the hashing itself is the execution
core's (:mod:`tickwave_core`). Pure functions and a small state object; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import tickwave_core

from tickwave.contracts import (
    KindTest,
    Message,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
)

GENESIS_HASH: Final = tickwave_core.GENESIS_HASH  # the "previous hash" of a chain's first event ("0" x 64)
CHAINED_TYPES: Final = (OrderSubmitted, OrderAccepted, OrderRejected, OrderFilled, OrderCanceled, OrderDenied)
_IS_CHAINED: Final = KindTest(*CHAINED_TYPES)  # isinstance, answered once per type (it is asked per journaled event)

# Kafka headers carrying a link from the execution process to the audit loader.
CHAIN_ID_HEADER: Final = "tickwave-chain-id"
CHAIN_SEQ_HEADER: Final = "tickwave-chain-seq"
CHAIN_PREV_HEADER: Final = "tickwave-chain-prev"
CHAIN_HASH_HEADER: Final = "tickwave-chain-hash"


def is_chained(message: Message) -> bool:
    """Return whether the message is an order event (one link of the chain)."""
    return _IS_CHAINED(message)


def link_hash(previous_hash: str, canonical: bytes) -> str:
    """Return the hash of an event whose canonical bytes are ``canonical``, after ``previous_hash``.

    The execution core computes it (``chain.rs``): SHA-256 of the previous hash, a newline and the bytes, in hex.
    """
    return tickwave_core.link_hash(previous_hash, canonical)


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One event's place in a chain (``chain_id`` names the execution instance that journaled it)."""

    chain_id: str
    seq: int
    prev_hash: str
    hash: str

    def headers(self) -> list[tuple[str, bytes]]:
        """Return the link as Kafka headers."""
        return [
            (CHAIN_ID_HEADER, self.chain_id.encode()),
            (CHAIN_SEQ_HEADER, str(self.seq).encode()),
            (CHAIN_PREV_HEADER, self.prev_hash.encode()),
            (CHAIN_HASH_HEADER, self.hash.encode()),
        ]

    def columns(self) -> dict[str, str | int]:
        """Return the link as ``order_events`` columns."""
        return {
            "chain_id": self.chain_id,
            "chain_seq": self.seq,
            "chain_prev_hash": self.prev_hash,
            "chain_hash": self.hash,
        }


def link_from_headers(headers: Iterable[tuple[str, bytes | str | None]] | None) -> ChainLink | None:
    """Return the link carried by Kafka headers, or None when there is none (or it is malformed)."""
    found: dict[str, str] = {}
    for key, value in headers or ():
        if isinstance(value, bytes):
            value = value.decode("ascii", errors="replace")
        if value is not None:
            found[key] = value
    try:
        return ChainLink(
            found[CHAIN_ID_HEADER], int(found[CHAIN_SEQ_HEADER]), found[CHAIN_PREV_HEADER], found[CHAIN_HASH_HEADER]
        )
    except (KeyError, ValueError):
        return None


class AuditChain:
    """The running head of one chain: :meth:`add` links the next event."""

    def __init__(self, chain_id: str, next_seq: int = 0, head: str = GENESIS_HASH) -> None:
        """Start a chain (or continue one from its head)."""
        self.chain_id = chain_id
        self.next_seq = next_seq
        self.head = head

    def add(self, canonical: bytes) -> ChainLink:
        """Link the event whose canonical bytes are ``canonical`` and return its link."""
        link = ChainLink(self.chain_id, self.next_seq, self.head, link_hash(self.head, canonical))
        self.next_seq += 1
        self.head = link.hash
        return link

    def extend(self, canonicals: Iterable[bytes]) -> None:
        """Link events in order, as :meth:`add` does each, keeping only the head (no link is returned)."""
        self.head, self.next_seq = tickwave_core.chain_extend(self.head, self.next_seq, list(canonicals))


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place a stored chain does not recompute: which chain, where, and why."""

    chain_id: str
    seq: int
    event_id: str
    reason: str

    def __str__(self) -> str:
        """Name the break in words an operator can act on."""
        return f"chain {self.chain_id!r} breaks at seq {self.seq} (event {self.event_id or '?'}): {self.reason}"


@dataclass(frozen=True, slots=True)
class StoredLink:
    """A chained event as stored: its link columns, its id and its canonical bytes (the payload)."""

    seq: int
    prev_hash: str
    hash: str
    event_id: str
    canonical: bytes


def first_break(
    chain_id: str, links: Sequence[StoredLink], *, start_seq: int = 0, start_head: str = GENESIS_HASH
) -> ChainBreak | None:
    """Recompute a chain from ``start_seq`` (whose previous hash is ``start_head``); return the first break.

    ``links`` must be the stored events of the chain ordered by ``seq``: a missing seq
    (an event deleted), a repeated one (an event inserted), a previous hash that is not
    the last event's hash, or a hash that does not recompute (an event changed) is a break.
    """
    expected_seq, head = start_seq, start_head
    for link in links:
        if link.seq != expected_seq:
            what = "missing (deleted?)" if link.seq > expected_seq else "repeated (inserted?)"
            seq = expected_seq if link.seq > expected_seq else link.seq
            return ChainBreak(chain_id, seq, link.event_id, f"event seq {seq} is {what}")
        if link.prev_hash != head:
            return ChainBreak(chain_id, link.seq, link.event_id, "previous hash is not the last event's hash")
        computed = link_hash(head, link.canonical)
        if computed != link.hash:
            return ChainBreak(chain_id, link.seq, link.event_id, "hash does not match the event (changed?)")
        expected_seq, head = expected_seq + 1, computed
    return None
