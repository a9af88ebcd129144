"""Limits on read-only users, enforced by the engine and the HTTP service.

- Query limits are ClickHouse settings baked into the analyst's handle
  (``max_execution_time``, ``max_memory_usage``, ``max_result_rows``,
  ``max_result_bytes``, overflow mode ``throw``). The handle is ``readonly=1``, so no query
  can change them: the engine itself refuses a ``SETTINGS`` clause or ``SET``.
- A URL parameter becomes a setting of an analyst's query only from an allow-list: the
  output-shaping settings of :data:`HARMLESS_SETTINGS`, and the limits above when they
  tighten them (a value of 0 means "unlimited" to ClickHouse, so it is refused too). The
  value must be a plain token (:mod:`warehouse_server.query.engine` checks it again). The row
  cap ``limit`` (Grafana's ClickHouse plugin sends it with every query) is allowed from 0
  (no extra cap) to ``max_result_rows``, which applies in any case.
- :class:`ConcurrencyLimit`: queries one read-only user runs at once.
- :class:`QueryIds`: which user each recent ``query_id`` belongs to; a read-only user may
  not take one another user has used, so no analyst's request shares an id with the
  pipeline's in ``query_log``.
- :class:`LoginGuard`: failed logins per user, from every address together, in a sliding
  window; at the limit, further attempts of that user are refused without checking the
  password until the oldest failure leaves the window. Counting per user, not per
  (user, address), is what makes it a lock-out on loopback, where a local process picks
  its source address among 127.0.0.0/8 (500 guesses from 50 addresses drew none when the
  key held the address). Users named ``never_locked`` (the read-write service user, whose
  generated password of 192 random bits no online guessing exhausts) are never locked
  out, so no local process can lock the pipeline's writes out; their failures are still
  counted (a good login does not forget them) and logged.
  A user at the limit is backed off: every refused or failed login of that user is
  answered ``answer_delay_s`` late (:meth:`LoginGuard.delay_s`; the wait is a timer on the
  event loop, no CPU), while a locked-out user's attempt is refused before its password is
  looked at. A guess flood then costs the server a timer per guess rather than a request
  per few hundred microseconds, and a guesser that waits for its answers is slowed to one
  guess per delay per connection (connections are bounded by the connection budget). The
  log keeps the first ``max_failures`` failures of a window, then every doubling, and a
  lock-out once: a flood does not become a flood of log lines.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from tickwave.config import ClickHouseSettings
from warehouse_server.protocol import (
    AUTHENTICATION_FAILED,
    QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING,
    READONLY,
    TOO_MANY_SIMULTANEOUS_QUERIES,
    QueryError,
)

logger = logging.getLogger(__name__)

HARMLESS_SETTINGS = frozenset(
    {
        "output_format_json_quote_64bit_integers",
        "output_format_json_quote_64bit_floats",
        "output_format_json_quote_denormals",
        "output_format_json_quote_decimals",
        "output_format_json_named_tuples_as_objects",
        "output_format_decimal_trailing_zeros",
        "output_format_arrow_string_as_string",
        "date_time_output_format",
        "output_format_csv_crlf_end_of_line",
        "format_csv_delimiter",
        "output_format_pretty_max_rows",
        "output_format_write_statistics",
        "session_timezone",
        "extremes",
        "totals_mode",
        # The method of a compress=1 response's frames (clickhouse-go sends them with LZ4 and ZSTD).
        "network_compression_method",
        "network_zstd_compression_level",
    }
)
# Grafana's ClickHouse plugin sends its row limit as the `limit` setting with every query.
ROW_LIMIT_SETTING = "limit"
_TOKEN = re.compile(r"[A-Za-z0-9_.\-/]{1,128}")
MAX_TRACKED_LOGIN_KEYS = 10_000
MAX_TRACKED_QUERY_IDS = 65_536  # ~10 MiB; the service user's inserts of hours


@dataclass(frozen=True)
class AnalystLimits:
    """What one analyst query may use, and how many may run at once."""

    max_execution_time_s: int
    max_memory_bytes: int
    max_result_rows: int
    max_result_bytes: int
    max_concurrent_queries: int

    @classmethod
    def from_settings(cls, clickhouse: ClickHouseSettings) -> AnalystLimits:
        """Read the limits from the ``[clickhouse]`` settings."""
        return cls(
            max_execution_time_s=clickhouse.analyst_max_execution_time_s,
            max_memory_bytes=clickhouse.analyst_max_memory_mb << 20,
            max_result_rows=clickhouse.analyst_max_result_rows,
            max_result_bytes=clickhouse.analyst_max_result_mb << 20,
            max_concurrent_queries=clickhouse.analyst_max_concurrent_queries,
        )

    def handle_settings(self) -> dict[str, str]:
        """The limits as ClickHouse settings of a handle."""
        return {
            "max_execution_time": str(self.max_execution_time_s),
            "max_memory_usage": str(self.max_memory_bytes),
            "max_result_rows": str(self.max_result_rows),
            "max_result_bytes": str(self.max_result_bytes),
            "result_overflow_mode": "throw",
            "timeout_overflow_mode": "throw",
        }

    def for_level(self, readonly: int) -> dict[str, str] | None:
        """The handle settings for a handle opened at ``readonly`` (the limits for level 1, else none)."""
        return self.handle_settings() if readonly == 1 else None


def _cannot_modify(name: str, why: str) -> QueryError:
    return QueryError(READONLY, f"Cannot modify '{name}' setting in readonly mode: {why}")


def _row_limit(value: str, limits: AnalystLimits) -> str:
    # `limit` caps the rows a query returns; 0 adds no cap, max_result_rows still applies either way.
    if not value.isdigit() or int(value) > limits.max_result_rows:
        raise _cannot_modify(
            ROW_LIMIT_SETTING, f"a row limit from 0 to the read-only user's max_result_rows ({limits.max_result_rows})"
        )
    return value


def analyst_handle_settings(requested: Mapping[str, str], limits: AnalystLimits) -> dict[str, str]:
    """Return the handle settings of an analyst query: the limits, tightened or shaped by ``requested``.

    Raises:
        QueryError: READONLY for a setting off the allow-list, a looser limit or an odd value.
    """
    settings = limits.handle_settings()
    for name, value in requested.items():
        if not _TOKEN.fullmatch(value):
            raise _cannot_modify(name, "the value must be a plain number or word")
        if name in HARMLESS_SETTINGS:
            settings[name] = value
            continue
        if name == ROW_LIMIT_SETTING:
            settings[name] = _row_limit(value, limits)
            continue
        if name not in settings or name.endswith("_overflow_mode"):
            raise _cannot_modify(name, "not on the read-only user's allow-list")
        if not value.isdigit() or not 0 < int(value) <= int(settings[name]):
            raise _cannot_modify(name, f"the read-only user's limit is {settings[name]} (a tighter value is allowed)")
        settings[name] = value
    return settings


class ConcurrencyLimit:
    """At most ``limit`` queries at once per user (ClickHouse's ``max_concurrent_queries_for_user``)."""

    def __init__(self, limit: int) -> None:
        """Allow ``limit`` simultaneous queries per user."""
        self.limit = limit
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, user: str) -> Callable[[], None]:
        """Count a query of ``user``; return the release (idempotent).

        Raises:
            QueryError: TOO_MANY_SIMULTANEOUS_QUERIES at the limit.
        """
        with self._lock:
            running = self._running.get(user, 0)
            if running >= self.limit:
                raise QueryError(
                    TOO_MANY_SIMULTANEOUS_QUERIES,
                    f"Too many simultaneous queries for user {user}. Current: {running}, maximum: {self.limit}",
                )
            self._running[user] = running + 1
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                remaining = self._running[user] - 1
                if remaining:
                    self._running[user] = remaining
                else:
                    del self._running[user]

        return release

    def in_use(self) -> dict[str, int]:
        """Return the slots each user holds now (the metrics)."""
        with self._lock:
            return dict(self._running)

    @contextmanager
    def held(self, user: str) -> Iterator[None]:
        """Hold one of ``user``'s slots for the block."""
        release = self.acquire(user)
        try:
            yield
        finally:
            release()


class QueryIds:
    """The user of each of the most recent ``capacity`` query ids; a read-only user may not take another's.

    A read-write user's use of an id makes it that user's (the pipeline is never refused); a
    read-only user may reuse only ids that are its own or new. Ids older than the most recent
    ``capacity`` (or from before the server started) are forgotten.
    """

    def __init__(self, capacity: int = MAX_TRACKED_QUERY_IDS) -> None:
        """Remember the owners of the ``capacity`` most recently used ids."""
        self.capacity = capacity
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, query_id: str, user: str, is_read_only: bool) -> None:
        """Record that ``user`` uses ``query_id`` (no id: nothing to record).

        Raises:
            QueryError: QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING when a read-only user names another user's id.
        """
        if not query_id:
            return
        with self._lock:
            owner = self._owners.get(query_id)
            if owner is not None and owner != user and is_read_only:
                refused = True
            else:
                refused = False
                self._owners[query_id] = user
                self._owners.move_to_end(query_id)
                if len(self._owners) > self.capacity:
                    self._owners.popitem(last=False)
        if refused:
            raise QueryError(
                QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING,
                f"Query with id = {query_id} belongs to another user; choose another query_id",
            )


class LoginGuard:
    """Counts failed logins per user (from any address) and locks the user out at the limit."""

    def __init__(
        self,
        max_failures: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        never_locked: Collection[str] = (),
        answer_delay_s: float = 0.0,
    ) -> None:
        """Allow ``max_failures`` failures per user within ``window_s`` seconds; never lock ``never_locked`` out.

        Past the limit, a refused or failed login of the user is answered ``answer_delay_s`` late.
        """
        self.max_failures = max_failures
        self.window_s = window_s
        self.never_locked = frozenset(never_locked)
        self.answer_delay_s = answer_delay_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lockout_logged: dict[str, float] = {}  # user: when its current lock-out was logged
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and now - failures[0] >= self.window_s:
            failures.popleft()
        return failures

    def check(self, user: str, address: str) -> None:
        """Refuse a login attempt of ``user`` (from ``address``, which is only logged) while it is locked out.

        Raises:
            QueryError: AUTHENTICATION_FAILED saying when to try again.
        """
        if user in self.never_locked:
            return
        now = self._clock()
        with self._lock:
            failures = self._recent(user, now)
            if len(failures) < self.max_failures:
                return
            wait_s = max(1, math.ceil(self.window_s - (now - failures[0])))
            logged_at = self._lockout_logged.get(user)
            is_news = logged_at is None or now - logged_at >= self.window_s
            if is_news:
                self._lockout_logged[user] = now
        log = logger.warning if is_news else logger.debug
        log("login refused: user=%s is locked out for %d s more (address=%s)", user, wait_s, address)
        raise QueryError(
            AUTHENTICATION_FAILED,
            f"{user}: Authentication failed: too many failed login attempts for this user "
            f"({self.max_failures} in {self.window_s:g} s); try again in {wait_s} s",
        )

    def failed(self, user: str, address: str) -> None:
        """Record a failed login (and log it)."""
        now = self._clock()
        with self._lock:
            if len(self._failures) >= MAX_TRACKED_LOGIN_KEYS:
                self._failures = {key: f for key, f in self._failures.items() if self._recent(key, now)}
            failures = self._recent(user, now)
            failures.append(now)
            self._failures[user] = failures
            count = len(failures)
        # The first failures of a window, then every doubling: a flood leaves a trail, not a flood of lines.
        is_news = count <= self.max_failures or count & (count - 1) == 0
        log = logger.warning if is_news else logger.debug
        log("failed login: user=%s address=%s (%d in the last %g s)", user, address, count, self.window_s)

    def delay_s(self, user: str) -> float:
        """Return how late a refused or failed login of ``user`` is answered: the delay once at the limit, else 0."""
        now = self._clock()
        with self._lock:
            is_backed_off = len(self._recent(user, now)) >= self.max_failures
        return self.answer_delay_s if is_backed_off else 0.0

    def succeeded(self, user: str, address: str) -> None:
        """Forget the user's failures after a good login (from ``address``); a never-locked user's are kept.

        The service user logs in with every insert: forgetting its failures then would give a
        guesser a fresh allowance of undelayed guesses after each of the pipeline's writes.
        """
        if user in self.never_locked:
            return
        with self._lock:
            self._failures.pop(user, None)
            self._lockout_logged.pop(user, None)
