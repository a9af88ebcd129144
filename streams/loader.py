"""The streams loader: ``streams.records`` into the warehouse, off the dataflow's path.

The dataflow publishes every row it stores (accepted ticks, bars, features, predictions,
signals, dead letters) to ``streams.records`` and never waits for the warehouse; this
loader inserts them through the batched writers (``WriterPool``) and commits its Kafka
offsets only after the writers flushed, so a row is in the warehouse before its offset
is committed (at-least-once; every table is a ReplacingMergeTree on the row's natural
id and each batch carries a deduplication token, so a replay changes nothing).

``tickwave streams run`` starts it as a child process and stops it with the flow:
SIGTERM flushes and exits; the line ``drain`` on its stdin (sent when ``--stop-at-end``
finished the topic) loads the topic to its end first. The end of its stdin means the
flow is gone (even by ``kill -9``): it flushes and stops, so no loader is left behind.

Behind a backlog it reads whole batches of 10,000 records; once a read comes back short
(caught up) it trims the heap (glibc's ``malloc_trim``), which glibc otherwise keeps:
72,000 records worked off left the process 52 MB larger untrimmed, 11 MB trimmed. After
each commit it asks Arrow's pool to give back the pages of the batches it sealed (the
writers do the same on their threads), which the pool otherwise keeps for reuse. A
loader that stalled past the group's session or poll interval (a stopped machine, a slow
warehouse) finds its partitions taken: its commit is refused, the rows are stored anyway,
and it rejoins and reads them again from the last commit, a replay the tables' natural
ids absorb, rather than dying and taking its flow down with it.

A plain consumer loop rather than quixstreams (the audit loader's library): it must
drain to the topic's end on request, and at 5k rows/s it shares two cores with the
flow it was split from to keep the flow's latency.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from types import FrameType
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from adapters.bus import as_principal, make_consumer, resolve_bootstrap
from adapters.health import HealthReporter
from adapters.heap import heap_trimmer
from adapters.metrics import serve_metrics
from adapters.warehouse.client import connect
from adapters.warehouse.writer import release_arrow_memory
from streams.connectors import WriterPool
from streams.metrics import LOADER_BATCH_SECONDS, LoaderCollector
from tickwave.config import Settings, to_environment
from tickwave.contracts import Message, decode_any
from tickwave.errors import ContractError, ServiceError
from tickwave.topics import LOADER, STREAMS_RECORDS, topic_name

logger = logging.getLogger(__name__)

FLUSH_EVERY_S = 1.0
BATCH = 10_000  # records read at a time
# A commit refused because the group gave the partitions away (or is giving them away) meanwhile.
_NOT_OWNED = frozenset(
    {
        KafkaError._ASSIGNMENT_LOST,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.REBALANCE_IN_PROGRESS,
    }
)


class RecordLoader:
    """Loads ``streams.records`` into the warehouse, committing offsets after each flush."""

    def __init__(
        self,
        settings: Settings,
        pool: WriterPool | None = None,
        flush_every_s: float = FLUSH_EVERY_S,
        **consumer_overrides: Any,
    ) -> None:
        """Read the settings' records topic with group ``<prefix>tickwave-streams-loader`` (librdkafka overrides)."""
        self.topic = topic_name(settings, STREAMS_RECORDS)
        self.pool = pool or WriterPool(lambda: connect(settings))
        self.flush_every_s = flush_every_s
        self.bootstrap = resolve_bootstrap(settings)
        self.consumer = make_consumer(
            self.bootstrap,
            f"{settings.kafka.topic_prefix}tickwave-streams-loader",
            "bulk",
            **{"fetch.min.bytes": 64 * 1024, "fetch.wait.max.ms": 200, **consumer_overrides},
        )
        self.assigned: set[int] = set()
        self._trim = heap_trimmer()
        self.loaded = 0
        self.skipped = 0
        self.last_insert_at: float | None = None  # Unix time of the last flush that inserted rows (health)
        self._uncommitted = False

    def run(self, stop: threading.Event, drain: threading.Event | None = None) -> None:
        """Load until ``stop`` is set; once ``drain`` is set, stop after reading every partition to its end."""
        self.consumer.subscribe([self.topic], on_assign=self._assigned, on_revoke=self._revoked)
        flushed_at = time.monotonic()
        logger.info("streams loader: %s -> warehouse", self.topic)
        behind = False  # the last read took a whole batch: a backlog is being worked off
        try:
            while not stop.is_set():
                messages = self.consumer.consume(BATCH, 0.2)
                self._load(messages)
                draining = drain is not None and drain.is_set()
                caught_up = behind and len(messages) < BATCH
                if caught_up or draining or time.monotonic() - flushed_at >= self.flush_every_s:
                    self.commit()
                    release_arrow_memory()  # the committed batches were sealed (allocated) on this thread
                    flushed_at = time.monotonic()
                if caught_up:
                    self._trim()  # the backlog's records and batches are freed: give their pages back
                behind = len(messages) == BATCH
                if draining and not messages and self._read_to_end():
                    break
        finally:
            self.commit()
            self.consumer.close()
            self.pool.close()
            logger.info("streams loader stopped: %d rows loaded, %d undecodable skipped", self.loaded, self.skipped)

    def commit(self) -> None:
        """Flush the writers, then commit the offsets of everything they held.

        A commit the group refuses because this loader no longer owns the partitions (it
        did not poll for ``max.poll.interval.ms``, say behind a slow warehouse) is not an
        error: the rows are stored, and the partitions' next owner reads them again from
        the last commit, a replay the tables' natural ids absorb.
        """
        if not self._uncommitted:
            return
        started = time.perf_counter()
        self._flush_and_commit()
        LOADER_BATCH_SECONDS.observe(time.perf_counter() - started)

    def _flush_and_commit(self) -> None:
        self.pool.flush()
        self.last_insert_at = time.time()
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            code = exc.args[0].code()
            if code in _NOT_OWNED:
                logger.warning(
                    "streams loader: offsets not committed (%s); the rows are stored and are read "
                    "again from the last commit",
                    exc.args[0].str(),
                )
            elif code != KafkaError._NO_OFFSET:
                raise
        self._uncommitted = False

    def _load(self, messages: list[Any]) -> None:
        rows: list[Message] = []
        for message in messages:
            error = message.error()
            if error is not None and error.code() == KafkaError._MAX_POLL_EXCEEDED:
                logger.warning("streams loader: %s; rejoining the group", error.str())
                continue
            if error is not None:
                raise ServiceError(f"reading {self.topic} failed: {error.str()}")
            try:
                rows.append(decode_any(message.value()))
            except ContractError as exc:  # only the flow writes here; never stop the loader for one record
                self.skipped += 1
                logger.error(
                    "streams loader: skipped an undecodable record at offset %d: %s", message.offset(), exc.reason
                )
        if rows:
            self.pool.write(rows)
            self.loaded += len(rows)
        self._uncommitted = self._uncommitted or bool(messages)

    def _read_to_end(self) -> bool:
        """Return True when every assigned partition is consumed up to its current end.

        Compared with the broker's high watermark, not with end-of-partition events: a
        fetch waiting for ``fetch.min.bytes`` may hold the last records back after an
        earlier end-of-partition event (one tick was lost that way in the kill test).
        """
        if not self.assigned:
            return False
        for partition in self.assigned:
            topic_partition = TopicPartition(self.topic, partition)
            _low, high = self.consumer.get_watermark_offsets(topic_partition, timeout=10, cached=False)
            (position,) = self.consumer.position([topic_partition])
            if position.offset < 0:  # nothing consumed in this run: where the group left off
                (position,) = self.consumer.committed([topic_partition], timeout=10)
            if max(position.offset, 0) < high:
                return False
        return True

    def _assigned(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        self.assigned |= {partition.partition for partition in partitions}

    def _revoked(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        self.commit()  # before another loader takes them over
        self.assigned -= {partition.partition for partition in partitions}


def load_to_end(settings: Settings) -> int:
    """Load every record published so far, then return how many were loaded (tests, backfills)."""
    loader, drain = RecordLoader(settings), threading.Event()
    drain.set()
    loader.run(threading.Event(), drain)
    return loader.loaded


def run_loader(settings: Settings, follow_stdin: bool = False) -> None:
    """Run the loader in this process until SIGTERM/SIGINT.

    With ``follow_stdin`` (how the flow runs it), the line ``drain`` on stdin loads the
    topic to its end, then stops; end of stdin (the flow gone, even by ``kill -9``) stops.
    """
    stop, drain = threading.Event(), threading.Event()

    def on_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    os.nice(settings.streams.loader_nice)  # its inserts come in bursts: the flow it serves runs first
    if follow_stdin:
        threading.Thread(target=_follow_parent, args=(stop, drain), name="loader-parent", daemon=True).start()
    loader = RecordLoader(settings)
    serve_metrics(settings, LOADER_HEALTH, [LoaderCollector(loader)])
    # A broker that came back elsewhere stops the loader with an error: its flow sees it die and restarts.
    reporter = HealthReporter(
        settings.state_path, LOADER_HEALTH, lambda: loader_health(loader), on_death=lambda _what: stop.set()
    )
    reporter.follow_broker(settings, loader.bootstrap)
    reporter.start()
    try:
        loader.run(stop, drain)
    finally:
        reporter.stop()
        # Stopped: a second stop request (the supervisor signals the flow's process group, the flow its
        # loader) is ignored from here. The interpreter's finalization restores the default action of
        # signals handled in Python, so one arriving during the exit would end the process by SIGTERM.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if reporter.dead:
        raise ServiceError(f"the streams loader stopped because {', '.join(reporter.dead)} died")


LOADER_HEALTH = "streams-loader"


def loader_health(loader: RecordLoader) -> tuple[list[str], dict[str, Any]]:
    """The loader's progress for its health file: rows loaded, skipped, when it last inserted."""
    return [], {
        "rows_loaded": loader.loaded,
        "records_skipped": loader.skipped,
        "last_insert_at": loader.last_insert_at,
        "partitions": sorted(loader.assigned),
    }


def _follow_parent(stop: threading.Event, drain: threading.Event) -> None:
    # os.read, not sys.stdin: a daemon thread blocked in a buffered reader aborts the
    # interpreter's shutdown.
    received = b""
    while chunk := os.read(0, 64):
        received += chunk
        if b"drain\n" in received:
            drain.set()
    if not drain.is_set():
        logger.warning("streams loader: the flow is gone; flushing and stopping")
    stop.set()


def start_loader(settings: Settings) -> subprocess.Popen[bytes]:
    """Start the loader as a child of this process, which it follows through its stdin."""
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "streams", "load", "--follow-stdin"],
        env={**os.environ, **to_environment(as_principal(settings, LOADER))},  # its own principal on the bus
        stdin=subprocess.PIPE,
    )


def stop_loader(loader: subprocess.Popen[bytes], drain: bool, timeout_s: float = 120.0) -> int:
    """Stop the child loader (after loading the topic to its end when ``drain``); return its exit code."""
    if loader.poll() is None:
        if drain and loader.stdin is not None:
            loader.stdin.write(b"drain\n")
            loader.stdin.flush()
        else:
            loader.send_signal(signal.SIGTERM)
    try:
        return loader.wait(timeout_s)
    except subprocess.TimeoutExpired:
        loader.kill()
        loader.wait()
        raise ServiceError(f"the streams loader did not stop within {timeout_s:.0f} s; killed it") from None
    finally:
        if loader.stdin is not None:
            loader.stdin.close()
