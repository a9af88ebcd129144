"""One writer per trading account, across hosts: a Kafka transactional-id fence.

The instance lock (``app.single_instance``) keeps a second process off one state dir on one
host. A second process for the same account on another host (another state dir) would read
the same signals and send every order twice. The fence closes that:

- the process owns a transactional producer whose ``transactional.id`` names the account
  (:func:`transactional_id`); ``init_transactions()`` at start bumps the id's epoch at the
  broker's transaction coordinator, which aborts the older holder's open transaction and
  fails its next one with a fatal fenced error;
- before every broker call (after the journal's fsync), the process commits one Kafka
  transaction holding the consumed signals' offsets (:meth:`AccountFence.confirm`). A
  fenced process learns it there, before the order leaves, records a critical ``fenced``
  risk event and exits non-zero; it sends nothing more;
- the signals' offsets are committed only inside those transactions, and ``init_transactions()``
  returns only once the predecessor's last transaction is complete or aborted: a process that
  takes over resumes exactly after the signals its predecessor decided before the takeover and
  decides the others itself; a signal never yields two orders, even with the predecessor running;
- an idle process confirms once a second (``CONFIRM_EVERY_S``), so a fenced one exits within
  about a second even without signals;
- a broker that does not answer (restarting, or out of file descriptors) is waited for: the
  confirmation is retried until the broker takes it, says the process was fenced, or the
  process is told to stop. No order leaves meanwhile (each waits for its confirmation), so the
  wait keeps the guarantee; the health report names it (:meth:`AccountFence.waiting_s`);
- a transaction left open through an outage longer than ``TRANSACTION_TIMEOUT_MS`` is aborted
  by the coordinator for its age, which fences its producer exactly as a newer holder would.
  Every offset the process commits carries its own token (the offset's metadata), so it can
  tell the two apart: when the committed offsets of both its groups are still its own (or its
  predecessor's, as at its claim) after a newer holder's first confirmation would have shown,
  no other process has confirmed, and it takes the fence again; it checks once more after
  taking it, and is fenced if another process's commit shows up (see :meth:`AccountFence.confirm`).

Why a fence and not a lease: a lease is a timer, and a process paused past its lease (GC, a
stalled VM, a slow disk: this machine's stalls for tens of milliseconds now and then) still
believes it holds it. The fence is checked by the broker on the very step that precedes the
order, with no clock. Its cost is one transaction per batch of orders (measured in
``docs/deployment.md``, section "Single writer per account").
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn, Protocol, TypeVar

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from adapters.bus import Bootstrap, make_consumer, make_producer
from execution.brokers.registry import broker_kind
from tickwave.config import Settings
from tickwave.errors import ServiceError
from tickwave.topics import EXECUTION_TRANSACTIONAL_ID, SIGNALS, topic_name

logger = logging.getLogger(__name__)

CONFIRM_EVERY_S = 1.0  # an idle process confirms this often: a fenced one learns it within about a second
TRANSACTION_TIMEOUT_MS = 10_000  # a transaction left open by a killed process is aborted by the broker after this
RETRY_FOR_S = 10.0  # each transactional call is given this long; a retriable failure is tried again after it
HUNG_AFTER_S = RETRY_FOR_S + 15.0  # a librdkafka call given RETRY_FOR_S that has not returned by then never will
PROBE_S = 5.0  # a call past HUNG_AFTER_S is hung only if the broker answers a metadata request within this
WAIT_LOGGED_EVERY_S = 10.0  # a wait for the broker is logged this often
HUNG_EXIT_CODE = 1
NEWER_HOLDER_SHOWS_S = 3 * CONFIRM_EVERY_S  # a process that took the account has confirmed (committed) by then
_FENCED_CODES = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH})

Consumed = Mapping[tuple[str, int], int]  # (topic, partition) -> the next offset to read
Committed = dict[tuple[str, str, int], tuple[int, str | None]]  # (group, topic, partition) -> (offset, metadata)
_Result = TypeVar("_Result")


class _HangGuard:
    """One daemon thread that ends the process when an armed block has not returned by its deadline.

    Armed around each transactional call of the decision path: a thread started per call
    (``threading.Timer``) cost ~130 us a call, two calls per batch of orders; arming this one
    costs a lock and a notify.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        # (deadline, after_s, what, whether the broker answers: None to exit at the deadline regardless)
        self._armed: tuple[float, float, str, Callable[[], bool] | None] | None = None
        self._thread: threading.Thread | None = None

    @contextmanager
    def armed(self, after_s: float, what: str, answers: Callable[[], bool] | None = None) -> Iterator[None]:
        """Exit the process if the block has not returned after ``after_s`` (see :func:`exit_if_hung`)."""
        with self._changed:
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="fence-hang-guard", daemon=True)
                self._thread.start()
            self._armed = (time.monotonic() + after_s, after_s, what, answers)
            self._changed.notify()
        try:
            yield
        finally:
            with self._changed:
                self._armed = None
                self._changed.notify()

    def _watch(self) -> None:
        with self._changed:
            while True:
                armed = self._armed
                if armed is None:
                    self._changed.wait()
                    continue
                remaining = armed[0] - time.monotonic()
                if remaining > 0:
                    self._changed.wait(remaining)
                    continue
                _, after_s, what, answers = armed
                if answers is None:
                    _exit_hung(after_s, what)
                self._changed.release()  # the broker is asked outside the lock: the block may return meanwhile
                try:
                    is_up = answers()
                finally:
                    self._changed.acquire()
                if self._armed is not armed:
                    continue
                if is_up:
                    _exit_hung(after_s, what)
                # The broker does not answer: the call waits for it, as every other call does; it is hung
                # only if it has not returned ``after_s`` after the broker answers again.
                logger.warning("%s is waiting for the broker, which does not answer", what)
                self._armed = (time.monotonic() + after_s, after_s, what, answers)


_GUARD = _HangGuard()


def exit_if_hung(
    after_s: float, what: str, answers: Callable[[], bool] | None = None
) -> contextlib.AbstractContextManager[None]:
    """Exit the process (code ``HUNG_EXIT_CODE``) when the block has not returned after ``after_s``.

    librdkafka's ``send_offsets_to_transaction()`` does not honour its timeout when the group
    coordinator it last knew is gone (an open upstream bug): on the three-broker cluster, a node
    killed at the wrong moment left the hot loop waiting in it for good, its health degraded and
    nothing restarted. A C call cannot be interrupted, so the process exits, as when a confirmation
    fails, and its supervisor restarts it. No order is sent without a confirmation: none is lost
    or doubled by the exit. One block at a time: a process holds one account's fence, whose
    calls run under its lock. With ``answers`` (whether the broker answers a metadata request),
    a block past its deadline while the broker is down is waiting for it, not hung: the
    deadline starts again, so an outage of any length is waited out at the same address.
    """
    return _GUARD.armed(after_s, what, answers)


def _exit_hung(after_s: float, what: str) -> NoReturn:
    logger.critical(
        "%s has not returned within %.0f s (the Kafka client is stuck); exiting for a restart", what, after_s
    )
    logging.shutdown()
    os._exit(HUNG_EXIT_CODE)


def _bounded(what: str, answers: Callable[[], bool], call: Callable[..., _Result], *arguments: Any) -> _Result:
    """Run a transactional call given ``RETRY_FOR_S``, exiting the process if it hangs past ``HUNG_AFTER_S``.

    ``answers`` tells a hung call from one waiting out a broker outage (see :func:`exit_if_hung`).
    """
    with exit_if_hung(HUNG_AFTER_S, what, answers):
        return call(*arguments)


class Fenced(ServiceError):
    """Another process took this account's transactional id: stop deciding and exit."""


class Fence(Protocol):
    """What the service checks before every broker call."""

    def stage(self, consumed: Consumed) -> None:
        """Remember how far the signals were read; committed with the next confirmation."""
        ...

    def confirm(self) -> None:
        """Prove this process still owns the account (raise :class:`Fenced` if not)."""
        ...

    def is_due(self) -> bool:
        """Return True when an idle process should confirm again."""
        ...

    def waiting_s(self) -> float | None:
        """Return how long a confirmation has been waiting for the broker, or None."""
        ...


class Unfenced:
    """No fence: tests and benchmarks that build the service in-process, without a Kafka broker."""

    def stage(self, consumed: Consumed) -> None:
        """Nothing to remember."""

    def confirm(self) -> None:
        """Nothing to prove."""

    def is_due(self) -> bool:
        """Never due."""
        return False

    def waiting_s(self) -> float | None:
        """Never waiting."""
        return None


def fence_account(settings: Settings) -> str:
    """The account the fence names: the broker's own (MT5: server and login, when configured), else ``instance_id``.

    Two processes given different instance ids for one broker account are still one account.
    """
    account = broker_kind(settings).account(settings)
    return settings.execution.instance_id if account is None else account


def transactional_id(settings: Settings) -> str:
    """``<topic prefix>tickwave-execution-<account>``: environments sharing a cluster never fence each other."""
    return f"{settings.kafka.topic_prefix}{EXECUTION_TRANSACTIONAL_ID}{fence_account(settings)}"


class AccountFence:
    """The transactional producer that fences older holders and confirms ownership before each order."""

    def __init__(self, settings: Settings, bootstrap: Bootstrap, stopping: threading.Event | None = None) -> None:
        """Fence the account of ``settings``; a wait for the broker ends once ``stopping`` is set."""
        self.transactional_id = transactional_id(settings)
        self._bootstrap = bootstrap
        self._stopping = stopping or threading.Event()
        self._waiting_since: float | None = None
        # Where the open transaction is: a retry resumes it rather than beginning another.
        self._is_sent = self._needs_abort = False
        self._begun_at: float | None = None  # when the open transaction began (the coordinator times it); None: none
        self._producer = self._new_producer()
        # Every offset this process commits carries it: a commit by another process is told from its own.
        self._token = secrets.token_hex(8)
        self._at_claim: Committed | None = None  # the committed offsets when the account was taken
        group = settings.execution.consumer_group
        self._groups = (group, f"{group}.fence")
        # Group metadata only (no subscription, no membership): offsets are committed like a manual commit.
        self._signals = make_consumer(bootstrap, group).consumer_group_metadata()
        # An idle confirmation commits a count to the fence's own group (the signals' group is not touched).
        self._beats = make_consumer(bootstrap, f"{group}.fence").consumer_group_metadata()
        self._beat_at = TopicPartition(topic_name(settings, SIGNALS), 0)
        self._confirmations = 0
        self._staged: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._confirmed_at = time.monotonic()

    def _new_producer(self) -> Producer:
        """A transactional producer for the account's id (a fenced one is never used again)."""
        return make_producer(
            self._bootstrap,
            "latency",
            **{
                "transactional.id": self.transactional_id,
                "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
                "retry.backoff.ms": 10,
            },
        )

    def claim(self, timeout_s: float = 30.0) -> None:
        """Take the account: fence any older holder (its open transaction is aborted).

        Raises:
            ServiceError: when the transaction coordinator does not answer in time.
        """
        started = time.monotonic()
        try:
            self._producer.init_transactions(timeout_s)
        except KafkaException as exc:
            raise ServiceError(f"could not take the fence {self.transactional_id}: {exc.args[0].str()}") from exc
        try:
            self._at_claim = self._read_committed()
        except KafkaException as exc:  # then a transaction aborted for its age ends the process, as a fence does
            logger.warning("fence %s: the committed offsets could not be read: %s", self.transactional_id, exc)
        self._confirmed_at = time.monotonic()
        logger.info(
            "fence %s taken in %.0f ms: any older process for this account is fenced",
            self.transactional_id,
            (self._confirmed_at - started) * 1000,
        )

    def stage(self, consumed: Consumed) -> None:
        """Remember how far the signals were read; committed with the next confirmation."""
        with self._lock:
            self._staged.update(consumed)

    def is_due(self) -> bool:
        """Return True when an idle process should confirm again."""
        return time.monotonic() - self._confirmed_at >= CONFIRM_EVERY_S

    def waiting_s(self) -> float | None:
        """Return how long the current confirmation has been waiting for the broker, or None."""
        since = self._waiting_since
        return None if since is None else time.monotonic() - since

    def confirm(self) -> None:
        """Commit one transaction: the staged offsets, or a beat when none are staged.

        A broker that does not answer is waited for, as long as it takes: nothing is sent meanwhile.

        Raises:
            Fenced: another process took the account's transactional id.
            ServiceError: a fatal or non-retriable error, or the process was told to stop while waiting.
        """
        with self._lock:
            staged = dict(self._staged)
            started = logged = time.monotonic()
            while True:
                try:
                    self._commit(staged)
                    break
                except KafkaException as exc:
                    error = exc.args[0]
                    if error.code() in _FENCED_CODES:
                        if self._outlived_its_timeout() and self._take_again():
                            continue
                        raise Fenced(
                            f"another execution process took the account's fence {self.transactional_id}"
                            f" ({error.str()})"
                        ) from exc
                    if error.fatal() or not (error.retriable() or error.txn_requires_abort()):
                        raise ServiceError(f"fence {self.transactional_id}: {error.str()}") from exc
                    if self._stopping.is_set():
                        raise ServiceError(
                            f"fence {self.transactional_id}: stopping while the broker does not answer ({error.str()})"
                        ) from exc
                    self._needs_abort = self._needs_abort or error.txn_requires_abort()
                    self._waiting_since = started
                    if time.monotonic() >= logged:
                        logger.warning(
                            "fence %s: %s; waiting for the broker (%.0f s so far), no order is sent meanwhile",
                            self.transactional_id,
                            error.str(),
                            time.monotonic() - started,
                        )
                        logged = time.monotonic() + WAIT_LOGGED_EVERY_S
                    self._stopping.wait(min(1.0, 0.1 * 2 ** min(int(time.monotonic() - started), 4)))
            if self._waiting_since is not None:
                logger.warning(
                    "fence %s: the broker answers again after %.0f s", self.transactional_id, time.monotonic() - started
                )
                self._waiting_since = None
            for key, offset in staged.items():
                if self._staged.get(key) == offset:
                    del self._staged[key]
            self._confirmed_at = time.monotonic()

    def _commit(self, staged: Mapping[tuple[str, int], int]) -> None:
        if self._needs_abort:
            _bounded("abort_transaction", self._answers, self._producer.abort_transaction, RETRY_FOR_S)
            self._begun_at, self._is_sent, self._needs_abort = None, False, False
        if self._begun_at is None:
            self._producer.begin_transaction()
            self._begun_at = time.monotonic()
        if not self._is_sent:
            self._send_offsets(staged)
            self._is_sent = True
        _bounded("commit_transaction", self._answers, self._producer.commit_transaction, RETRY_FOR_S)
        self._begun_at, self._is_sent = None, False

    def _outlived_its_timeout(self) -> bool:
        """Whether the coordinator may have aborted the open transaction for its age (not only a newer holder)."""
        begun = self._begun_at
        return begun is not None and time.monotonic() - begun >= TRANSACTION_TIMEOUT_MS / 1000

    def _take_again(self) -> bool:
        """Take the fence again after the coordinator aborted this process's transaction for its age.

        Only when no other process has committed since the claim: waits ``NEWER_HOLDER_SHOWS_S``
        (a newer holder confirms within ``CONFIRM_EVERY_S`` of taking the account), compares both
        groups' committed offsets with this process's own and those at its claim, takes the id
        (which aborts any transaction another process has open), then compares again: a commit by
        another process just before the take means it holds the account, and this one is fenced.
        A committed offset that cannot be read counts as another's. Returns False when fenced.
        """
        if self._stopping.wait(NEWER_HOLDER_SHOWS_S):
            raise ServiceError(f"fence {self.transactional_id}: stopping while its transaction was aborted")
        if not self._only_own_commits():
            return False
        self._producer = self._new_producer()
        try:
            _bounded("init_transactions", self._answers, self._producer.init_transactions, RETRY_FOR_S)
        except KafkaException as exc:
            raise ServiceError(f"could not take the fence {self.transactional_id} again: {exc.args[0].str()}") from exc
        self._begun_at, self._is_sent, self._needs_abort = None, False, False
        if not self._only_own_commits():
            return False
        logger.warning(
            "fence %s: the broker aborted the transaction left open through its outage; no other process has"
            " confirmed since, so the fence is taken again",
            self.transactional_id,
        )
        return True

    def _only_own_commits(self) -> bool:
        """Whether every committed offset of both groups is this process's or was there at its claim."""
        at_claim = self._at_claim
        if at_claim is None:
            return False
        try:
            committed = self._read_committed()
        except KafkaException:
            return False
        return all(mark[1] == self._token or at_claim.get(key) == mark for key, mark in committed.items())

    def _read_committed(self) -> Committed:
        """Return the committed offsets (with their metadata) of the signals' group and the fence's.

        Read stable only: an offset in another process's open transaction keeps the read waiting.
        A coordinator that moves or loads (a broker just started) is asked again for ``RETRY_FOR_S``.

        Raises:
            KafkaException: when the broker does not answer in time.
        """
        deadline = time.monotonic() + RETRY_FOR_S
        while True:
            try:
                return {
                    key: mark for group in self._groups for key, mark in self._committed_of(group, deadline).items()
                }
            except KafkaException:
                if time.monotonic() >= deadline:
                    raise
                self._stopping.wait(0.2)

    def _committed_of(self, group: str, deadline: float) -> Committed:
        """Return ``group``'s committed offsets of the signals' topic, each with its metadata."""
        topic = self._beat_at.topic
        consumer = make_consumer(self._bootstrap, group, "latency", **{"isolation.level": "read_committed"})
        try:
            partitions = consumer.list_topics(topic, timeout=PROBE_S).topics[topic].partitions
            asked = [TopicPartition(topic, partition) for partition in partitions]
            committed = consumer.committed(asked, timeout=max(0.1, deadline - time.monotonic()))
        finally:
            consumer.close()
        return {(group, o.topic, o.partition): (o.offset, o.metadata) for o in committed if o.offset >= 0}

    def _answers(self) -> bool:
        """Return whether the broker answers a metadata request within ``PROBE_S``."""
        try:
            self._producer.list_topics(timeout=PROBE_S)
        except KafkaException:
            return False
        return True

    def _send_offsets(self, staged: Mapping[tuple[str, int], int]) -> None:
        if staged:
            offsets = [
                TopicPartition(topic, partition, offset, metadata=self._token)
                for (topic, partition), offset in staged.items()
            ]
            _bounded(
                "send_offsets_to_transaction",
                self._answers,
                self._producer.send_offsets_to_transaction,
                offsets,
                self._signals,
                RETRY_FOR_S,
            )
        else:
            self._confirmations += 1
            beat = TopicPartition(
                self._beat_at.topic, self._beat_at.partition, self._confirmations, metadata=self._token
            )
            _bounded(
                "send_offsets_to_transaction",
                self._answers,
                self._producer.send_offsets_to_transaction,
                [beat],
                self._beats,
                RETRY_FOR_S,
            )
