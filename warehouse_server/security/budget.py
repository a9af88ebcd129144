"""The connection budget every transport shares: open connections in total and per client address.

A connection over budget makes room by closing the least recently active connection
that is not the service user's and holds no query slot, so connections that idle,
trickle, never authenticate or were refused a slot cannot keep the pipeline's writers
out. A connection is engaged (never closed to make room) only while it holds one of its
user's query slots; one that authenticated as the service user is never closed to make
room. A connection over its address's share with nothing of that address to close is
admitted on probation and kept only if it authenticates as the service user. The HTTP
interface (:mod:`warehouse_server.http.connections`) and the native TCP interface
(:mod:`warehouse_server.native.server`) count into one budget, on one event loop.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable

logger = logging.getLogger(__name__)


class Connection:
    """What the budget knows of one open connection."""

    def __init__(self, client: str, close: Callable[[], None]) -> None:
        """Track a connection from ``client``; ``close()`` ends it."""
        self.client = client
        self.close = close
        self.is_trusted = False  # it authenticated as the service user: never closed to make room
        self.is_engaged = False  # its current request holds a query slot
        self.is_on_probation = False  # admitted past its address's share: kept only as the service user's

    def authenticated(self, is_trusted: bool) -> bool:
        """Mark that this connection's current request authenticated (as the service user if ``is_trusted``).

        Returns whether the connection may go on: one admitted past its address's share
        must be the service user's.
        """
        self.is_trusted = self.is_trusted or is_trusted
        return self.is_trusted or not self.is_on_probation

    def engage(self) -> None:
        """Mark that the current request holds a query slot: not closed to make room until its response is sent."""
        self.is_engaged = True

    @property
    def is_evictable(self) -> bool:
        """Whether it may be closed to make room for a new connection."""
        return not self.is_trusted and not self.is_engaged


class ConnectionBudget:
    """Open connections, in total and per client address; room is made by closing the least active spare one."""

    def __init__(self, max_connections: int, max_per_client: int) -> None:
        """Allow ``max_connections`` at once, ``max_per_client`` of them from one address (the service user's aside)."""
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self._open: OrderedDict[Connection, None] = OrderedDict()  # least recently active first
        self.evicted = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, connection: Connection) -> bool:
        """Count ``connection`` in, closing spare connections to make room; False when there is none to close.

        Runs on the event loop, as every other call here: no lock is needed.
        """
        from_client = [other for other in self._open if other.client == connection.client and not other.is_trusted]
        # Nothing of the address to close: the connection may still be the service user's, known only
        # once its request authenticates (Connection.authenticated); the total below still holds.
        is_over_share = len(from_client) >= self.max_per_client and not self._evict(from_client)
        if len(self._open) >= self.max_connections and not self._evict(self._open):
            self.refused += 1
            return False
        connection.is_on_probation = is_over_share
        self._open[connection] = None
        return True

    def _evict(self, candidates: Iterable[Connection]) -> bool:
        victim = next((other for other in candidates if other.is_evictable), None)
        if victim is None:
            return False
        self.release(victim)
        self.evicted += 1
        logger.debug("connection from %s closed to make room (%d open)", victim.client, len(self._open))
        victim.close()
        return True

    def touch(self, connection: Connection) -> None:
        """Note activity on ``connection``: it becomes the last to be closed to make room."""
        if connection in self._open:
            self._open.move_to_end(connection)

    def release(self, connection: Connection) -> None:
        """Forget a closed connection."""
        self._open.pop(connection, None)
