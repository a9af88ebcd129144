"""The embedded Apache Kafka broker: one KRaft node on loopback, jars from Maven Central.

The jars are fetched once with Maven (``pom.xml`` beside this file) into a cache shared
by every checkout (``~/.cache/tickwave/kafka-<version>`` unless ``kafka.jars_dir`` is
set); the storage is formatted once under the state directory, so topics and offsets
survive restarts. With ``TICKWAVE_KAFKA_BOOTSTRAP`` set, none of this runs.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from adapters.bus_credentials import ADMIN, EmbeddedCredentials
from adapters.endpoints import LOOPBACK, free_port
from app.services.kafka import security
from app.services.supervisor import Launch, ManagedService, ensure_port_free
from tickwave.errors import ServiceError

logger = logging.getLogger(__name__)

POM = Path(__file__).with_name("pom.xml")
COMPLETE_MARKER = ".complete"
MIN_JAVA = 17

_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}] %p %m (%c{1})%n
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


def default_cache_dir(version: str) -> Path:
    """Return the shared jar cache for a Kafka version (honours XDG_CACHE_HOME)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tickwave" / f"kafka-{version}"


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


def fetch_jars(version: str, target: Path) -> Path:
    """Fetch Kafka's runtime jars into ``target`` once (atomic: no half-filled cache).

    Raises:
        ServiceError: when Maven is missing or the download fails, with the fix.
    """
    if (target / COMPLETE_MARKER).exists():
        return target
    mvn = shutil.which("mvn")
    if not mvn:
        raise ServiceError(
            "Maven (`mvn`) is needed once to fetch Kafka's jars from Maven Central and was not found. "
            "Install it (Debian/Ubuntu: `apt-get install maven`), or set TICKWAVE_KAFKA_BOOTSTRAP."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    command = [
        mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
        f"-Dkafka.version={version}", "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
    ]  # fmt: skip
    logger.info("fetching Apache Kafka %s jars from Maven Central into %s", version, target)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    jars = list(staging.glob("kafka_2.13-*.jar"))
    if result.returncode != 0 or not jars:
        shutil.rmtree(staging, ignore_errors=True)
        output = (result.stdout + result.stderr).strip()[-2000:]
        raise ServiceError(
            f"fetching Kafka {version} from Maven Central failed (mvn exit {result.returncode}). "
            f"Check network access to Maven Central (and ~/.m2/settings.xml proxies), then retry; "
            f"or set TICKWAVE_KAFKA_BOOTSTRAP.\n{output}"
        )
    (staging / COMPLETE_MARKER).write_text(version)
    try:
        staging.rename(target)
    except OSError:  # another process filled the cache first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def plaintext_listeners(port: int, controller_port: int) -> str:
    """Return the listeners of an unsecured broker (local development)."""
    return security.listener_block("PLAINTEXT", "PLAINTEXT", port, controller_port)


def server_properties(data_dir: Path, port: int, controller_port: int, listeners: str | None = None) -> str:
    """Return the broker configuration for a single-node KRaft cluster on loopback.

    Args:
        data_dir: the broker's data directory.
        port: the client listener's port.
        controller_port: the controller listener's port.
        listeners: the listener (and security) block; PLAINTEXT when not given.
    """
    return f"""\
# Generated by Tickwave at every start; edit the settings, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{LOOPBACK}:{controller_port}
{listeners or plaintext_listeners(port, controller_port)}log.dirs={data_dir / "logs"}
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=4194304
num.network.threads=2
num.io.threads=4
background.threads=2
num.recovery.threads.per.data.dir=1
log.retention.hours=168
"""


def _random_cluster_id() -> str:
    # Kafka's Uuid.randomUuid(): 16 random bytes, URL-safe base64 without padding.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


class KafkaService(ManagedService):
    """The embedded single-node Kafka broker."""

    name = "kafka"
    stop_timeout_s = 45.0

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
        """Fetch the jars from Maven Central once (cached across checkouts)."""
        fetch_jars(self.settings.kafka.version, self.jars_dir)

    def prepare(self, data_dir: Path) -> None:
        """Write the logging configuration."""
        (data_dir / "log4j2.properties").write_text(_LOG4J2)

    def launch(self, data_dir: Path) -> Launch:
        """Write server.properties, format the storage once, and return the broker command."""
        kafka = self.settings.kafka
        port = kafka.port or free_port()
        controller_port = kafka.controller_port or free_port()
        if port == controller_port:
            raise ServiceError(f"kafka.port and kafka.controller_port are both {port}; choose two ports")
        ensure_port_free(port, "kafka", "TICKWAVE_KAFKA_PORT")
        ensure_port_free(controller_port, "kafka", "TICKWAVE_KAFKA_CONTROLLER_PORT")
        properties = data_dir / "server.properties"
        listeners = None
        if kafka.is_sasl:
            credentials = EmbeddedCredentials(self.settings.state_path)
            security.ensure_principals(credentials)
            security.ensure_certificates(credentials)
            listeners = security.secured_properties(credentials, port, controller_port)
        properties.unlink(missing_ok=True)  # it may hold secrets: recreated readable by the owner only
        descriptor = os.open(properties, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(server_properties(data_dir, port, controller_port, listeners))
        java = java_executable()
        classpath = f"{self.jars_dir}/*"
        jvm = [
            java,
            f"-Xms{kafka.heap_mb}m",
            f"-Xmx{kafka.heap_mb}m",
            # ZGC: G1's young pauses (10-20 ms every ~1.5 s at 1k messages/s, 97 ms at worst)
            # were the tail of every Kafka hop; with ZGC, p99 of one hop fell from 10.5 to
            # ~3 ms on these 2-core machines (measurements in bench/README.md).
            "-XX:+UseZGC",
            # The whole heap touched at start: the broker's memory is flat from its first minute
            # instead of creeping up to the heap over an hour, so a growth seen later is a leak.
            "-XX:+AlwaysPreTouch",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={data_dir / 'log4j2.properties'}",
            "-cp",
            classpath,
        ]
        self._format_storage(jvm, data_dir, properties)
        return Launch(
            command=[*jvm, "kafka.Kafka", str(properties)],
            address=f"{LOOPBACK}:{port}",
            ports={"broker": port, "controller": controller_port},
        )

    def _format_storage(self, jvm: list[str], data_dir: Path, properties: Path) -> None:
        protocol = self.settings.kafka.security_protocol
        formatted_for = data_dir / "security_protocol"
        if (data_dir / "logs" / "meta.properties").exists():
            previous = formatted_for.read_text().strip() if formatted_for.exists() else "PLAINTEXT"
            if previous != protocol:
                raise ServiceError(
                    f"the embedded Kafka in {data_dir} was formatted for {previous}, not {protocol}: its users are "
                    f"made at format time; use a new state dir (TICKWAVE_STATE_DIR) or set kafka.security_protocol "
                    f"back to {previous}"
                )
            return
        cluster_id_file = data_dir / "cluster_id"
        if not cluster_id_file.exists():
            cluster_id_file.write_text(_random_cluster_id())
        cluster_id = cluster_id_file.read_text().strip()
        arguments = ["kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(properties), "-g"]
        if self.settings.kafka.is_sasl:
            passwords = security.ensure_principals(EmbeddedCredentials(self.settings.state_path))
            arguments += security.scram_arguments(passwords)
        # The SCRAM passwords go through a Java argument file (0600), never the process's command line.
        argument_file = security.write_argument_file(data_dir / "format.args", arguments)
        try:
            result = subprocess.run([*jvm, f"@{argument_file}"], capture_output=True, text=True, check=False)
        finally:
            argument_file.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ServiceError(f"formatting Kafka storage in {data_dir} failed:\n{result.stdout}{result.stderr}")
        formatted_for.write_text(protocol)
        logger.info("formatted Kafka storage in %s (cluster id %s, %s)", data_dir, cluster_id, protocol)

    def after_start(self) -> str | None:
        """Create the registered topics that do not exist yet, and give every topic its retention."""
        from adapters.acls import apply_acls
        from adapters.bus import make_admin, resolve_admin
        from adapters.topics import create_topics

        admin = make_admin(resolve_admin(self.settings))
        created = create_topics(admin, self.settings)
        if self.settings.kafka.is_sasl:
            apply_acls(admin, self.settings)
        return f"created topics {', '.join(created)}" if created else None

    def probe(self, address: str) -> bool:
        """Return True when a metadata request to the broker succeeds (as the super user when secured)."""
        from adapters.bus import broker_answers, embedded_connection

        return broker_answers(embedded_connection(self.settings, address, ADMIN), timeout_s=2.0)
