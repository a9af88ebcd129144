"""The execution process links every order event it journals, and keeps the chain across restarts."""

from __future__ import annotations

from pathlib import Path

from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, ListPublisher, make_service, signal, tick
from tickwave.audit_chain import CHAINED_TYPES, GENESIS_HASH, StoredLink, first_break, is_chained
from tickwave.clock import ManualClock
from tickwave.contracts import OrderDenied, OrderFilled, OrderSubmitted, encode


def _trade(service_publisher: ListPublisher, tmp_path: Path, clock: ManualClock, start: int, count: int) -> None:
    service = make_service(tmp_path, clock, service_publisher, market_hours="always")
    try:
        service.handle_tick(tick(clock.now_ms(), 1.1))
        for index in range(start, start + count):
            clock.advance(10)
            service.handle_signal(signal(index, clock.now_ms(), "long" if index % 2 else "short"))
        service.handle_signal(signal(start, clock.now_ms()))  # a repeat: no new event
    finally:
        service.close()


def _stored(publisher: ListPublisher) -> list[StoredLink]:
    events = [message for message in publisher.messages if is_chained(message)]
    links = [publisher.links[event.event_id] for event in events]  # type: ignore[attr-defined]
    return sorted(
        (
            StoredLink(link.seq, link.prev_hash, link.hash, link.chain_id, encode(event))
            for link, event in zip(links, events, strict=True)
        ),
        key=lambda stored: stored.seq,
    )


def test_service_when_orders_are_journaled_then_every_order_event_is_linked_in_journal_order(tmp_path: Path) -> None:
    publisher = ListPublisher()

    _trade(publisher, tmp_path, ManualClock(WEDNESDAY_NOON_MS), 1, 6)

    chained = [message for message in publisher.messages if isinstance(message, CHAINED_TYPES)]
    assert {type(message) for message in chained} >= {OrderSubmitted, OrderFilled}
    assert set(publisher.links) == {message.event_id for message in chained}, "order events only, each linked"
    stored = _stored(publisher)
    assert [link.seq for link in stored] == list(range(len(chained)))
    assert stored[0].prev_hash == GENESIS_HASH
    assert first_break("execution-1", stored) is None


def test_service_when_restarted_then_the_chain_continues_from_the_journal(tmp_path: Path) -> None:
    clock = ManualClock(WEDNESDAY_NOON_MS)
    first, second = ListPublisher(), ListPublisher()

    _trade(first, tmp_path, clock, 1, 4)
    _trade(second, tmp_path, clock, 10, 4)

    before, after = _stored(first), _stored(second)
    assert after[0].seq == before[-1].seq + 1
    assert after[0].prev_hash == before[-1].hash
    assert first_break("execution-1", before + after) is None


def test_service_when_a_signal_is_denied_then_the_denial_is_linked_too(tmp_path: Path) -> None:
    publisher = ListPublisher()
    service = make_service(tmp_path, ManualClock(WEDNESDAY_NOON_MS), publisher, market_hours="always")
    try:
        service.handle_signal(signal(1, WEDNESDAY_NOON_MS))  # no price yet: denied
    finally:
        service.close()

    denials = [message for message in publisher.messages if isinstance(message, OrderDenied)]
    assert denials and all(denial.event_id in publisher.links for denial in denials)
