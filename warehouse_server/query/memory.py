"""The warehouse's memory: a cap the engine enforces, and memory given back after a spike.

Two allocators share the process. The engine's (jemalloc, inside chdb) returns freed
pages on its own after some seconds, but not all of them; Python's (glibc malloc: request
bodies, decoded data, result buffers) keeps freed heap pages until told to trim. Measured
without the purge below: a 2.5 GB gzip bomb refused with 413 left the server at 776 MB
(idle: 329 MB) and a 1 GB gzip insert at 1,727 MB, 8 s later.

:class:`MemoryReturner` watches the resident size and, once it has grown by
``PURGE_GROWTH_BYTES`` over its floor, asks both allocators to give the free
memory back (``SYSTEM JEMALLOC PURGE`` through a handle of its own, then glibc's
``malloc_trim(0)``); both cost milliseconds. :func:`engine_memory_settings` caps what
the engine may hold in all (``max_server_memory_usage``: past it a query fails with
``MEMORY_LIMIT_EXCEEDED``, code 241, instead of the host running out), sizes the
engine's caches from that cap instead of its 5 GiB defaults, and has the engine's memory
worker purge jemalloc's dirty pages past ``DIRTY_PAGES_BYTES`` (its default: a fifth of the
cap, which at half the machine never came: with an insert every second the pool held 0 to
40 MB, and the resident size swung by as much between two readings). chdb's jemalloc
does not read ``MALLOC_CONF``, so its decay cannot be shortened from outside; the glibc side
gets the supervisor's ``MALLOC_ARENA_MAX`` (kept through the scrubbed re-execution).

:func:`write_engine_config` gives every table one MergeTree default the connection string
cannot carry (chdb takes no nested setting there, but it reads a configuration file): parts
left outdated by merges are removed by the cleanup thread alone. At the engine's default, a
cleanup of more than 100 of them fans out to a pool of up to 128 threads, which then stay
as idle threads of the global pool, each with its stack and allocator cache: measured with
2,000 one-row inserts, 144 threads and 93 MB anonymous memory after the cleanup, against 19
and 77 MB removing them one by one; at 500 ticks/s the first cleanup took the warehouse from
62 to 178 threads and its allocated memory up by 26 MB.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from adapters.heap import heap_trimmer
from warehouse_server.query.engine import Handle

logger = logging.getLogger(__name__)

PURGE_INTERVAL_S = 2.0
PURGE_GROWTH_BYTES = 64 << 20
FLOOR_RISES_AFTER = 30  # purges in a row that free little (a minute at the interval)
MACHINE_SHARE = 2  # without a configured cap, the engine may hold 1/2 of the machine's memory
CACHE_SHARE = 16  # each of the engine's mark and index caches: 1/16 of the cap
DIRTY_PAGES_BYTES = 16 << 20  # freed pages jemalloc may keep before the engine's memory worker purges them
# Outdated parts at most removed in parallel: never (the cleanup thread removes them one after another).
SERIAL_PART_REMOVAL = 1 << 62
CUSTOM_SETTINGS_PREFIXES = "SQL_"
QUERY_LOG_FLUSH_MS = 7500  # system.query_log's rows reach its table this often (ClickHouse's default)
_STATM = Path("/proc/self/statm")  # granted by the confinement


def machine_memory_bytes() -> int:
    """Return the machine's physical memory in bytes."""
    return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))


def engine_memory_settings(max_memory_mb: int) -> dict[str, str]:
    """Return the engine's server settings for a cap of ``max_memory_mb`` (0: half of the machine's memory)."""
    cap = max_memory_mb << 20 if max_memory_mb else machine_memory_bytes() // MACHINE_SHARE
    cache = str(cap // CACHE_SHARE)
    return {
        "max_server_memory_usage": str(cap),
        "memory_worker_purge_dirty_pages_threshold_ratio": f"{DIRTY_PAGES_BYTES / cap:.6g}",
        "mark_cache_size": cache,
        "index_mark_cache_size": cache,
        "primary_index_cache_size": cache,
    }


def write_engine_config(path: Path, users_config: Path | None = None, query_log_days: int = 0) -> dict[str, str]:
    """Write the engine's configuration file to ``path`` and return the server setting that names it.

    Written afresh at every start, before the engine reads it, so nothing the engine itself
    wrote there between two starts is ever read back. ``users_config`` names the engine's user
    directory (:func:`~warehouse_server.security.auth.write_engine_users`). With ``query_log_days``
    the engine keeps ``system.query_log`` (every query's full text) that many days, flushed every
    :data:`QUERY_LOG_FLUSH_MS`; without, it keeps none.
    """
    users = f"  <users_config>{users_config}</users_config>\n" if users_config is not None else ""
    query_log = (
        "  <query_log>\n"
        "    <database>system</database>\n"
        "    <table>query_log</table>\n"
        f"    <flush_interval_milliseconds>{QUERY_LOG_FLUSH_MS}</flush_interval_milliseconds>\n"
        f"    <ttl>event_date + INTERVAL {int(query_log_days)} DAY DELETE</ttl>\n"
        "  </query_log>\n"
        if query_log_days
        else ""
    )
    path.write_text(
        "<clickhouse>\n"
        # As a ClickHouse server ships it (Tableau's SQL_ settings). chdb's embedded server never reads
        # it (it does not call AccessControl::setupFromMainConfig): SQL_ settings still get 115.
        f"  <custom_settings_prefixes>{CUSTOM_SETTINGS_PREFIXES}</custom_settings_prefixes>\n"
        "  <merge_tree>\n"
        f"    <concurrent_part_removal_threshold>{SERIAL_PART_REMOVAL}</concurrent_part_removal_threshold>\n"
        "  </merge_tree>\n"
        f"{users}"
        f"{query_log}"
        "</clickhouse>\n",
        encoding="utf-8",
    )
    return {"config-file": str(path)}


def resident_bytes() -> int:
    """Return this process's resident set size in bytes (0 where it cannot be read)."""
    try:
        return int(_STATM.read_text().split()[1]) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):
        return 0


class MemoryReturner:
    """A daemon thread that gives freed memory back to the host after a spike."""

    def __init__(self, open_handle: Callable[[], Handle], interval_s: float = PURGE_INTERVAL_S) -> None:
        """Purge through handles from ``open_handle``, looking every ``interval_s`` seconds."""
        self._open_handle = open_handle
        self._interval_s = interval_s
        self._trim = heap_trimmer()
        self._stop = threading.Event()
        self._floor = resident_bytes()
        self._thread = threading.Thread(target=self._run, name="warehouse-memory", daemon=True)

    def start(self) -> None:
        """Start watching."""
        self._thread.start()

    def close(self) -> None:
        """Stop watching (the engine is about to close)."""
        self._stop.set()
        self._thread.join(timeout=5.0)

    def purge(self) -> tuple[int, int]:
        """Give free memory of both allocators back now; return the resident size before and after."""
        before = resident_bytes()
        handle = self._open_handle()
        try:
            handle.execute("SYSTEM JEMALLOC PURGE", "TabSeparated", {})
        finally:
            handle.close()
        self._trim()
        after = resident_bytes()
        return before, after

    def _run(self) -> None:
        # Purge while the resident size is PURGE_GROWTH_BYTES above its floor (the lowest
        # seen). Memory that stays in use through FLOOR_RISES_AFTER purges in a row that free
        # little (caches filled, data grew) becomes the new floor, so a bigger working set
        # does not cost a purge every tick; a spike shorter than that is purged when it ends.
        floor, fruitless = self._floor, 0
        while not self._stop.wait(self._interval_s):
            resident = resident_bytes()
            if resident - floor < PURGE_GROWTH_BYTES:
                floor, fruitless = min(floor, resident), 0
                continue
            try:
                before, after = self.purge()
            except Exception:  # a failed purge must not end the watch; the next tick retries
                logger.exception("memory purge failed")
                continue
            if before - after >= PURGE_GROWTH_BYTES // 4:
                fruitless = 0
                logger.info("memory returned after a spike: %d -> %d MiB resident", before >> 20, after >> 20)
            else:
                fruitless += 1
            if fruitless >= FLOOR_RISES_AFTER:
                floor, fruitless = after, 0
