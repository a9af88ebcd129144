"""The journal and the service when the filesystem refuses a write or an extension (a full disk)."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

import execution.journal as journal_module
from execution.journal import JOURNAL_NAME, PREALLOCATE_BYTES, Journal, JournalUnavailable
from execution.journal_space import SPACE_CHECK_EVERY_MS
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, make_service, signal, tick
from tickwave.clock import ManualClock
from tickwave.contracts import ControlCommand, Message


def _no_space(*_args: object) -> int:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_journal_when_a_write_is_cut_short_by_a_full_disk_then_nothing_of_it_is_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: a group of long lines whose write stops after its first line and a bit, then ENOSPC
    path = tmp_path / JOURNAL_NAME
    journal = Journal(path, fsync=False)
    first = signal(0, WEDNESDAY_NOON_MS)
    journal.append(first)
    real_pwrite, calls = os.pwrite, [0]

    def short_then_full(fd: int, data: bytes, offset: int) -> int:
        calls[0] += 1
        if calls[0] == 1:
            return real_pwrite(fd, bytes(data)[: bytes(data).index(b"\n") + 20], offset)
        if not any(data):  # zeros over bytes already written need no new space
            return real_pwrite(fd, data, offset)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_module.os, "pwrite", short_then_full)
    refused = [signal(index, WEDNESDAY_NOON_MS, model_id="m" * 400) for index in range(1, 4)]

    # Act
    with pytest.raises(JournalUnavailable, match="write refused"):
        journal.append_all(refused)
    monkeypatch.undo()
    later = signal(9, WEDNESDAY_NOON_MS)
    position = journal.append(later)  # shorter than what the refused write left
    journal.close()

    # Assert: the refused group left no line behind; positions continue as if it never happened
    assert position == 1
    with Journal(path, fsync=False) as reopened:
        assert list(reopened.events()) == [first, later]


@pytest.mark.parametrize("fsync", [True, False])
def test_journal_when_free_space_is_under_the_floor_then_it_names_what_an_unprivileged_writer_has(
    tmp_path: Path, fsync: bool
) -> None:
    # Arrange: a journal (and a paper ledger's, fsync off) on this disk; floors just above and far below its free space
    journal = Journal(tmp_path / JOURNAL_NAME, fsync=fsync)
    free = shutil.disk_usage(tmp_path).free  # blocks an unprivileged process may still write, not the root reserve

    # Act
    short = journal.space_problem_now(free + (1 << 40))
    plenty = journal.space_problem_now(1)
    journal.close()

    # Assert: the reported figure is the writable space (another writer on the disk moves it a little meanwhile)
    assert short is not None and "disk full" in short
    reported = int(short.split(", ")[1].split(" bytes free")[0])
    assert abs(reported - free) < 256 << 20, f"{reported} bytes reported free, {free} writable"
    assert plenty is None


def test_journal_when_its_extension_is_refused_then_the_append_stands_and_the_problem_clears_with_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: a journal whose next append needs an extension, on a disk that refuses it
    journal = Journal(tmp_path / JOURNAL_NAME, fsync=True)
    journal._allocated = journal._end + journal_module.PREALLOCATE_HEADROOM  # the next append asks for more
    monkeypatch.setattr(journal_module.os, "pwrite", _pwrite_refusing_zeros(os.pwrite))

    # Act
    position = journal.append(signal(1, WEDNESDAY_NOON_MS), sync=True)
    refused = journal.space_problem_now()
    monkeypatch.undo()
    cleared = journal.space_problem_now()
    journal.close()

    # Assert
    assert position == 0, "the group written before the refused extension must stand"
    assert refused is not None and "cannot extend" in refused
    assert cleared is None
    assert os.path.getsize(tmp_path / JOURNAL_NAME) >= PREALLOCATE_BYTES


def _pwrite_refusing_zeros(real_pwrite: object) -> object:
    def pwrite(fd: int, data: bytes, offset: int) -> int:
        if len(data) == PREALLOCATE_BYTES and not any(data[:64]):
            return _no_space()
        return real_pwrite(fd, data, offset)  # type: ignore[operator, no-any-return]

    return pwrite


class _Disk:
    """What the journal's space check answers (a full disk, then freed); the filesystem is not involved."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.problem: str | None = None
        monkeypatch.setattr(Journal, "space_problem_now", lambda _journal, *_args: self.problem)


def _halt_command() -> ControlCommand:
    return ControlCommand(command_id="c1", command="halt", issued_by="t", issued_at_ms=WEDNESDAY_NOON_MS)


@pytest.mark.parametrize(("operator_halted", "state_after"), [(False, "ACTIVE"), (True, "HALTED")])
def test_service_when_the_disk_fills_and_is_freed_then_trading_returns_to_its_state_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operator_halted: bool, state_after: str
) -> None:
    # Arrange
    disk = _Disk(monkeypatch)
    clock = ManualClock(WEDNESDAY_NOON_MS)
    service = make_service(tmp_path, clock, market_hours="always")
    service.handle_tick(tick(clock.now_ms()))
    if operator_halted:
        service.handle_control(_halt_command())

    # Act
    disk.problem = "disk full"
    clock.advance(SPACE_CHECK_EVERY_MS)
    decided_while_full = service.handle_signals([signal(1, clock.now_ms())])
    halted = service.engine.trading_state
    disk.problem = None
    clock.advance(SPACE_CHECK_EVERY_MS)
    service.poll_broker()

    # Assert
    assert decided_while_full == 0
    assert halted == "HALTED"
    assert service.space.problem is None
    assert service.engine.trading_state == state_after


def test_service_when_a_decisions_write_is_refused_then_it_halts_instead_of_raising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: the next journal write is refused (the disk filled between two space checks)
    clock = ManualClock(WEDNESDAY_NOON_MS)
    service = make_service(tmp_path, clock, market_hours="always")
    service.handle_tick(tick(clock.now_ms()))
    append_all, refusals = service.journal.append_all, [JournalUnavailable("write refused: disk full")]

    def refuse_once(messages: Sequence[Message], *, sync: bool = False) -> range:
        if refusals:
            raise refusals.pop()
        return append_all(messages, sync=sync)

    monkeypatch.setattr(service.journal, "append_all", refuse_once)

    # Act
    decided = service.handle_signals([signal(1, clock.now_ms())])

    # Assert: not decided, nothing sent, trading halted for the disk
    assert decided == 0
    assert service.engine.orders == {}
    assert service.engine.trading_state == "HALTED"
    assert service.space.problem == "write refused: disk full"


def test_service_when_restarted_while_halted_for_the_disk_then_it_resumes_once_space_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: halted for the disk, then the process ends
    disk = _Disk(monkeypatch)
    clock = ManualClock(WEDNESDAY_NOON_MS)
    service = make_service(tmp_path, clock, market_hours="always")
    disk.problem = "disk full"
    clock.advance(SPACE_CHECK_EVERY_MS)
    service.poll_broker()
    service.close()

    # Act: started again while still full, then the space comes back
    restarted = make_service(tmp_path, clock, market_hours="always")
    halted_at_start = restarted.engine.trading_state
    disk.problem = None
    clock.advance(SPACE_CHECK_EVERY_MS)
    restarted.poll_broker()

    # Assert
    assert halted_at_start == "HALTED"
    assert restarted.engine.trading_state == "ACTIVE"
    restarted.close()
