"""The journal sealed into segments: positions, state and the audit chain run on across files, and crashes mid-rotation.

Real files in a temporary directory. A rotation is a link, a fresh file renamed into place and
a compression aside; each test stops it where a crash could, and reopens.
"""

from __future__ import annotations

import gzip
import os
import tracemalloc
from pathlib import Path

import pytest

from execution.journal import Journal
from execution.journal_segments import COMPRESS_CHUNK_BYTES, compress, sealed_segments
from tickwave.audit_chain import ChainLink
from tickwave.contracts import OrderDenied
from tickwave.errors import DataQualityError

SEGMENT_BYTES = 2_000  # about eight events a segment


def _denied(index: int) -> OrderDenied:
    return OrderDenied(
        client_order_id=f"tw-{index}",
        signal_id=f"s-{index}",
        symbol="EURUSD",
        model_id="m",
        model_version=1,
        event_at_ms=index,
        reason="r",
        check="c",
    )


def _write(
    path: Path, count: int, *, segment_bytes: int | None = SEGMENT_BYTES, fsync: bool = False
) -> list[ChainLink]:
    """Journal ``count`` denials (two to a group every third one); return their chain links in order."""
    links: list[ChainLink] = []
    with Journal(path, fsync=fsync, chain_id="execution-1", segment_bytes=segment_bytes) as journal:
        index = 0
        while index < count:
            group = [_denied(index), _denied(index + 1)] if index % 3 == 0 and index + 1 < count else [_denied(index)]
            for position in journal.append_all(group, sync=True):
                link = journal.pop_link(position)
                assert link is not None
                links.append(link)
            index += len(group)
    return links


def _signal_ids(path: Path) -> list[str]:
    with Journal(path, fsync=False) as journal:
        return [event.signal_id for event in journal.events()]  # type: ignore[union-attr]


@pytest.mark.parametrize("fsync", [False, True])
def test_journal_when_past_its_segment_size_then_sealed_compressed_and_read_back_whole(
    tmp_path: Path, fsync: bool
) -> None:
    path = tmp_path / "journal.jsonl"

    _write(path, 60, fsync=fsync)

    segments = sealed_segments(path)
    assert len(segments) >= 5
    assert all(segment.name.endswith(".jsonl.gz") for _, segment in segments)  # compressed once sealed
    assert path.stat().st_size <= SEGMENT_BYTES + (4 << 20 if fsync else 1_000)
    assert _signal_ids(path) == [f"s-{index}" for index in range(60)]
    assert [first for first, _ in segments] == sorted({first for first, _ in segments})


def test_journal_when_reopened_across_segments_then_positions_and_the_chain_continue(tmp_path: Path) -> None:
    # The same events with and without segments, written in two runs: the links must be the same.
    rotated, single = tmp_path / "rotated" / "journal.jsonl", tmp_path / "single" / "journal.jsonl"
    links = _write(rotated, 30) + _write(rotated, 30)
    expected = _write(single, 30, segment_bytes=None) + _write(single, 30, segment_bytes=None)

    with Journal(rotated, fsync=False, chain_id="execution-1", segment_bytes=SEGMENT_BYTES) as journal:
        position = journal.append(_denied(99))
        last = journal.pop_link(position)
    with Journal(single, fsync=False, chain_id="execution-1") as journal:
        expected_last = journal.pop_link(journal.append(_denied(99)))

    assert len(sealed_segments(rotated)) >= 5
    assert position == 60
    assert [(link.seq, link.prev_hash, link.hash) for link in links] == [
        (link.seq, link.prev_hash, link.hash) for link in expected
    ]
    assert last == expected_last


def test_journal_when_a_sealed_segment_is_changed_then_opening_fails(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    _write(path, 40)
    _, second = sealed_segments(path)[1]
    data = gzip.decompress(second.read_bytes())
    second.write_bytes(gzip.compress(data.replace(b'"reason":"r"', b'"reason":"x"', 1)))

    with pytest.raises(DataQualityError, match="corrupt"):
        Journal(path, fsync=False)


def test_journal_when_a_sealed_segment_is_missing_then_opening_fails(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    _write(path, 40)
    sealed_segments(path)[1][1].unlink()

    with pytest.raises(DataQualityError, match="starts at position"):
        Journal(path, fsync=False)


def test_journal_when_a_rotation_stopped_after_the_link_then_reopening_finishes_it_once(tmp_path: Path) -> None:
    # A crash right after the hard link: the sealed name and the active one are the same file.
    path = tmp_path / "journal.jsonl"
    _write(path, 20)
    first = len(_signal_ids(path))
    assert _count_active(path) > 0  # events the sealed name would hold twice
    os.link(path, path.with_name(f"journal-{first - _count_active(path):012d}.jsonl"))

    ids = _signal_ids(path)
    with Journal(path, fsync=False, segment_bytes=SEGMENT_BYTES) as journal:
        journal.append(_denied(20))

    assert ids == [f"s-{index}" for index in range(20)]
    assert _signal_ids(path) == [f"s-{index}" for index in range(21)]
    assert path.stat().st_size < 500  # the fresh active file holds only the new event


def _count_active(path: Path) -> int:
    return len(path.read_bytes().rstrip(b"\0").splitlines())


def test_journal_when_a_compression_stopped_after_its_rename_then_each_event_is_read_once(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    _write(path, 30)
    _, compressed = sealed_segments(path)[0]
    plain = compressed.with_name(compressed.name.removesuffix(".gz"))
    plain.write_bytes(gzip.decompress(compressed.read_bytes()))  # both copies, as after the rename
    path.with_name("journal.jsonl.tmp").write_bytes(b"half a fresh file")

    ids = _signal_ids(path)

    assert ids == [f"s-{index}" for index in range(30)]
    assert not plain.exists() and compressed.exists()  # compressed again, the plain one removed
    assert not path.with_name("journal.jsonl.tmp").exists()


def test_journal_when_the_active_segment_has_a_torn_tail_then_it_is_cut_and_the_sealed_ones_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.jsonl"
    _write(path, 30)
    with path.open("ab") as handle:
        handle.write(b'0badf00d {"kind":"order_denied","clie')

    ids = _signal_ids(path)

    assert ids == [f"s-{index}" for index in range(30)]
    assert b"0badf00d" not in path.read_bytes()


def test_journal_when_sealing_is_refused_then_nothing_is_lost_and_it_seals_later(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    blocker = path.with_name(f"journal-{0:012d}.jsonl")

    with Journal(path, fsync=False, segment_bytes=SEGMENT_BYTES) as journal:
        blocker.mkdir()  # the sealed name is taken: the rotation must not replace the active file
        for index in range(12):
            journal.append(_denied(index))
        refused = path.stat().st_size
        blocker.rmdir()
        for index in range(12, 40):
            journal.append(_denied(index))

    assert refused > SEGMENT_BYTES  # kept writing where it was
    assert sealed_segments(path)[0][0] == 0
    assert _signal_ids(path) == [f"s-{index}" for index in range(40)]


def test_compress_when_a_large_segment_then_streamed_in_chunks_to_the_same_bytes(tmp_path: Path) -> None:
    # A sealed file may end in preallocated zero bytes; the copy holds the contents only.
    plain = tmp_path / "journal-1.jsonl"
    contents = b"".join(b'{"position":%d,"reason":"r"}\n' % index for index in range(400_000))  # ~12 MB
    plain.write_bytes(contents + bytes(3 * COMPRESS_CHUNK_BYTES + 17))
    tracemalloc.start()
    try:
        compress(plain)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    compressed = plain.with_name(plain.name + ".gz").read_bytes()
    assert compressed == gzip.compress(contents, compresslevel=6, mtime=0) and not plain.exists()
    assert peak < 4 * COMPRESS_CHUNK_BYTES < len(contents) // 2  # a few chunks, not the segment
