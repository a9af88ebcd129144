"""The journal's sealed segments: naming, sealing, compressing, and finishing what a crash cut short.

With ``segment_bytes``, once the active file (``journal.jsonl``) passes that size at a group's
end it is sealed: cut to its contents, hard-linked as ``journal-<first position>.jsonl`` and
replaced by a fresh, preallocated ``journal.jsonl`` (a rename, then an fsync of the
directory); a thread then compresses the sealed file to ``.jsonl.gz`` (written aside,
renamed, then the plain file removed). :class:`execution.journal.Journal` reads the sealed
segments in order, then the active file, so positions, the state and the audit chain run on
across files exactly as in one file.

Each step leaves something an open can finish (:func:`tidy`): a crash after the link leaves
the sealed name and the active one on the same file (the rotation is completed: a fresh
active file); after the compressed copy's rename, both copies (the compressed one is removed
and made again); a leftover ``.tmp`` is removed. A sealed segment is whole: a corrupt or
unfinished line in one, or a gap in the positions between segments, fails the open.
Segments are kept: the state is rebuilt from every event (compliance keeps orders for years
anyway); compressed, a segment takes about a tenth of its size.
"""

from __future__ import annotations

import gzip
import logging
import os
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from tickwave.errors import DataQualityError

logger = logging.getLogger(__name__)

T = TypeVar("T")  # a parsed event
COMPRESS_CHUNK_BYTES = 1 << 20
GZIP_WBITS = 31  # zlib's gzip wrapper


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename or a link in it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sealed_segments(path: Path) -> list[tuple[int, Path]]:
    """Return the sealed segments of the journal at ``path`` as (first position, file), oldest first.

    Plain (``journal-<first>.jsonl``) or compressed (``….jsonl.gz``); where both are there (a
    compression cut short after its rename), the plain one.
    """
    found: dict[int, Path] = {}
    prefix, suffix = f"{path.stem}-", path.suffix
    for candidate in path.parent.glob(f"{prefix}*{suffix}*"):
        name = candidate.name
        stem = name.removesuffix(".gz")
        number = stem[len(prefix) : -len(suffix)] if stem.endswith(suffix) else ""
        if not number.isdigit() or name.endswith(".tmp"):
            continue
        if int(number) not in found or not name.endswith(".gz"):
            found[int(number)] = candidate
    return sorted(found.items())


def fresh_file(file: Path, preallocate: int) -> tuple[int, int]:
    """Put a new, empty active file in place by a rename (``preallocate`` zero bytes, synced); return (fd, size)."""
    tmp = file.with_name(file.name + ".tmp")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if preallocate:
            os.pwrite(fd, bytes(preallocate), 0)
            os.fdatasync(fd)
        os.replace(tmp, file)
        fsync_dir(file.parent)
    except OSError:
        os.close(fd)
        raise
    return fd, preallocate


def seal(file: Path, fd: int, end: int, first: int) -> Path:
    """Cut the active file (open as ``fd``) to its ``end`` and link it as the segment from ``first``.

    Raises:
        OSError: when the filesystem refuses (the active file is left as it is, only cut to its contents).
    """
    sealed = file.with_name(f"{file.stem}-{first:012d}{file.suffix}")
    os.ftruncate(fd, end)
    try:
        os.link(file, sealed)
    except FileExistsError:
        if not sealed.samefile(file):  # ours from a refused try, or refuse: never overwrite a segment
            raise
    return sealed


def tidy(file: Path, preallocate: int) -> list[tuple[int, Path]]:
    """Finish what a crash cut short; return the sealed segments, oldest first."""
    for leftover in file.parent.glob(f"{file.stem}*.tmp"):
        leftover.unlink()
    segments = sealed_segments(file)
    for first, segment in segments:
        segment.with_name(segment.name + ".gz").unlink(missing_ok=True)  # a plain one is read: redo the copy
        if segment.suffix == file.suffix and file.exists() and segment.samefile(file):
            logger.warning("journal %s: finishing a rotation cut short at position %d", file, first)
            os.close(fresh_file(file, preallocate)[0])
    return segments


def read_sealed(segment: Path) -> bytes:
    """Return a sealed segment's contents (decompressed).

    Raises:
        DataQualityError: when a compressed segment is damaged.
    """
    data = segment.read_bytes()
    try:
        return gzip.decompress(data) if segment.suffix == ".gz" else data.rstrip(b"\0")
    except (OSError, EOFError, zlib.error) as exc:
        raise DataQualityError(f"{segment}: a damaged compressed segment: {exc}") from exc


def sealed_events(segment: Path, parse: Callable[[bytes], tuple[T, bool] | None]) -> list[tuple[T, bytes]]:
    """Return a sealed segment's events with their payloads, in order (``parse``: a line's event, and "more follows").

    Raises:
        DataQualityError: when a line is corrupt, the segment ends inside a group, or it does not decompress.
    """
    events: list[tuple[T, bytes]] = []
    group: list[tuple[T, bytes]] = []
    lines = read_sealed(segment).splitlines(keepends=True)
    for number, line in enumerate(lines, start=1):
        parsed = parse(line)
        if parsed is None:
            raise DataQualityError(f"{segment}: line {number} of {len(lines)} is corrupt (a sealed segment)")
        group.append((parsed[0], line[9:-1]))
        if not parsed[1]:
            events += group
            group.clear()
    if group:
        raise DataQualityError(f"{segment}: ends inside a group (a sealed segment is whole)")
    return events


def _content_end(handle: BinaryIO, size: int) -> int:
    """Return where a sealed file's contents end: its size without trailing zero bytes (preallocation)."""
    end = size
    while end > 0:
        start = max(0, end - COMPRESS_CHUNK_BYTES)
        handle.seek(start)
        kept = len(handle.read(end - start).rstrip(b"\0"))
        if kept:
            return start + kept
        end = start
    return 0


def compress(plain: Path) -> None:
    """Replace a plain sealed segment by its compressed copy (on a refusal the plain one stays: it reads the same).

    Streamed a chunk at a time, not the whole segment and its copy in memory (64 + ~6 MB at
    the default size, for the seconds of each seal, in the process that places orders).
    """
    compressed = plain.with_name(plain.name + ".gz")
    tmp = compressed.with_name(compressed.name + ".tmp")
    try:
        deflate = zlib.compressobj(6, zlib.DEFLATED, GZIP_WBITS)  # gzip.compress(data, 6, mtime=0)'s bytes
        with plain.open("rb") as source, tmp.open("wb") as handle:
            remaining = _content_end(source, os.fstat(source.fileno()).st_size)
            source.seek(0)
            while remaining:
                chunk = source.read(min(COMPRESS_CHUNK_BYTES, remaining))
                remaining -= len(chunk)
                handle.write(deflate.compress(chunk))
            handle.write(deflate.flush())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, compressed)
        fsync_dir(plain.parent)
        plain.unlink()
        fsync_dir(plain.parent)
    except OSError as exc:
        logger.error("journal segment %s: compressing failed, kept as it is: %s", plain, exc)
        tmp.unlink(missing_ok=True)


class Compressor:
    """Compresses sealed segments on threads of their own, off the decision path (zlib releases the GIL)."""

    def __init__(self) -> None:
        """No compression running yet."""
        self._threads: list[threading.Thread] = []

    def later(self, plain: Path) -> None:
        """Start compressing ``plain``."""
        thread = threading.Thread(target=compress, args=(plain,), name=f"compress-{plain.name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def wait(self) -> None:
        """Return once the compressions started so far are done (or failed)."""
        for thread in self._threads:
            thread.join()
        self._threads.clear()
