"""Prometheus metrics: each long-running process serves ``/metrics`` on 127.0.0.1 (prometheus-client).

A process calls :func:`serve_metrics` once it is configured; its component's metrics
module (``streams.metrics``, ``execution.metrics``, ``warehouse_server.metrics``...)
defines what it exports. Ports: ``metrics.<service>_port``, or 0 for a free port chosen
once and kept in ``run/<name>.metrics_port`` until ``tickwave down``, so a service the
supervisor restarts comes back where Prometheus looks for it (and shows ``up == 0``
meanwhile). Each port is also a Prometheus file-discovery target,
``prometheus/targets/<name>.json`` under the state dir, which the scrape configuration
``tickwave up`` writes (``prometheus/prometheus.yml``) reads; a finite run (``tickwave
ingest``) removes its target when it ends.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import selectors
import shutil
import socket
import sys
import threading
import time
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any, Final
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from adapters.endpoints import LOOPBACK, free_port
from tickwave.config import Settings

if TYPE_CHECKING:  # a type only: the command line's start does not import pyarrow through it
    from adapters.warehouse.writer import BatchWriter

logger = logging.getLogger(__name__)

SCRAPE_CONFIG = "prometheus.yml"
RULES = "rules.yml"
# A scrape is one small GET answered in milliseconds: a client that takes longer than this for its whole
# request, or keeps more connections than this open, is not Prometheus and is cut off.
REQUEST_DEADLINE_S: Final = 5.0
MAX_CONNECTIONS: Final = 8
# A scrape's head arrives with its connection: one that sends none within this is cut. Connections
# waiting for their heads cost a socket each (no thread), at most MAX_PENDING of them.
HEAD_DEADLINE_S: Final = 1.0
MAX_PENDING: Final = 64
MAX_HEAD_BYTES: Final = 8192


def port_path(state_path: Path, name: str) -> Path:
    """The file keeping the metrics port of process ``name``."""
    return state_path / "run" / f"{name}.metrics_port"


def prometheus_dir(state_path: Path) -> Path:
    """Where the scrape configuration and the file-discovery targets live."""
    return state_path / "prometheus"


def target_path(state_path: Path, name: str) -> Path:
    """The file-discovery target of process ``name``."""
    return prometheus_dir(state_path) / "targets" / f"{name}.json"


def recorded_port(state_path: Path, name: str) -> int | None:
    """Return the metrics port process ``name`` serves (or will serve) on, None when it has none."""
    try:
        return int(port_path(state_path, name).read_text())
    except (FileNotFoundError, ValueError):
        return None


def metrics_port(settings: Settings, name: str, *, is_taken: bool = False) -> int:
    """Return the metrics port of process ``name``: configured, kept from an earlier start, or a free one.

    ``is_taken``: the kept port could not be bound (another process took it meanwhile): choose again.
    The port and its file-discovery target are written before the process serves, so the supervisor
    records it and Prometheus scrapes it from the first start.
    """
    port = _choose_port(settings, name, is_taken=is_taken)
    record_metrics_port(settings.state_path, name, port)
    return port


def _choose_port(settings: Settings, name: str, *, is_taken: bool = False) -> int:
    kept = None if is_taken else recorded_port(settings.state_path, name)
    return settings.metrics.port_of(name) or kept or free_port()


def record_metrics_port(state_path: Path, name: str, port: int) -> None:
    """Write the kept port and the file-discovery target of process ``name`` (raises OSError on a full disk)."""
    _write(port_path(state_path, name), str(port))
    _write(target_path(state_path, name), json.dumps([{"targets": [f"{LOOPBACK}:{port}"], "labels": {"job": name}}]))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        temporary.write_text(text)
        temporary.replace(path)  # a reader (Prometheus, status) never sees half a file
    finally:
        temporary.unlink(missing_ok=True)


RECORD_RETRY_S = 5.0  # a port that could not be recorded (a full disk) is tried again this often


def _record_while_served(state_path: Path, name: str, port: int) -> None:
    """Record the port now, or, when the disk refuses, from a daemon thread once it takes it again.

    A service serves its metrics whether or not the state dir takes the discovery files: a full
    disk at start must not end a service that runs on without them (Prometheus finds it once written).
    """
    try:
        record_metrics_port(state_path, name, port)
        return
    except OSError as exc:
        logger.error("service=%s metrics served on port %d but not recorded (%s); retrying", name, port, exc)

    def retry() -> None:
        while True:
            time.sleep(RECORD_RETRY_S)
            if _SERVING.get((state_path, name), (None,))[0] != port:
                return  # the run ended meanwhile: its target must not come back
            try:
                record_metrics_port(state_path, name, port)
            except OSError:
                continue
            logger.info("service=%s metrics port %d recorded", name, port)
            return

    threading.Thread(target=retry, name=f"{name}-metrics-record", daemon=True).start()


_REGISTERED: dict[str, list[Collector]] = {}  # this process's collectors, by process name
# The servers this process runs, by state dir and process name: (port, server).
_SERVING: dict[tuple[Path, str], tuple[int, WSGIServer]] = {}


def register_collectors(name: str, collectors: Iterable[Collector]) -> None:
    """Register ``collectors`` under ``name``, replacing those registered under it before (one set per name)."""
    for earlier in _REGISTERED.pop(name, []):
        REGISTRY.unregister(earlier)
    _REGISTERED[name] = list(collectors)
    for collector in _REGISTERED[name]:
        REGISTRY.register(collector)


def serve_metrics(settings: Settings, name: str, collectors: Iterable[Collector] = ()) -> int | None:
    """Register ``collectors`` and serve this process's metrics on 127.0.0.1; return the port (None: disabled).

    Called again in one process (a test runs a service twice), the new collectors replace the
    earlier ones of ``name`` and the server already running goes on.
    """
    register_collectors(name, collectors)
    if not settings.metrics.enabled:
        return None
    serving = _SERVING.get((settings.state_path, name))
    if serving is not None:
        return serving[0]
    port = _choose_port(settings, name)
    try:
        server = start_bounded_server(port)
    except OSError as exc:
        if settings.metrics.port_of(name):
            raise  # a configured port: the operator must choose another
        logger.warning("metrics port %d of %s is taken (%s); choosing another", port, name, exc)
        port = _choose_port(settings, name, is_taken=True)
        server = start_bounded_server(port)
    _SERVING[(settings.state_path, name)] = (port, server)
    _record_while_served(settings.state_path, name, port)  # the port served is the port recorded
    logger.info("service=%s metrics on http://%s:%d/metrics", name, LOOPBACK, port)
    return port


class _QuietHandler(WSGIRequestHandler):
    """One request per connection (wsgiref's way), read from the head the server has already taken."""

    def setup(self) -> None:
        """Bound each write of the socket, and read the request from its head (its bytes are in already)."""
        self.request.settimeout(getattr(self.server, "deadline_s", REQUEST_DEADLINE_S))
        super().setup()
        take_head = getattr(self.server, "take_head", None)
        head = take_head(self.request) if take_head is not None else None
        if head is not None:
            self.rfile.close()  # else its reference keeps the socket open past the server's close
            self.rfile = io.BytesIO(head)

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing per request (as prometheus-client's own handler)."""


class _HeadReader:
    """Reads the request heads of new connections on one thread; hands each complete head on.

    A connection waits here, costing a socket and at most :data:`MAX_HEAD_BYTES`, until its
    head is in: one that sends none within ``deadline_s`` is cut, and past
    :data:`MAX_PENDING` waiting the oldest is cut to make room. What holds a serving slot has
    sent a whole head, so silent or trickling connections never stand between a scrape and
    its answer: a scrape's head arrives with its connection and is the newest here.
    """

    def __init__(self, deadline_s: float, on_head: Callable[[socket.socket, Any, bytes], None]) -> None:
        """Cut what sends no head within ``deadline_s``; call ``on_head(sock, address, head)`` for each head."""
        self.deadline_s = deadline_s
        self.on_head = on_head
        self._selector = selectors.DefaultSelector()
        self._waiting: OrderedDict[socket.socket, tuple[Any, float, bytearray]] = OrderedDict()  # oldest first
        self._arrived: list[tuple[socket.socket, Any]] = []
        self._lock = threading.Lock()
        self._is_closed = False
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        self.cut = 0  # connections cut for sending no head in time, or to make room
        self._thread = threading.Thread(target=self._run, name="metrics-heads", daemon=True)
        self._thread.start()

    def add(self, sock: socket.socket, address: Any) -> None:
        """Wait for the head of a new connection (called from the accepting thread)."""
        with self._lock:
            if self._is_closed:
                sock.close()
                return
            self._arrived.append((sock, address))
        self._wake()

    def close(self) -> None:
        """Cut every waiting connection and end the thread."""
        with self._lock:
            self._is_closed = True
        self._wake()
        self._thread.join(timeout=5)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # already woken, or closed
            self._wake_writer.send(b"\0")

    def _run(self) -> None:
        while True:
            now = time.monotonic()
            first_deadline = next((deadline for _, deadline, _ in self._waiting.values()), None)
            events = self._selector.select(None if first_deadline is None else max(0.0, first_deadline - now))
            for key, _ in events:
                if key.fileobj is self._wake_reader:
                    with contextlib.suppress(BlockingIOError):
                        self._wake_reader.recv(4096)
                else:
                    self._read(key.fileobj)  # type: ignore[arg-type]
            with self._lock:
                arrived, self._arrived = self._arrived, []
                is_closed = self._is_closed
            if is_closed:
                for sock, _ in arrived:
                    sock.close()
                for sock in list(self._waiting):
                    self._drop(sock)
                self._selector.close()
                self._wake_reader.close()
                self._wake_writer.close()
                return
            now = time.monotonic()
            for sock, address in arrived:
                while len(self._waiting) >= MAX_PENDING:
                    oldest = next(iter(self._waiting))
                    self._read(oldest)  # a head that came since its last read is served, not cut
                    if oldest in self._waiting:
                        self._cut(oldest)
                sock.setblocking(False)
                self._selector.register(sock, selectors.EVENT_READ)
                self._waiting[sock] = (address, now + self.deadline_s, bytearray())
                self._read(sock)  # a scrape's head usually came with its connection: served before any cut
            while self._waiting:
                sock, (_, deadline, _) = next(iter(self._waiting.items()))
                if deadline > now:
                    break
                self._cut(sock)

    def _read(self, sock: socket.socket) -> None:
        if sock not in self._waiting:
            return
        address, _, head = self._waiting[sock]
        try:
            data = sock.recv(MAX_HEAD_BYTES + 1 - len(head))
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client left
            self._drop(sock)
            return
        head += data
        if b"\r\n\r\n" in head or b"\n\n" in head:
            self._selector.unregister(sock)
            del self._waiting[sock]
            sock.setblocking(True)
            self.on_head(sock, address, bytes(head))
        elif len(head) > MAX_HEAD_BYTES:
            self._cut(sock)

    def _cut(self, sock: socket.socket) -> None:
        self.cut += 1
        self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        self._waiting.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)
        sock.close()


class MetricsServer(ThreadingWSGIServer):
    """prometheus-client's thread-per-connection server, bounded at every step.

    A new connection waits for its request head in :class:`_HeadReader` (no thread of its
    own; cut after :data:`HEAD_DEADLINE_S` without a head, the oldest of
    :data:`MAX_PENDING` waiting cut to make room); a complete head gets one of
    ``MAX_CONNECTIONS`` serving threads, or the connection is closed; a connection not
    answered within ``deadline_s`` is shut down by the serving loop, which looks every half
    second. Threads and memory stay bounded whatever a local process opens, and connections
    that send nothing cost a scrape nothing.
    """

    deadline_s = REQUEST_DEADLINE_S
    head_deadline_s = HEAD_DEADLINE_S
    request_queue_size = MAX_PENDING  # the listen backlog (socketserver's 5 dropped scrapes' connections in a flood)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._deadlines: dict[socket.socket, float] = {}
        self._heads: dict[socket.socket, bytes] = {}
        self._lock = threading.Lock()
        # Before binding: socketserver calls server_close() when the bind fails, which closes it.
        self._head_reader = _HeadReader(self.head_deadline_s, self._serve_head)
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Wait for the new connection's head off the accepting thread."""
        self._head_reader.add(request, client_address)

    def _serve_head(self, request: socket.socket, client_address: Any, head: bytes) -> None:
        # The head reader's thread: a serving thread if a slot is free, else the connection is closed.
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        with self._lock:
            self._deadlines[request] = time.monotonic() + self.deadline_s
            self._heads[request] = head
        try:
            ThreadingMixIn.process_request(self, request, client_address)
        except BaseException:
            self._forget(request)
            self.shutdown_request(request)

    def take_head(self, request: socket.socket) -> bytes | None:
        """Return (once) the head read from ``request`` before it was served."""
        with self._lock:
            return self._heads.pop(request, None)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve the connection, then free its slot."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._forget(request)

    def _forget(self, request: Any) -> None:
        with self._lock:
            self._deadlines.pop(request, None)
            self._heads.pop(request, None)
        self._slots.release()

    def service_actions(self) -> None:
        """Shut down the connections past their deadline (called by ``serve_forever`` between polls)."""
        now = time.monotonic()
        with self._lock:
            late = [request for request, deadline in self._deadlines.items() if deadline <= now]
        for request in late:
            try:
                request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed meanwhile

    def server_close(self) -> None:
        """Stop listening and cut the connections still waiting for their heads."""
        super().server_close()
        self._head_reader.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out or went away is not an error of the server; anything else is logged."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def start_bounded_server(port: int) -> WSGIServer:
    """Serve the default registry on 127.0.0.1:``port`` from a daemon thread (prometheus-client's app, bounded)."""
    server = make_server(LOOPBACK, port, make_wsgi_app(REGISTRY), MetricsServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name=f"metrics-{port}", daemon=True).start()
    return server


@contextmanager
def metrics_served(settings: Settings, name: str, collectors: Iterable[Collector] = ()) -> Iterator[int | None]:
    """Serve metrics while a finite run lasts; then stop serving and drop its target (a run that ended is not down)."""
    port = serve_metrics(settings, name, collectors)
    try:
        yield port
    finally:
        serving = _SERVING.pop((settings.state_path, name), None)
        if serving is not None:
            serving[1].shutdown()
            serving[1].server_close()
            forget_metrics(settings.state_path, name)
        register_collectors(name, [])


def forget_metrics(state_path: Path, name: str) -> None:
    """Remove the kept port and the target of process ``name``."""
    port_path(state_path, name).unlink(missing_ok=True)
    target_path(state_path, name).unlink(missing_ok=True)


def forget_all_metrics(state_path: Path) -> None:
    """Remove every kept port and target (``tickwave down``: the next ``up`` chooses free ports again)."""
    for path in (state_path / "run").glob("*.metrics_port"):
        path.unlink(missing_ok=True)
    shutil.rmtree(prometheus_dir(state_path) / "targets", ignore_errors=True)


def scrape_config(state_path: Path, interval_s: float, rules: Iterable[Path] = ()) -> dict[str, object]:
    """Return Prometheus's configuration: every target under ``prometheus/targets``, scraped each ``interval_s``."""
    interval = f"{max(1, round(interval_s * 1000))}ms"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "rule_files": [str(path) for path in rules],
        "scrape_configs": [
            {
                "job_name": "tickwave",
                "file_sd_configs": [
                    {"files": [str(prometheus_dir(state_path) / "targets" / "*.json")], "refresh_interval": interval}
                ],
            }
        ],
    }


def write_scrape_config(settings: Settings, interval_s: float | None = None, rules: Iterable[Path] = ()) -> Path:
    """Write ``prometheus/prometheus.yml`` (JSON, which is YAML) for the state dir; return its path."""
    state_path = settings.state_path
    (prometheus_dir(state_path) / "targets").mkdir(parents=True, exist_ok=True)
    config = scrape_config(state_path, interval_s or settings.metrics.scrape_interval_s, rules)
    path = prometheus_dir(state_path) / SCRAPE_CONFIG
    _write(path, json.dumps(config, indent=2))
    return path


def counts_by_kind(prefix: str, counts: Mapping[type, int], kinds: Iterable[tuple[str, type, str]]) -> Iterator[Metric]:
    """Yield a counter ``<prefix>_<name>`` per ``(name, kind, documentation)``, read from ``counts`` (unseen: 0)."""
    for name, kind, documentation in kinds:
        yield CounterMetricFamily(f"{prefix}_{name}", documentation, value=counts.get(kind, 0))


def labelled(
    family: type[CounterMetricFamily | GaugeMetricFamily],
    name: str,
    documentation: str,
    label: str,
    values: Mapping[str, float],
) -> Metric:
    """Return a family with one sample per ``values`` item, labelled ``label``, in the labels' order."""
    metric = family(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        metric.add_metric([key], value)
    return metric


class WritersCollector:
    """A loader's batched warehouse writers, one sample per table: rows, batches, retries, failures, buffered rows."""

    def __init__(self, prefix: str, writers: Callable[[], Mapping[str, BatchWriter]]) -> None:
        """Name the families ``<prefix>_rows_total``...; ``writers`` returns the writers by table when scraped."""
        self.prefix, self.writers = prefix, writers

    def collect(self) -> Iterator[Metric]:
        """Yield the families, labelled by table (the registered warehouse tables: a bounded set)."""
        prefix = self.prefix
        families = {
            "rows": CounterMetricFamily(f"{prefix}_rows", "Rows inserted into the warehouse", labels=["table"]),
            "batches": CounterMetricFamily(f"{prefix}_batches", "Batches inserted", labels=["table"]),
            "retries": CounterMetricFamily(f"{prefix}_insert_retries", "Inserts retried", labels=["table"]),
            "failures": CounterMetricFamily(f"{prefix}_insert_failures", "Inserts given up", labels=["table"]),
        }
        buffered = GaugeMetricFamily(f"{prefix}_rows_buffered", "Rows waiting for their insert", labels=["table"])
        for table, writer in sorted(dict(self.writers()).items()):
            stats = writer.stats
            families["rows"].add_metric([table], stats.rows_written)
            families["batches"].add_metric([table], stats.batches_written)
            families["retries"].add_metric([table], stats.retries)
            families["failures"].add_metric([table], stats.failures)
            buffered.add_metric([table], stats.rows_buffered)
        yield from families.values()
        yield buffered


def write_rules(settings: Settings, document: Mapping[str, object]) -> Path:
    """Write Prometheus's rule file ``prometheus/rules.yml`` (JSON, which is YAML); return its path."""
    path = prometheus_dir(settings.state_path) / RULES
    _write(path, json.dumps(document, indent=2))
    return path


class HotHistogram:
    """A histogram for a hot path: one bucket increment and one addition per observation, no lock.

    prometheus-client's ``Histogram.observe`` takes a lock per bucket and sum (1.1-1.7 us here);
    this one is written by one thread at a time (the decision loop, the journal under the
    service's lock, the dataflow's worker) and read whole at each scrape, where a sample taken
    mid-observation is at most one count behind. Registered with the default registry.
    """

    def __init__(self, name: str, documentation: str, buckets: Iterable[float]) -> None:
        """Name it (``_seconds`` in the name) with its upper bounds, ascending (``+Inf`` is added)."""
        self.name, self.documentation = name, documentation
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        REGISTRY.register(self)

    def observe(self, value: float) -> None:
        """Count one value (the first bucket whose upper bound is at least ``value``)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def collect(self) -> Iterator[Metric]:
        """Yield the histogram in Prometheus's cumulative form."""
        counts, total = list(self.counts), self.sum
        family = HistogramMetricFamily(self.name, self.documentation)
        cumulative, buckets = 0, []
        for bound, count in zip((*self.bounds, math.inf), counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == math.inf else repr(float(bound)), float(cumulative)))
        family.add_metric([], buckets, sum_value=total)
        yield family
