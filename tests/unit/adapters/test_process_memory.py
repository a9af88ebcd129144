"""What a process holds: PSS for `tickwave status`, and without file-backed pages for the soak's slopes."""

from __future__ import annotations

import mmap
import os
import subprocess
import sys
from pathlib import Path

import psutil

from adapters.process_memory import allocated_bytes, resident_bytes

MIB = 1 << 20
CHILD = """
import mmap, sys
with open(sys.argv[1], "rb") as handle:
    mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    mapped.madvise(mmap.MADV_WILLNEED)
    total = sum(mapped[offset] for offset in range(0, len(mapped), 4096))  # every page of the file read in
held = bytearray(int(sys.argv[2]) << 20)
for offset in range(0, len(held), 4096):
    held[offset] = 1  # every page of the allocation touched
print("ready", flush=True)
sys.stdin.readline()
"""


def held_by_child(tmp_path: Path, file_mib: int, allocated_mib: int) -> tuple[int, int | None]:
    path = tmp_path / "mapped.bin"
    path.write_bytes(os.urandom(file_mib * MIB))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(allocated_mib)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        return resident_bytes(psutil.Process(child.pid)), allocated_bytes(child.pid)
    finally:
        child.communicate("\n", timeout=30)


def test_allocated_bytes_when_a_file_is_mapped_then_its_pages_count_in_pss_only(tmp_path: Path) -> None:
    small_pss, small_allocated = held_by_child(tmp_path, 1, 8)
    pss, allocated = held_by_child(tmp_path, 96, 8)

    assert small_allocated is not None and allocated is not None
    assert pss - small_pss > 80 * MIB  # the mapped file's 95 MiB more pages: in PSS
    assert abs(allocated - small_allocated) < 8 * MIB  # not allocated by the process


def test_allocated_bytes_when_memory_is_allocated_then_it_counts(tmp_path: Path) -> None:
    _pss, small = held_by_child(tmp_path, 1, 8)
    _pss, large = held_by_child(tmp_path, 1, 72)

    assert small is not None and large is not None
    assert 56 * MIB < large - small < 72 * MIB


def test_allocated_bytes_when_the_process_is_gone_then_none() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()

    assert allocated_bytes(child.pid) is None


def test_allocated_bytes_of_this_process_is_within_its_pss() -> None:
    mapped = mmap.mmap(-1, 4 * MIB)
    mapped.write(b"x" * (4 * MIB))
    allocated = allocated_bytes(os.getpid())

    assert allocated is not None and 4 * MIB <= allocated <= resident_bytes(psutil.Process())
