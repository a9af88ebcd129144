"""The audit hash chain: links recompute, and any single change to a stored chain is named."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from tickwave.audit_chain import GENESIS_HASH, AuditChain, ChainLink, StoredLink, first_break, link_from_headers


def _stored(payloads: list[bytes]) -> list[StoredLink]:
    chain = AuditChain("execution-1")
    links = [chain.add(payload) for payload in payloads]
    return [
        StoredLink(link.seq, link.prev_hash, link.hash, f"e{link.seq}", payload)
        for link, payload in zip(links, payloads, strict=True)
    ]


def test_chain_when_events_are_added_then_each_hash_covers_the_previous_one() -> None:
    chain = AuditChain("execution-1")
    first, second = chain.add(b'{"a":1}'), chain.add(b'{"b":2}')

    assert (first.seq, first.prev_hash) == (0, GENESIS_HASH)
    assert first.hash == hashlib.sha256(GENESIS_HASH.encode() + b"\n" + b'{"a":1}').hexdigest()
    assert (second.seq, second.prev_hash) == (1, first.hash)
    assert second.hash == hashlib.sha256(first.hash.encode() + b"\n" + b'{"b":2}').hexdigest()
    assert chain.head == second.hash


@settings(deadline=None)
@given(first=st.lists(st.binary(max_size=20), max_size=5), then=st.lists(st.binary(max_size=20), max_size=5))
def test_chain_when_extended_then_its_head_and_next_seq_are_those_of_adding_each(
    first: list[bytes], then: list[bytes]
) -> None:
    added, extended = AuditChain("execution-1"), AuditChain("execution-1")
    for payload in first + then:
        added.add(payload)

    extended.extend(first)
    extended.extend(iter(then))

    assert (extended.head, extended.next_seq) == (added.head, added.next_seq)


def test_link_when_sent_as_headers_then_it_comes_back_equal() -> None:
    link = ChainLink("execution-1", 7, "a" * 64, "b" * 64)

    assert link_from_headers(link.headers()) == link
    assert link_from_headers([("other", b"x")]) is None
    assert link_from_headers(None) is None


payload_lists = st.lists(st.binary(min_size=1, max_size=20), min_size=2, max_size=12)


@given(payload_lists)
def test_first_break_when_the_chain_is_intact_then_none(payloads: list[bytes]) -> None:
    assert first_break("execution-1", _stored(payloads)) is None


@given(payload_lists, st.data())
def test_first_break_when_one_event_is_changed_then_it_is_named(payloads: list[bytes], data: st.DataObject) -> None:
    stored = _stored(payloads)
    index = data.draw(st.integers(0, len(stored) - 1))
    changed = stored[index].canonical + b" "
    stored[index] = StoredLink(stored[index].seq, stored[index].prev_hash, stored[index].hash, "x", changed)

    found = first_break("execution-1", stored)

    assert found is not None and found.seq == index and "hash does not match" in found.reason


@given(payload_lists, st.data())
def test_first_break_when_one_event_is_deleted_then_its_seq_is_named(
    payloads: list[bytes], data: st.DataObject
) -> None:
    stored = _stored(payloads)
    index = data.draw(st.integers(0, len(stored) - 2))  # the last one's deletion is caught by the manifest's head
    del stored[index]

    found = first_break("execution-1", stored)

    assert found is not None and found.seq == index and "missing" in found.reason


@given(payload_lists, st.data())
def test_first_break_when_an_event_is_inserted_then_it_is_named(payloads: list[bytes], data: st.DataObject) -> None:
    stored = _stored(payloads)
    index = data.draw(st.integers(0, len(stored) - 1))
    forged = stored[index]
    stored.insert(index + 1, StoredLink(forged.seq, forged.prev_hash, forged.hash, "forged", b"forged"))

    found = first_break("execution-1", stored)

    assert found is not None and found.seq == index


def test_first_break_when_relinked_after_a_change_then_the_next_link_still_breaks() -> None:
    stored = _stored([b"one", b"two", b"three"])
    # A forger who rewrites event 1 and recomputes its own hash cannot fix event 2's previous hash.
    forged_hash = hashlib.sha256(stored[0].hash.encode() + b"\nTWO").hexdigest()
    stored[1] = StoredLink(1, stored[0].hash, forged_hash, "e1", b"TWO")

    found = first_break("execution-1", stored)

    assert found is not None and found.seq == 2 and "previous hash" in found.reason


def test_first_break_when_started_mid_chain_then_it_continues_from_the_given_head() -> None:
    stored = _stored([b"one", b"two", b"three"])

    assert first_break("execution-1", stored[1:], start_seq=1, start_head=stored[0].hash) is None
    assert first_break("execution-1", stored[1:], start_seq=1, start_head=GENESIS_HASH) is not None
