"""HTTP sessions (``session_id``): one chdb handle each, an idle timeout and a cap.

As in ClickHouse, a session keeps its temporary tables and ``SET``/``USE`` across
requests, belongs to the user who opened it, serves one request at a time (a second
concurrent request gets SESSION_IS_LOCKED) and expires after ``session_timeout``
seconds without use (default 60, at most the configured maximum). Open sessions are
counted and capped per user: at a user's cap, that user's least recently used idle
session is closed to make room (its next request starts a fresh session, as after an
expiry); if every one of the user's sessions is busy, the request is refused with
TOO_MANY_SIMULTANEOUS_QUERIES. One user never closes another's sessions, so the analyst
cannot evict the service user's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from warehouse_server.protocol import (
    INVALID_SESSION_TIMEOUT,
    SESSION_IS_LOCKED,
    SESSION_NOT_FOUND,
    TOO_MANY_SIMULTANEOUS_QUERIES,
    QueryError,
)
from warehouse_server.query.engine import Handle

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Overlay:
    """Per-query database and settings left applied on a session's handle, and how to undo them.

    Clients repeat the same per-query settings on every request (clickhouse-connect sends
    ``date_time_input_format`` and more each time); undoing and redoing them around every
    query would cost several engine round trips, so they stay applied until a request
    asks for something else, or runs ``SET``/``USE``, and are undone then.
    """

    database: str | None
    settings: dict[str, str]
    changed: dict[str, str]
    defaults: list[str]
    previous_database: str | None


@dataclass
class Session:
    """One open session: its handle, owner, timeout and whether a request is using it."""

    key: tuple[str, str]
    handle: Handle
    timeout_s: float
    last_used: float
    is_busy: bool = False
    overlay: Overlay | None = None
    is_broken: bool = False  # per-query state could not be undone: close instead of reusing

    @property
    def session_id(self) -> str:
        """The client's session id."""
        return self.key[1]


def parse_session_timeout(value: str | None, default_s: float, max_s: float) -> float:
    """Return the timeout a request asks for, validated as ClickHouse does.

    Raises:
        QueryError: INVALID_SESSION_TIMEOUT for a non-integer or one above the maximum.
    """
    if value is None:
        return default_s
    if not value.isdigit():
        raise QueryError(INVALID_SESSION_TIMEOUT, f"Invalid session timeout: '{value}'")
    if int(value) > max_s:
        raise QueryError(
            INVALID_SESSION_TIMEOUT, f"Session timeout '{value}' is larger than max_session_timeout: {max_s:g}"
        )
    return float(value)


class SessionStore:
    """The open sessions of one server; thread-safe."""

    def __init__(
        self,
        open_handle: Callable[[int], Handle],
        max_sessions: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Keep at most ``max_sessions`` sessions per user, each opened with ``open_handle(readonly)``."""
        self._open_handle = open_handle
        self._max_sessions = max_sessions
        self._clock = clock
        self._sessions: dict[tuple[str, str], Session] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def acquire(self, user: str, session_id: str, readonly: int, timeout_s: float, must_exist: bool) -> Session:
        """Return the session, marked busy, creating it unless ``must_exist`` (``session_check=1``).

        Raises:
            QueryError: SESSION_NOT_FOUND, SESSION_IS_LOCKED or TOO_MANY_SIMULTANEOUS_QUERIES.
        """
        key = (user, session_id)
        to_close: list[Session] = []
        try:
            with self._lock:
                to_close.extend(self._expire_locked())
                session = self._sessions.get(key)
                if session is None:
                    if must_exist:
                        raise QueryError(SESSION_NOT_FOUND, f"Session {session_id} not found")
                    to_close.extend(self._make_room_locked(user))
                    session = Session(key, self._open_handle(readonly), timeout_s, self._clock())
                    self._sessions[key] = session
                if session.is_busy:
                    raise QueryError(SESSION_IS_LOCKED, f"Session {session_id} is locked by a concurrent client")
                session.is_busy = True
                session.timeout_s = timeout_s
                return session
        finally:
            for stale in to_close:
                stale.handle.close()

    def release(self, session: Session, close: bool) -> None:
        """Mark ``session`` idle again, or close it (``close_session=1``)."""
        close = close or session.is_broken
        with self._lock:
            session.is_busy = False
            session.last_used = self._clock()
            if close:
                self._sessions.pop(session.key, None)
        if close:
            session.handle.close()

    def expire(self) -> int:
        """Close idle sessions past their timeout; return how many were closed."""
        with self._lock:
            expired = self._expire_locked()
        for session in expired:
            session.handle.close()
        return len(expired)

    def close_all(self) -> None:
        """Close every session (at shutdown, after in-flight requests finished)."""
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.handle.close()

    def _expire_locked(self) -> list[Session]:
        now = self._clock()
        expired = [
            session
            for session in self._sessions.values()
            if not session.is_busy and now - session.last_used > session.timeout_s
        ]
        for session in expired:
            del self._sessions[session.key]
            logger.debug("session=%s expired after %.0f s idle", session.session_id, now - session.last_used)
        return expired

    def count(self, user: str) -> int:
        """Return how many sessions ``user`` has open."""
        with self._lock:
            return sum(1 for key in self._sessions if key[0] == user)

    def _make_room_locked(self, user: str) -> list[Session]:
        own = [session for key, session in self._sessions.items() if key[0] == user]
        if len(own) < self._max_sessions:
            return []
        idle = [session for session in own if not session.is_busy]
        if not idle:
            raise QueryError(
                TOO_MANY_SIMULTANEOUS_QUERIES,
                f"Too many open sessions for user {user} ({self._max_sessions}), all busy; "
                f"retry later or close sessions",
            )
        oldest = min(idle, key=lambda session: session.last_used)
        del self._sessions[oldest.key]
        logger.warning(
            "session=%s of user=%s closed to make room (cap %d sessions per user)",
            oldest.session_id,
            user,
            self._max_sessions,
        )
        return [oldest]


class ConnectionSession:
    """The session of one native connection: it lives exactly as long as the connection.

    As in ClickHouse, a native connection's ``SET``, ``USE`` and temporary tables carry to its
    next query. It is not kept in the :class:`SessionStore`: it has no id a client could name,
    belongs to its connection alone, and is bounded by the connection budget (one per
    connection), not by ``max_sessions``, so a pool of writer connections is never refused for
    holding sessions. Its engine handle opens only at the first statement that leaves state on
    it (:func:`warehouse_server.query.routing.leaves_session_state`); until then each query runs
    on a fresh handle, as an HTTP request without ``session_id``. The handle closes with the
    connection, or when the query using it is released if the connection ended meanwhile.
    """

    def __init__(self, open_handle: Callable[[], Handle], name: str) -> None:
        """Open the handle with ``open_handle()`` when first needed; ``name`` names it in the log."""
        self._open_handle = open_handle
        self._name = name
        self._session: Session | None = None
        self._is_closed = False
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        """Whether the session holds an engine handle."""
        return self._session is not None

    def take(self, opens: bool) -> Session | None:
        """Return the session, marked busy (opening its handle if ``opens``), or None to run without one.

        Raises:
            QueryError: SESSION_NOT_FOUND once the connection has ended, SESSION_IS_LOCKED while the
                connection's previous query still holds it.
        """
        with self._lock:
            if self._is_closed:
                raise QueryError(SESSION_NOT_FOUND, f"Session of {self._name} is closed")
            if self._session is None:
                if not opens:
                    return None
                self._session = Session(("", self._name), self._open_handle(), float("inf"), 0.0)
            session = self._session
            if session.is_busy:
                raise QueryError(SESSION_IS_LOCKED, f"Session of {self._name} is locked by its previous query")
            session.is_busy = True
            return session

    def give_back(self, session: Session) -> None:
        """Mark ``session`` idle again; close its handle if it broke or the connection has ended."""
        with self._lock:
            session.is_busy = False
            is_closing = self._is_closed or session.is_broken
            if is_closing:
                self._session = None
        if is_closing:
            session.handle.close()

    def close(self) -> None:
        """End the session with its connection: its handle closes now, or when its query is given back."""
        with self._lock:
            self._is_closed = True
            session = self._session
            if session is None or session.is_busy:
                return
            self._session = None
        session.handle.close()
