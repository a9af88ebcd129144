"""A journal kept in memory, for a replay: the durable journal's interface without the disk.

:class:`~execution.journal.Journal` writes each group of events to a file (checksummed
lines, one ``pwrite``) and links every order event into the audit hash chain as it goes.
A replay (:mod:`execution.backtest`) starts from nothing and keeps nothing, so it needs
neither: :class:`MemoryJournal` keeps the events as they are appended, in order, and
hands out the same positions. The engine and the service cannot tell them apart, so the
decisions are the live code's.

The audit chain is not dropped but computed once, at the end (:meth:`MemoryJournal.chain`):
the chain is a function of the encoded events and their order alone, so its head equals
the file journal's after the same events (one encode per chained event, none for the rest).
:class:`JournalLike` is what the service and the paper broker need from either journal.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from tickwave.audit_chain import CHAINED_TYPES, AuditChain, ChainLink
from tickwave.contracts import AnyMessage, Message, encode


class JournalLike(Protocol):
    """What the execution service and the paper broker use of a journal (the file one or the memory one)."""

    count: int

    def events(self) -> Iterator[AnyMessage]:
        """Return the events found when the journal was opened, oldest first."""
        ...

    def release_loaded(self) -> None:
        """Let go of the events found at open (the caller has rebuilt its state from them)."""
        ...

    def append(self, message: Message, *, sync: bool = False) -> int:
        """Append one event and return its position."""
        ...

    def append_all(self, messages: Sequence[Message], *, sync: bool = False) -> range:
        """Append events that happened together; return their positions."""
        ...

    def pop_link(self, position: int) -> ChainLink | None:
        """Return (and forget) the chain link of the event at ``position``."""
        ...

    def drop_links_before(self, position: int) -> None:
        """Forget the links of events before ``position``."""
        ...

    def sync(self) -> None:
        """Return once everything appended so far is durable."""
        ...

    def close(self) -> None:
        """Release what the journal holds."""
        ...

    def space_problem_now(self, min_free_bytes: int | None = None) -> str | None:
        """Why the journal is short of space now, below ``min_free_bytes`` free (None: the journal's own floor)."""
        ...


class MemoryJournal:
    """Events in a list, in journal order: positions as the file journal gives them, no I/O, no per-event link."""

    def __init__(self, chain_id: str | None = None) -> None:
        """Start empty; with ``chain_id``, :meth:`chain` links the order events at the end."""
        self.chain_id = chain_id
        self.messages: list[Message] = []
        self.count = 0

    def events(self) -> Iterator[AnyMessage]:
        """Return nothing: a memory journal starts empty (a replay has no earlier run)."""
        return iter(())

    def release_loaded(self) -> None:
        """Nothing: nothing was loaded (its ``messages`` are the replay's result)."""

    def append(self, message: Message, *, sync: bool = False) -> int:
        """Append one event and return its position (``sync`` is moot: nothing is durable)."""
        self.messages.append(message)
        self.count += 1
        return self.count - 1

    def append_all(self, messages: Sequence[Message], *, sync: bool = False) -> range:
        """Append events that happened together; return their positions."""
        first = self.count
        self.messages.extend(messages)
        self.count = first + len(messages)
        return range(first, self.count)

    def pop_link(self, position: int) -> ChainLink | None:
        """Return None: links are computed once, at the end (:meth:`chain`)."""
        return None

    def drop_links_before(self, position: int) -> None:
        """Do nothing: no link is kept per event."""

    def sync(self) -> None:
        """Do nothing: nothing is durable."""

    def close(self) -> None:
        """Do nothing: nothing is open."""

    def space_problem_now(self, min_free_bytes: int | None = None) -> str | None:
        """Never short of space: memory is the replay's own."""
        return None

    def chain(self) -> AuditChain | None:
        """Link every order event, in journal order, over its encoded bytes; return the chain (None: no chain id).

        The same links as the file journal's (:class:`tickwave.audit_chain.AuditChain` over
        the bytes it would have written), computed in one pass instead of one per event.
        """
        if self.chain_id is None:
            return None
        chain = AuditChain(self.chain_id)
        messages = self.messages
        # is_chained asked once per type present, then a set lookup per event (no call per event).
        chained = {kind for kind in set(map(type, messages)) if issubclass(kind, CHAINED_TYPES)}
        chain.extend(encode(message) for message in messages if type(message) in chained)
        return chain
