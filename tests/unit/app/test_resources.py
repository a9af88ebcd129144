"""Service memory is counted as the kernel's proportional set size: a page mapped three times counts once."""

from __future__ import annotations

import subprocess
import sys

import psutil

from app.services.resources import memory_bytes

MAPPED_MB = 64

# A child holding one 64 MB memfd mapped three times and touched through each mapping, as
# JDK 17's ZGC maps the broker's heap: RSS counts the pages three times.
_THRICE_MAPPED = f"""
import mmap, os, sys
size = {MAPPED_MB} << 20
fd = os.memfd_create("heap")
os.ftruncate(fd, size)
views = [mmap.mmap(fd, size) for _ in range(3)]
views[0].write(b"x" * size)
for view in views[1:]:
    sum(view[offset] for offset in range(0, size, mmap.PAGESIZE))
print("ready", flush=True)
sys.stdin.read()
"""


def test_memory_bytes_when_pages_are_mapped_thrice_then_counted_once() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _THRICE_MAPPED], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        rss_mb = psutil.Process(child.pid).memory_info().rss / 2**20
        held = memory_bytes(child.pid)
        assert held is not None
        held_mb = held / 2**20
        assert rss_mb > 3 * MAPPED_MB  # the three mappings, each counted in full
        assert MAPPED_MB < held_mb < 2 * MAPPED_MB, (held_mb, rss_mb)  # once, plus the interpreter
    finally:
        child.kill()
        child.wait()


def test_memory_bytes_when_the_process_is_gone_then_none() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert memory_bytes(child.pid) is None
