"""The embedded Apache Kafka: one KRaft node on loopback, or a cluster of three; jars from Maven Central.

Each node is a broker and a controller in one process, run by the supervisor as its own
service (``kafka``; a cluster adds ``kafka-2`` and ``kafka-3``), so a node that dies is
restarted alone and rejoins the others. A cluster's three nodes are the controller quorum's
voters, formatted with one cluster id, and every topic (the internal ones too) is kept on
all three with ``min.insync.replicas`` 2 (``replication``).

The jars are fetched once from Maven Central (a locked list with SHA-256 digests,
:mod:`app.services.kafka.jars`) into a cache shared by every checkout
(``~/.cache/tickwave/kafka-<version>`` unless ``kafka.jars_dir`` is set); the storage is
formatted once under the state directory, so topics and offsets survive restarts. With
``TICKWAVE_KAFKA_BOOTSTRAP`` set, none of this runs.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import resource
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from adapters.bus_credentials import ADMIN, EmbeddedCredentials
from adapters.endpoints import LOOPBACK, free_port
from adapters.private_files import PRIVATE_UMASK
from app.services.kafka import security
from app.services.kafka.classes import ARCHIVE_GLOB, archive_path
from app.services.kafka.jars import default_cache_dir, fetch_jars
from app.services.supervisor import Launch, ManagedService, Supervisor, ensure_port_free
from tickwave.config import Settings
from tickwave.errors import ServiceError

logger = logging.getLogger(__name__)

MIN_JAVA = 17

_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}] %p %m (%c{1})%n
appender.console.filter.burst.type = BurstFilter
appender.console.filter.burst.level = ERROR
appender.console.filter.burst.rate = 2
appender.console.filter.burst.maxBurst = 100
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.kafka_server.name = kafka.server.KafkaRaftServer
logger.kafka_server.level = INFO
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


# What a node's JVM holds open besides its clients' connections: its jars, the open segment of every
# log (each `.log` file stays open; indexes are mapped and closed), selectors, pipes and the class
# archive: 129 files in all for an idle node with a few clients here. A fixed part four times that,
# and twice the files already in the log directory (the logs grow); a hard limit of 1024 still
# leaves a couple of hundred connections.
FIXED_DESCRIPTORS = 512
CONNECTIONS_IDLE_MS = 30_000  # a connection that sends nothing for this long is closed, authenticated or not
CONNECTION_CREATION_RATE = 200  # connections the node accepts a second: a flood's churn costs bounded CPU


def descriptor_limit() -> int:
    """The file limit the broker's JVM runs with: the hard limit, to which it raises its soft one (``MaxFDLimit``)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return hard if hard != resource.RLIM_INFINITY else 1 << 20


def connection_cap(wanted: int, file_limit: int, log_files: int) -> int:
    """Return ``max.connections``: ``wanted``, lowered so both listeners full still leave the JVM its own files.

    The broker's and the controller's listeners each hold up to ``max.connections`` (each has its
    own quota), so two of them plus what the JVM holds open stay below ``file_limit``: the node
    never meets its file limit, whatever a local process opens. Idle connections beyond the cap wait
    in the kernel's queue rather than in the JVM's files.

    Raises:
        ServiceError: when the file limit leaves fewer than 32 connections (raise ``ulimit -Hn``).
    """
    reserve = FIXED_DESCRIPTORS + 2 * log_files
    cap = min(wanted, (file_limit - reserve) // 2)
    if cap < 32:
        raise ServiceError(
            f"the embedded Kafka's file limit ({file_limit}) leaves {cap} connections beside the {reserve} files it "
            f"needs: raise the hard limit of open files (`ulimit -Hn`, LimitNOFILE) to {reserve + 2 * wanted} or more"
        )
    return cap


def connection_bounds(cap: int) -> str:
    """Return the node's connection bounds: ``max.connections`` of ``cap``, the idle timeout, the creation rate.

    Per-address limits stop nothing on loopback, where a client picks its source among all of
    127.0.0.0/8; the services connect from 127.0.0.1 (its override is the whole cap), any other
    address is held to a quarter. The total cap, below the file limit (:func:`connection_cap`), is
    the bound. A connection that never authenticates is closed by the idle timeout like any other.
    """
    return (
        f"max.connections={cap}\n"
        f"max.connections.per.ip={max(1, cap // 4)}\n"
        f"max.connections.per.ip.overrides={LOOPBACK}:{cap}\n"
        f"connections.max.idle.ms={CONNECTIONS_IDLE_MS}\n"
        f"max.connection.creation.rate={CONNECTION_CREATION_RATE}\n"
    )


def java_executable() -> str:
    """Return the java binary from JAVA_HOME or PATH, or raise with the fix."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    java = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    if not java:
        raise ServiceError(
            "Java 17+ is needed for the embedded Kafka and was not found. Install it "
            "(Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`), or point "
            "TICKWAVE_KAFKA_BOOTSTRAP at an existing Kafka."
        )
    return java


def java_major_version(java: str) -> int:
    """Return the major version the ``java`` binary reports."""
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        raise ServiceError(f"could not read the Java version from `{java} -version`: {result.stderr.strip()}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def plaintext_listeners(port: int, controller_port: int) -> str:
    """Return the listeners of an unsecured broker (local development)."""
    return security.listener_block("PLAINTEXT", "PLAINTEXT", port, controller_port)


@dataclass(frozen=True)
class NodePorts:
    """The two loopback ports of one KRaft node: its clients' listener and its controller's."""

    broker: int
    controller: int


def replication(brokers: int) -> tuple[int, int]:
    """Return (replication factor, ``min.insync.replicas``) of every topic on ``brokers`` nodes.

    Three copies, two of them in sync before a write is acknowledged (``acks=all``): one node
    may die without losing an acknowledged message or stopping the writes.
    """
    return (1, 1) if brokers == 1 else (3, 2)


def server_properties(
    data_dir: Path, node: int, nodes: Sequence[NodePorts], listeners: str | None = None, max_connections: int = 1000
) -> str:
    """Return the configuration of KRaft node ``node`` (1-based) of ``nodes``, each a broker and a controller.

    Args:
        data_dir: the node's data directory.
        node: which of ``nodes`` this is (its ``node.id``).
        nodes: every node's ports, in node order: the controller quorum's voters.
        listeners: the listener (and security) block; PLAINTEXT when not given.
        max_connections: ``max.connections`` of each listener (:func:`connection_cap`).
    """
    ports = nodes[node - 1]
    voters = ",".join(f"{number}@{LOOPBACK}:{each.controller}" for number, each in enumerate(nodes, start=1))
    factor, min_isr = replication(len(nodes))
    # A cluster fences a node that stopped heartbeating after 4 s, not 9 (its partitions get a new
    # leader then: writes to them wait meanwhile), and moves each partition's leadership back to its
    # preferred node once that node is in sync again, checked every 10 s (Kafka's default: 300 s).
    cluster = (
        ""
        if len(nodes) == 1
        else (
            "broker.session.timeout.ms=4000\nbroker.heartbeat.interval.ms=1000\nleader.imbalance.check.interval.seconds=10\n"
        )
    )
    # With nothing else to record, the active controller appends a no-op to the metadata log every
    # 5 s, not every 0.5 s (Kafka's default): an idle node's CPU 1.6 -> 1.1 s a minute, starts as fast.
    return f"""\
# Generated by Tickwave at every start; edit the settings, not this file.
process.roles=broker,controller
node.id={node}
controller.quorum.voters={voters}
{listeners or plaintext_listeners(ports.broker, ports.controller)}log.dirs={data_dir / "logs"}
auto.create.topics.enable=false
num.partitions=1
default.replication.factor={factor}
min.insync.replicas={min_isr}
unclean.leader.election.enable=false
{cluster}offsets.topic.replication.factor={factor}
offsets.topic.num.partitions=4
transaction.state.log.replication.factor={factor}
transaction.state.log.min.isr={min_isr}
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor={factor}
share.coordinator.state.topic.min.isr={min_isr}
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
metadata.max.idle.interval.ms=5000
log.cleaner.dedupe.buffer.size=4194304
num.network.threads=2
num.io.threads=4
background.threads=2
num.recovery.threads.per.data.dir=1
log.retention.hours=168
{connection_bounds(max_connections)}"""


def cluster_ports(settings: Settings) -> list[NodePorts]:
    """Return every node's ports: the configured ones (node n: + 2(n - 1)), or free ones where configured 0.

    Ports picked free are kept in ``<state dir>/data/kafka/ports.json`` for every later start of
    every node (the first writer wins when the nodes start together): a cluster's ports are in each
    node's quorum configuration, and a single node restarted by the watcher comes back where its
    clients (the loaders, the execution process) still connect. A single node whose kept port was
    taken meanwhile by another process picks new ones (its clients follow: ``adapters.bus``).
    """
    kafka = settings.kafka
    if kafka.port and kafka.controller_port:
        return [NodePorts(kafka.port + 2 * step, kafka.controller_port + 2 * step) for step in range(kafka.brokers)]
    path = settings.state_path / "data" / "kafka" / "ports.json"
    if kafka.brokers == 1 and path.exists() and not all(map(_is_free, json.loads(path.read_text())[0])):
        logger.warning("kafka: a port it kept in %s is taken by another process; picking new ones", path)
        path.unlink(missing_ok=True)
    if not path.exists():
        picked = [
            [
                kafka.port + 2 * step if kafka.port else free_port(),
                kafka.controller_port + 2 * step if kafka.controller_port else free_port(),
            ]
            for step in range(kafka.brokers)
        ]
        _write_once(path, json.dumps(picked))
    return [NodePorts(broker, controller) for broker, controller in json.loads(path.read_text())]


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _format_class(value: str) -> str:
    """What formatting fixed of a recorded setting: SASL_PLAINTEXT and SASL_SSL share their SCRAM users."""
    return "SCRAM" if value.startswith("SASL_") else value


def _write_once(path: Path, text: str) -> str:
    """Write ``text`` to ``path`` unless it exists (the first of nodes starting together wins); return its text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}-{os.getpid()}-{uuid.uuid4().hex}")
    staging.write_text(text)
    try:
        os.link(staging, path)  # atomic, and refused when the file exists
    except FileExistsError:
        pass
    finally:
        staging.unlink()
    return path.read_text().strip()


def _random_cluster_id() -> str:
    # Kafka's Uuid.randomUuid(): 16 random bytes, URL-safe base64 without padding.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


class KafkaService(ManagedService):
    """One embedded KRaft node (broker and controller): the only one, or node 1, 2 or 3 of a cluster."""

    stop_timeout_s = 45.0
    holds_data = True

    def __init__(self, settings: Settings, node: int = 1) -> None:
        """Run node ``node`` (1-based) of the ``kafka.brokers`` nodes; its service is ``kafka``, ``kafka-2``..."""
        super().__init__(settings)
        self.node = node
        self.name = settings.kafka.node_names[node - 1]
        # The nodes of a cluster start together: none is ready before a majority of the quorum runs.
        self.quorum = "kafka" if settings.kafka.brokers > 1 else None
        # Set on the one broker run that writes the class-data archive (archive_classes).
        self.archive_at_exit: Path | None = None

    @property
    def external_address(self) -> str | None:
        """The user's cluster, if configured."""
        return self.settings.kafka.bootstrap

    @property
    def start_timeout_s(self) -> float:
        """How long to wait for a metadata request to succeed."""
        return self.settings.kafka.start_timeout_s

    @property
    def jars_dir(self) -> Path:
        """Where the jars are cached."""
        return self.settings.kafka.jars_dir or default_cache_dir(self.settings.kafka.version)

    def check_prerequisites(self) -> None:
        """Require Java 17+."""
        java = java_executable()
        major = java_major_version(java)
        if major < MIN_JAVA:
            raise ServiceError(
                f"the embedded Kafka needs Java {MIN_JAVA}+, found Java {major} at {java}. "
                f"Install a newer JDK (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`) "
                f"and set JAVA_HOME, or set TICKWAVE_KAFKA_BOOTSTRAP."
            )

    def install(self) -> None:
        """Fetch the jars from Maven Central once (cached across checkouts; :mod:`app.services.kafka.jars`)."""
        fetch_jars(self.settings.kafka.version, self.jars_dir, self.settings.kafka.maven_repository)

    def archive_classes(self) -> bool:
        """Write the class-data archive the broker starts from, unless this JVM and these jars have one.

        One broker runs in a scratch state directory until it is ready, then stops; its JVM
        writes the classes it loaded as it exits (:mod:`app.services.kafka.classes`).

        Returns:
            Whether an archive was written.

        Raises:
            ServiceError: when the broker run could not start or wrote no archive.
        """
        archive = archive_path(java_executable(), self.jars_dir)
        if archive.is_file():
            return False
        written = archive.with_name(f".{archive.name}.{os.getpid()}")
        with tempfile.TemporaryDirectory(prefix="tickwave-kafka-classes-") as scratch:
            kafka = self.settings.kafka.model_copy(update={"port": 0, "controller_port": 0, "brokers": 1})
            settings = self.settings.model_copy(update={"state_dir": Path(scratch), "kafka": kafka})
            writer = KafkaService(settings)
            writer.archive_at_exit = written
            supervisor = Supervisor(settings)
            try:
                supervisor.start(writer)
            finally:
                supervisor.stop(writer)
        if not written.is_file():
            raise ServiceError(f"the broker run that writes Kafka's class-data archive wrote none at {written}")
        for stale in archive.parent.glob(ARCHIVE_GLOB):  # an older JDK's or older jars'
            stale.unlink(missing_ok=True)
        os.replace(written, archive)
        return True

    def class_archive_options(self, java: str) -> list[str]:
        """The broker JVM's options for the class-data archive: write it, map it, or none (no archive yet)."""
        if self.archive_at_exit is not None:
            return [f"-XX:ArchiveClassesAtExit={self.archive_at_exit}"]
        archive = archive_path(java, self.jars_dir)
        return [f"-XX:SharedArchiveFile={archive}"] if archive.is_file() else []

    def prepare(self, data_dir: Path) -> None:
        """Write the logging configuration."""
        (data_dir / "log4j2.properties").write_text(_LOG4J2)

    def launch(self, data_dir: Path) -> Launch:
        """Write server.properties, format the storage once, and return the broker command."""
        kafka = self.settings.kafka
        nodes = cluster_ports(self.settings)
        ports = nodes[self.node - 1]
        if ports.broker == ports.controller:
            raise ServiceError(f"kafka.port and kafka.controller_port are both {ports.broker}; choose two ports")
        ensure_port_free(ports.broker, self.name, "TICKWAVE_KAFKA_PORT")
        ensure_port_free(ports.controller, self.name, "TICKWAVE_KAFKA_CONTROLLER_PORT")
        properties = data_dir / "server.properties"
        listeners = None
        if kafka.is_sasl:
            credentials = EmbeddedCredentials(self.settings.state_path)
            with security.generating(credentials):
                security.ensure_principals(credentials)
                if kafka.is_tls:
                    security.ensure_certificates(credentials)
            listeners = security.secured_properties(
                credentials, ports.broker, ports.controller, kafka.security_protocol
            )
        properties.unlink(missing_ok=True)  # it may hold secrets: recreated readable by the owner only
        descriptor = os.open(properties, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(server_properties(data_dir, self.node, nodes, listeners, self._connection_cap(data_dir)))
        java = java_executable()
        classpath = f"{self.jars_dir}/*"
        scratch = data_dir / "tmp"
        scratch.mkdir(exist_ok=True)
        common = [
            # The C1 compiler only: with C2 too, the broker's JIT went on compiling and recompiling
            # through a soak's whole hour (code cache 22 -> 29 MB in 28 minutes, and C2's compile
            # arenas leave freed native memory behind), so its memory grew ~10 MB/h. C1 alone
            # compiles a method once: 53 MB less resident memory and a code cache flat after ~8
            # minutes (both brokers under one load, side by side), the same replay -> Kafka
            # throughput (bench/ingest.py), for ~0.15 ms more per hop at p50 (bench/execution.py).
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            # Its scratch files in its own directory, not /tmp: lz4-java extracts its native library
            # (155 KB) at each start, and a broker stopped before its exit hooks ran left it behind.
            f"-Djava.io.tmpdir={scratch}",
            f"-Dlog4j2.configurationFile={data_dir / 'log4j2.properties'}",
            "-cp",
            classpath,
        ]
        jvm = [
            java,
            # Kafka's classes mapped from the archive tickwave prepare writes, when it exists (classes.py).
            *self.class_archive_options(java),
            f"-Xms{kafka.heap_mb}m",
            f"-Xmx{kafka.heap_mb}m",
            # ZGC: G1's young pauses (10-20 ms every ~1.5 s at 1k messages/s, 97 ms at worst)
            # were the tail of every Kafka hop; with ZGC, p99 of one hop fell from 10.5 to
            # ~3 ms on these 2-core machines (measurements in bench/README.md).
            "-XX:+UseZGC",
            # The whole heap touched at start: the broker's memory is flat from its first minute
            # instead of creeping up to the heap over an hour, so a growth seen later is a leak.
            "-XX:+AlwaysPreTouch",
            # Its soft file limit raised to the hard one (HotSpot's default on Linux, stated): max.connections
            # is computed below that limit (connection_cap).
            "-XX:+MaxFDLimit",
            *common,
        ]
        # The storage tool formats a few files and exits: it runs without the broker's fixed,
        # pre-touched heap and its collector (1.9 -> 1.3 s of CPU per format).
        self._format_storage([java, *common], data_dir, properties)
        return Launch(
            command=[*jvm, "kafka.Kafka", str(properties)],
            address=f"{LOOPBACK}:{ports.broker}",
            ports={"broker": ports.broker, "controller": ports.controller},
        )

    def _connection_cap(self, data_dir: Path) -> int:
        log_files = sum(1 for _path in (data_dir / "logs").rglob("*.log")) if (data_dir / "logs").is_dir() else 0
        cap = connection_cap(self.settings.kafka.max_connections, descriptor_limit(), log_files)
        if cap < self.settings.kafka.max_connections:
            logger.warning(
                "%s: max.connections %d, not %d: the file limit %d leaves no more",
                self.name,
                cap,
                self.settings.kafka.max_connections,
                descriptor_limit(),
            )
        return cap

    def _format_storage(self, jvm: list[str], data_dir: Path, properties: Path) -> None:
        kafka = self.settings.kafka
        formatted = {"security_protocol": kafka.security_protocol, "brokers": str(kafka.brokers)}
        if (data_dir / "logs" / "meta.properties").exists():
            for what, now in formatted.items():
                recorded = data_dir / what
                before_recorded = "1" if what == "brokers" else "PLAINTEXT"  # formatted before the file was kept
                previous = recorded.read_text().strip() if recorded.exists() else before_recorded
                if _format_class(previous) != _format_class(now):
                    raise ServiceError(
                        f"the embedded Kafka in {data_dir} was formatted for {what} {previous}, not {now}: its users "
                        f"and its controller quorum are made at format time; use a new state dir (TICKWAVE_STATE_DIR) "
                        f"or set kafka.{what} back to {previous}"
                    )
            return
        # Every node of a cluster is formatted with one cluster id, kept beside node 1's data.
        cluster_id = _write_once(self.settings.state_path / "data" / "kafka" / "cluster_id", _random_cluster_id())
        arguments = ["kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(properties), "-g"]
        if kafka.is_sasl:
            passwords = security.ensure_principals(EmbeddedCredentials(self.settings.state_path))
            arguments += security.scram_arguments(passwords)
        # The SCRAM passwords go through a Java argument file (0600), never the process's command line.
        argument_file = security.write_argument_file(data_dir / "format.args", arguments)
        try:
            # Its bootstrap checkpoint holds every principal's SCRAM records: the owner's only.
            result = subprocess.run(
                [*jvm, f"@{argument_file}"], capture_output=True, text=True, check=False, umask=PRIVATE_UMASK
            )
        finally:
            argument_file.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ServiceError(f"formatting Kafka storage in {data_dir} failed:\n{result.stdout}{result.stderr}")
        for what, now in formatted.items():
            (data_dir / what).write_text(now)
        logger.info(
            "formatted Kafka storage in %s (cluster id %s, node %d of %d, %s)",
            data_dir,
            cluster_id,
            self.node,
            kafka.brokers,
            kafka.security_protocol,
        )

    def after_start(self) -> str | None:
        """Create the registered topics that do not exist yet, and give every topic its retention."""
        from adapters.acls import apply_acls
        from adapters.bus import make_admin, resolve_admin
        from adapters.topics import create_topics

        admin = make_admin(resolve_admin(self.settings))
        created = create_topics(admin, self.settings)
        notes = [f"created topics {', '.join(created)}"] if created else []
        if self.settings.kafka.is_sasl:
            passwords = security.ensure_principals(EmbeddedCredentials(self.settings.state_path))
            added = security.add_missing_users(admin, passwords)
            notes += [f"added principals {', '.join(added)}"] if added else []
            apply_acls(admin, self.settings)
        return "; ".join(notes) or None

    def probe(self, address: str) -> bool:
        """Return True when a metadata request to the broker succeeds (as the super user when secured)."""
        from adapters.bus import broker_answers, embedded_connection

        return broker_answers(embedded_connection(self.settings, address, ADMIN), timeout_s=2.0)
