"""Kafka adapters: the audit publisher, the signal/tick loop, the control listener, CLI helpers.

The hot loop reads ``signals`` and ``ticks`` with one plain confluent-kafka consumer and
*manual assignment* (``bench/execution.py`` measures it against a plain Kafka hop).
Signals resume from the group's committed offsets (redelivered ones are dropped by the
journal); ticks are a table, not a queue: each tick partition is read from a little
before its end, so the latest prices are back within milliseconds of a restart.
No group membership means no rebalance: a restart after ``kill -9`` resumes at once
instead of waiting out the dead member's session timeout. quixstreams is used by the
audit loader (``execution.audit``), whose sink must flush before its offsets commit; the
hot loop has no such need and drains what Kafka holds in batches.

Every message on ``signals`` passes :class:`SignalGate` before it is decoded: only a
signal signed with the dataflow's key (``adapters.signing``) is decided; anything else is
refused as a critical ``signal_refused`` risk event (journaled, on ``orders.events``, in
the warehouse's ``risk_events``) and its offset committed, so a producer that can write the
topic without the key places no order. A flood of them records at most
``REFUSALS_RECORDED_PER_S`` events a second; the rest are counted into the next one.

The control listener is its own thread and consumer, so a halt never queues behind a
backlog of ticks; the service applies a command before the hot loop's next decision
(:meth:`ExecutionService.handle_control`). The listener commits each command after it is
applied, and commands are idempotent (``command_id``), so one redelivered after a crash
changes nothing. A command is
acted on only if signed (HMAC-SHA256, ``adapters.signing``) and within
``execution.control.max_age_s`` of its issue; anything else is refused as a critical
``control_refused`` event and committed: nothing a control message holds stops the process.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from adapters.bus import Bootstrap, denial, make_consumer, make_producer
from adapters.signing import Headers, control_key, refusal, signals_key, signed_headers
from execution.metrics import DECISION_SECONDS, AuditCounts
from execution.service import ExecutionService, decode_signal
from tickwave.audit_chain import ChainLink
from tickwave.clock import Clock
from tickwave.config import Settings
from tickwave.contracts import ControlCommand, OrderDenied, RiskEvent, Signal, decode, decode_any, encode
from tickwave.contracts import Message as Contract
from tickwave.errors import ContractError, ServiceError
from tickwave.topics import EXECUTION_CONTROL, ORDERS_EVENTS, SIGNALS, TICKS, topic_name

logger = logging.getLogger(__name__)

TICK_LOOKBACK = 200  # ticks the hot loop re-reads per partition on start (after prime_prices)
PRIME_LOOKBACK = 20_000  # ticks read back per partition before the first signal (~0.1 s): every symbol's latest
COMMIT_EVERY_S = 1.0  # the audit cursor is saved this often
POLL_TIMEOUT_S = 0.05
MAX_BATCH = 100  # messages handled per lock hold at most: a halt waits for no more than this
REFUSALS_RECORDED_PER_S = 10  # refused signals journaled per second at most; the rest counted into the next
_COORDINATOR_STARTING = frozenset(
    {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE}
)


class KafkaPublisher:
    """Publishes audit events to ``orders.events`` and remembers how far delivery got.

    Bulk profile (5 ms linger, lz4), on purpose: an order yields ~7 audit events, all
    produced *after* the broker call, so batching them costs the order nothing, while
    sending each alone (linger 0) made ~7k produce requests/s at 1k signals/s and took
    the CPU the hot loop needs on a 2-core machine.

    The delivery cursor (the first journal position not yet acknowledged by Kafka, with
    everything before it acknowledged) is saved beside the journal at most once a
    second and on close; after a crash the service republishes from it.
    """

    def __init__(self, settings: Settings, bootstrap: Bootstrap, cursor_path: Path) -> None:
        self.bootstrap = bootstrap
        self.topic = topic_name(settings, ORDERS_EVENTS)
        self._producer = make_producer(bootstrap, "bulk")
        self._cursor_path = cursor_path
        try:
            self._delivered_through = int(cursor_path.read_text() or 0)
        except (FileNotFoundError, ValueError):
            self._delivered_through = 0
        self._acknowledged: set[int] = set()
        self._saved_at = time.monotonic()
        self.counts = AuditCounts()  # by kind, for the metrics (execution.metrics)

    def resume_position(self) -> int:
        """Return the first journal position not known to be delivered."""
        return self._delivered_through

    def publish(self, message: Contract, key: str, position: int, link: ChainLink | None = None) -> None:
        """Queue one event (its chain link as headers) and serve delivery callbacks without blocking."""
        if position >= self.counts.counting_from:  # inline: a call per event costs the decision more
            kind = type(message)
            self.counts.by_kind[kind] += 1
            if kind is OrderDenied:
                self.counts.denied_by_check[message.check] += 1  # type: ignore[attr-defined]  # by its type
        self._producer.produce(
            self.topic,
            key=key.encode(),
            value=encode(message),
            headers=link.headers() if link else None,
            on_delivery=lambda error, _message: self._on_delivery(error, position),
        )
        self._producer.poll(0)

    def _on_delivery(self, error: KafkaError | None, position: int) -> None:
        if error is not None:
            refused = denial(error, self.bootstrap, self.topic)
            logger.error("audit event at journal position %d not delivered: %s", position, refused or error.str())
            return  # the cursor stops before it: the next start republishes it
        self._acknowledged.add(position)
        while self._delivered_through in self._acknowledged:
            self._acknowledged.remove(self._delivered_through)
            self._delivered_through += 1
        if time.monotonic() - self._saved_at >= COMMIT_EVERY_S:
            self._save()

    def _save(self) -> None:
        self._saved_at = time.monotonic()
        temporary = self._cursor_path.with_suffix(".tmp")
        try:
            temporary.write_text(str(self._delivered_through))
            temporary.replace(self._cursor_path)
        except OSError as exc:  # a full disk: an older cursor only republishes more after a restart (deduped)
            logger.error(
                "audit cursor %s not saved (%s); saved again in %.0f s", self._cursor_path, exc, COMMIT_EVERY_S
            )

    def flush(self, timeout_s: float) -> int:
        """Wait for delivery, save the cursor; return how many messages are still pending."""
        pending = int(self._producer.flush(timeout_s))
        self._save()
        return pending


def _committed_or_beginning(consumer: Consumer, partitions: list[TopicPartition]) -> list[TopicPartition]:
    deadline = time.monotonic() + 30
    while True:
        try:
            committed = consumer.committed(partitions, timeout=10)
            break
        except KafkaException as exc:  # a fresh cluster answers NOT_COORDINATOR until its group coordinator loads
            error = exc.args[0]
            if not (error.retriable() or error.code() in _COORDINATOR_STARTING) or time.monotonic() > deadline:
                raise
            logger.info("committed offsets not available yet (%s); retrying", error.str())
            time.sleep(0.2)
    return [
        TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING if tp.offset in (OFFSET_INVALID, -1) else tp.offset)
        for tp in committed
    ]


def _partitions(consumer: Consumer, topic: str) -> list[TopicPartition]:
    metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise ServiceError(f"topic {topic} does not exist: run `tickwave topics create`")
    return [TopicPartition(topic, partition) for partition in sorted(metadata.partitions)]


def prime_prices(settings: Settings, bootstrap: Bootstrap, service: ExecutionService, timeout_s: float = 10.0) -> int:
    """Read back the latest ticks of every partition (up to the end seen now) before any signal is decided.

    A restart that subscribed to signals and ticks together decided part of the queued
    signals before the last ticks were read back, and denied them for want of a price.
    The ticks pass the same validation as live ones. Returns how many were read.
    """
    topic = topic_name(settings, TICKS)
    consumer = make_consumer(bootstrap, f"{settings.execution.consumer_group}-prime-{uuid.uuid4().hex[:8]}", "latency")
    read = 0
    try:
        ends: dict[int, int] = {}
        starts = []
        for tp in _partitions(consumer, topic):
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high > low:
                ends[tp.partition] = high
                starts.append(TopicPartition(topic, tp.partition, max(low, high - PRIME_LOOKBACK)))
        if not starts:
            return 0
        consumer.assign(starts)
        deadline = time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=0.2):
                if message.error() is not None:
                    continue
                service.handle_tick_bytes(message.value())
                read += 1
                if message.offset() + 1 >= ends.get(message.partition(), 0):
                    ends.pop(message.partition(), None)
        if ends:
            logger.warning(
                "prices read back from %d ticks; %d partitions not read to their end in %.0f s",
                read,
                len(ends),
                timeout_s,
            )
    finally:
        consumer.close()
    return read


def run_hot_loop(settings: Settings, bootstrap: Bootstrap, service: ExecutionService, stop: threading.Event) -> None:
    """Consume signals and ticks with a plain confluent-kafka consumer until ``stop`` is set."""
    execution = settings.execution
    signals_topic, ticks_topic = topic_name(settings, SIGNALS), topic_name(settings, TICKS)
    consumer = make_consumer(bootstrap, execution.consumer_group, "latency")
    try:
        signal_partitions = _committed_or_beginning(consumer, _partitions(consumer, signals_topic))
        tick_partitions = []
        for tp in _partitions(consumer, ticks_topic):
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            tick_partitions.append(TopicPartition(ticks_topic, tp.partition, max(low, high - TICK_LOOKBACK)))
        consumer.assign(signal_partitions + tick_partitions)
        logger.info(
            "hot loop assigned %d signal and %d tick partitions",
            len(signal_partitions),
            len(tick_partitions),
        )
        signals = _SignalBatch(service, signals_topic, SignalGate(signals_key(settings), service))
        while not stop.is_set():
            if signals.paused and service.space.problem is None:
                signals.resume(consumer, signal_partitions)
            # poll() returns as soon as one message is there; consume(timeout=0) then takes what else is
            # queued without waiting (a blocking consume() waits for its whole batch or the timeout).
            first = consumer.poll(POLL_TIMEOUT_S)
            batch = [first, *consumer.consume(num_messages=MAX_BATCH - 1, timeout=0)] if first is not None else []
            for message in batch:
                if message.error() is not None:
                    _log_kafka_error(message, bootstrap)
                elif message.topic() == signals_topic:
                    signals.add(message)
                else:
                    signals.decide()  # keep the order of signals and ticks
                    service.handle_tick_bytes(message.value())
            signals.decide()
            signals.rewind_undecided(consumer, signal_partitions)
            service.poll_broker()
            service.keep_fence()  # commits the offsets of signals without orders, at least once a second
        service.keep_fence(force=True)
    finally:
        consumer.close()


class SignalGate:
    """Admits a message on ``signals`` only if the dataflow signed it; records every other one, bounded."""

    def __init__(self, key: bytes, service: ExecutionService) -> None:
        """Check against the dataflow's ``key``; record refusals through ``service`` (its clock times the bound)."""
        self._key = key
        self._service = service
        self._window_ms = -1  # the second (engine clock) whose refusals are being counted
        self._recorded = 0  # refusals recorded in that second
        self._unrecorded = 0  # refusals counted but not recorded since the last recorded one

    def admit(self, value: bytes | None, headers: Headers | None, where: str) -> Signal | None:
        """Return the signal if signed with the key (and valid), else record why not and return None."""
        refused = refusal("signal", value, headers, self._key)
        if refused is None and value is not None:
            return decode_signal(value)
        self._refuse(f"{refused} at {where}: {_claims(value)}")
        return None

    def _refuse(self, detail: str) -> None:
        logger.critical("signal refused: %s", detail)
        second = self._service.engine.clock.now_ms() // 1000
        if second != self._window_ms:
            self._window_ms, self._recorded = second, 0
        if self._recorded >= REFUSALS_RECORDED_PER_S:
            self._unrecorded += 1
            return
        self._recorded += 1
        if self._unrecorded:
            detail += f"; {self._unrecorded} more refused before it, not recorded one by one (see the log)"
            self._unrecorded = 0
        self._service.refuse_signal(detail)


def _claims(value: bytes | None) -> str:
    # What a refused message says it is, for the record (never acted on): its signal's identity, or its size.
    if not value:
        return "an empty message"
    try:
        signal = decode(value, Signal)
    except ContractError:
        return f"{len(value)} bytes, not a valid signal"
    return (
        f"claims signal {signal.signal_id} of model {signal.model_id} v{signal.model_version}, "
        f"{signal.symbol} {signal.timeframe} {signal.direction} strength {signal.strength:g}"
    )


class _SignalBatch:
    """Consecutive signals of the hot loop, decided together; what was not decided is read again.

    The service decides none while its journal is short of space (see
    :meth:`ExecutionService.handle_signals`): their offsets are not committed, each partition
    is sought back to its first undecided signal and the signal partitions are paused until
    the journal takes decisions again (ticks still flow: prices stay current). Until then a
    signal of a partition sought back (fetched before the pause) is left for the re-read.
    """

    def __init__(self, service: ExecutionService, topic: str, gate: SignalGate) -> None:
        self.service = service
        self.topic = topic
        self.gate = gate
        self.paused = False
        self._waiting: list[tuple[Signal | None, int, int]] = []  # (signal or None if invalid, partition, offset)
        self._undecided: dict[int, int] = {}  # partition -> first offset to read again (kept until resumed)
        self._sought: dict[int, int] = {}  # partition -> offset sought back to during this pause

    def add(self, message: Message) -> None:
        """Take one signal message (an unsigned one is refused, an invalid one quarantined: handled, in its turn)."""
        partition = message.partition()
        if partition in self._undecided:
            return  # read again from the partition's first undecided signal
        offset = message.offset()
        signal = self.gate.admit(message.value(), message.headers(), f"{self.topic}[{partition}]@{offset}")
        self._waiting.append((signal, partition, offset))

    def decide(self) -> None:
        """Decide the waiting signals; note where the undecided ones start."""
        if not self._waiting:
            return
        waiting, self._waiting = self._waiting, []
        valid = [signal for signal, _, _ in waiting if signal is not None]
        # How far the signals were read: the fence commits it with its next confirmation once all are decided.
        consumed = {(self.topic, partition): offset + 1 for _, partition, offset in waiting}
        started = time.perf_counter()
        decided = self.service.handle_signals(valid, consumed)  # how many, from the first
        DECISION_SECONDS.observe(time.perf_counter() - started)
        for signal, partition, offset in waiting:
            decided -= signal is not None
            if decided < 0 or partition in self._undecided:
                self._undecided.setdefault(partition, offset)

    def rewind_undecided(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Seek back to the undecided signals and pause the signal partitions (the journal refuses decisions)."""
        if not self._undecided:
            return
        if not self.paused:
            consumer.pause(partitions)
            self.paused = True
            logger.critical("signals paused: the journal takes no decisions (%s)", self.service.space.problem)
        for partition, offset in self._undecided.items():
            if self._sought.get(partition) != offset:
                consumer.seek(TopicPartition(self.topic, partition, offset))
                self._sought[partition] = offset

    def resume(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Read signals again (from the first undecided one)."""
        self._undecided.clear()
        self._sought.clear()
        consumer.resume(partitions)
        self.paused = False
        logger.warning("signals resumed: the journal takes decisions again")


def _log_kafka_error(message: Message, bootstrap: Bootstrap) -> None:
    error = message.error()
    if error.code() != KafkaError._PARTITION_EOF:
        refused = denial(error, bootstrap, message.topic() or "")
        logger.error("kafka error on %s[%s]: %s", message.topic(), message.partition(), refused or error.str())


class ControlListener(threading.Thread):
    """Applies ``execution.control`` commands as they arrive, on its own consumer."""

    def __init__(
        self, settings: Settings, bootstrap: Bootstrap, service: ExecutionService, stop: threading.Event
    ) -> None:
        super().__init__(name="execution-control", daemon=True)
        self.topic = topic_name(settings, EXECUTION_CONTROL)
        self._connection = bootstrap  # not _bootstrap: threading.Thread has a method of that name
        group = f"{settings.execution.consumer_group}.control.{settings.execution.instance_id}"
        self._consumer = make_consumer(bootstrap, group, "latency")
        self._service = service
        self._stopping = stop
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self._key = control_key(settings)
        self._max_age_ms = int(settings.execution.control.max_age_s * 1000)

    def run(self) -> None:
        """Poll, apply, commit; on an unexpected error, record it and stop the process."""
        try:
            self._consumer.assign(_committed_or_beginning(self._consumer, _partitions(self._consumer, self.topic)))
            self.ready.set()
            while not self._stopping.is_set():
                message = self._consumer.poll(POLL_TIMEOUT_S)
                if message is None:
                    continue
                if message.error() is not None:
                    _log_kafka_error(message, self._connection)
                    continue
                admitted = admit_control(
                    message.value(), message.headers(), self._key, self._service.engine.clock.now_ms(), self._max_age_ms
                )
                if isinstance(admitted, str):
                    logger.critical("control command refused: %s", admitted)
                    self._service.refuse_control(admitted)
                else:
                    self._service.handle_control(admitted)
                self._consumer.commit(message=message, asynchronous=False)
        except BaseException as exc:  # the loop's outer edge: record, stop the process, never swallow
            logger.exception("control listener failed; stopping the process")
            self.failure = exc
            self._stopping.set()
        finally:
            self.ready.set()
            self._consumer.close()


def admit_control(
    value: bytes | None, headers: Sequence[tuple[str, bytes | None]] | None, key: bytes, now_ms: int, max_age_ms: int
) -> ControlCommand | str:
    """The command in a control message if it is signed with ``key`` and fresh; else why it is refused.

    Checked before the bytes are decoded: nothing an unsigned producer writes is acted on.
    """
    refused = refusal("control message", value, headers, key)
    if refused is not None or value is None:  # no value: refused as unsigned
        return refused or "unsigned control message"
    try:
        command = decode(value, ControlCommand)
    except ContractError as exc:
        return f"invalid control command: {exc.reason}"
    age_ms = now_ms - command.issued_at_ms
    if abs(age_ms) > max_age_ms:
        return (
            f"stale control command {command.command_id} ({command.command} by {command.issued_by}): "
            f"issued {age_ms} ms ago, window {max_age_ms} ms"
        )
    return command


# ---------------------------------------------------------------------------------------
# Operator side (the CLI): send a command, wait for the process's answer
# ---------------------------------------------------------------------------------------


def send_control(
    settings: Settings,
    bootstrap: Bootstrap,
    command: str,
    reason: str = "",
    symbol: str = "",
    params: dict[str, str] | None = None,
    issued_by: str = "cli",
    *,
    clock: Clock,
    producer: Producer | None = None,
) -> ControlCommand:
    """Publish one control command, stamped ``issued_at_ms`` by ``clock``, and wait until the broker has it.

    The producer is not idempotent: its first send would wait 0.5-1 s for a producer id
    (measured here), and a duplicated command is harmless anyway (``command_id``). A new one
    is made unless one is given (:func:`control_producer`): its first send also opens and
    authenticates its connections to the broker, most of a halt's time when the process is idle.
    """
    producer = producer or control_producer(bootstrap)
    message = ControlCommand(
        command_id=uuid.uuid4().hex,
        command=command,  # type: ignore[arg-type]
        issued_by=issued_by,
        issued_at_ms=clock.now_ms(),
        reason=reason,
        symbol=symbol,
        params=params or {},
    )
    value = encode(message)
    producer.produce(
        topic_name(settings, EXECUTION_CONTROL), value=value, headers=signed_headers(control_key(settings), value)
    )
    if producer.flush(10) != 0:
        raise ServiceError("the control command was not acknowledged by Kafka within 10 s")
    return message


def control_producer(bootstrap: Bootstrap) -> Producer:
    """Return a producer for control commands (one kept by an operator's tool sends without connecting first)."""
    return make_producer(bootstrap, "latency", **{"enable.idempotence": False})


def audit_tail(settings: Settings, bootstrap: Bootstrap) -> Consumer:
    """Return a consumer positioned at the end of ``orders.events`` (to watch for answers)."""
    topic = topic_name(settings, ORDERS_EVENTS)
    consumer = make_consumer(bootstrap, f"tickwave-cli-{uuid.uuid4().hex[:8]}", "latency")
    partitions = []
    for tp in _partitions(consumer, topic):
        _, high = consumer.get_watermark_offsets(tp, timeout=10)
        partitions.append(TopicPartition(topic, tp.partition, high))
    consumer.assign(partitions)
    return consumer


def await_risk_event(consumer: Consumer, accept: Callable[[RiskEvent], bool], timeout_s: float) -> RiskEvent | None:
    """Return the first risk event on the audit trail that ``accept`` likes, or None on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        message = consumer.poll(POLL_TIMEOUT_S)
        if message is None or message.error() is not None:
            continue
        try:
            event = decode_any(message.value())
        except ContractError:
            continue
        if isinstance(event, RiskEvent) and accept(event):
            return event
    return None
