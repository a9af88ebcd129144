"""Socket helpers for the tests of servers' connection bounds."""

from __future__ import annotations

import selectors
import socket
import threading


def is_closed_by_server(sock: socket.socket, within_s: float) -> bool:
    """Return whether the server closes ``sock`` within ``within_s`` (it must have sent nothing)."""
    sock.settimeout(within_s)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


class SilentHolders:
    """``count`` connections that never send a byte, each reopened as soon as the server cuts it.

    One thread holds them all (non-blocking sockets on a selector), so even hundreds of them
    take little of the interpreter from a server running in the same process.
    """

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.reopened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)
        self._thread.start()

    def _hold(self) -> None:
        with selectors.DefaultSelector() as selector:

            def open_one() -> None:
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", self.port))
                selector.register(sock, selectors.EVENT_READ)

            for _ in range(self.count):
                open_one()
            while not self._stop.is_set():
                for key, _ in selector.select(0.1):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        is_closed = sock.recv(1) == b""
                    except BlockingIOError:
                        continue
                    except OSError:
                        is_closed = True
                    if is_closed:
                        selector.unregister(sock)
                        sock.close()
                        self.reopened += 1
                        open_one()
            for key in list(selector.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
