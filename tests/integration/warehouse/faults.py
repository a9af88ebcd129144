"""A loopback TCP proxy that injects real network faults between a client and the warehouse.

Modes: ``pass`` forwards everything; ``drop_next_response`` forwards the next request to
the server but closes the client's connection instead of returning the answer (the
server committed, the client never hears so: a lost acknowledgement); ``refuse``
closes every new and existing connection at once (the warehouse looks down).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading

from adapters.endpoints import LOOPBACK


class FaultProxy:
    """Forwards 127.0.0.1:<port> to the warehouse, with switchable faults."""

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        self.mode = "pass"
        self.dropped = 0
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def set_mode(self, mode: str) -> None:
        with self._lock:
            self.mode = mode
            if mode == "refuse":
                for sock in list(self._sockets):
                    with contextlib.suppress(OSError):
                        sock.close()
                self._sockets.clear()

    def close(self) -> None:
        self._closed.set()
        self.set_mode("refuse")
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == "refuse":
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while True:
                readable, _, _ = select.select([client, upstream], [], [], 1.0)
                if self.mode == "refuse":
                    return
                for source in readable:
                    data = source.recv(1 << 16)
                    if not data:
                        return
                    if source is upstream and self.mode == "drop_next_response":
                        with self._lock:
                            self.mode = "pass"
                            self.dropped += 1
                        return  # the server answered; the client never sees it
                    (upstream if source is client else client).sendall(data)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.close()
            with self._lock:
                self._sockets.discard(client)
                self._sockets.discard(upstream)
