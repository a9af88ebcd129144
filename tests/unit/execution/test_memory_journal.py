"""The memory journal (a replay's): the file journal's positions and, linked at the end, its audit chain."""

from __future__ import annotations

from pathlib import Path

from execution.core.memory_journal import MemoryJournal
from execution.journal import Journal
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, ListPublisher, make_service, signal, tick
from tickwave.clock import ManualClock
from tickwave.contracts import Message


def _journaled(tmp_path: Path) -> list[Message]:
    """The events a short trading run journals (orders, fills, denials, risk events)."""
    publisher = ListPublisher()
    clock = ManualClock(WEDNESDAY_NOON_MS)
    service = make_service(tmp_path, clock, publisher, market_hours="always")
    try:
        service.handle_tick(tick(clock.now_ms(), 1.1))
        for index in range(1, 8):
            clock.advance(10)
            service.handle_signal(signal(index, clock.now_ms(), "long" if index % 3 else "short"))
    finally:
        service.close()
    return list(publisher.messages)


def test_memory_journal_when_the_same_groups_are_appended_then_positions_and_chain_head_equal_the_file_journal(
    tmp_path: Path,
) -> None:
    events = _journaled(tmp_path / "run")
    groups = [events[index : index + 3] for index in range(0, len(events), 3)]
    memory = MemoryJournal("execution-1")

    with Journal(tmp_path / "journal.jsonl", fsync=False, chain_id="execution-1") as journal:
        file_positions = [journal.append_all(group) for group in groups]
        for position in range(journal.count):
            journal.pop_link(position)  # links every chained event written, as the publisher does
        file_chain = journal.chain
    memory_positions = [memory.append_all(group) for group in groups]

    assert memory_positions == file_positions
    assert memory.messages == events
    chain = memory.chain()
    assert file_chain is not None and chain is not None
    assert (chain.head, chain.next_seq) == (file_chain.head, file_chain.next_seq)
    assert chain.next_seq > 0


def test_memory_journal_when_no_chain_id_then_no_chain_and_no_links() -> None:
    memory = MemoryJournal()

    position = memory.append(tick(WEDNESDAY_NOON_MS))

    assert (position, memory.count, memory.chain(), memory.pop_link(position)) == (0, 1, None, None)
    assert list(memory.events()) == []
