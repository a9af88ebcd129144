"""Kafka clients configured the Tickwave way, for any Kafka-protocol cluster.

Two producer profiles and two consumer profiles, from what was measured on these
machines (``shared/NOTES.md``):

- ``bulk``: throughput first (ingest, replays): ``linger.ms=5``, large batches, lz4.
- ``live``: live ticks (MT5, simulator): ``linger.ms=1``, no compression; at thousands of
  ticks/s one request carries a millisecond of ticks instead of one tick each, and a
  tick waits at most 1 ms for its batch (the 5 ms of ``bulk`` would be half the
  tick-to-signal budget).
- ``latency``: the hot path (signals, orders): ``linger.ms=0``; consumers with
  ``fetch.min.bytes=1`` and ``fetch.wait.max.ms=100``. The broker answers a waiting
  fetch as soon as one byte arrives, so the wait bounds only how often an *idle*
  consumer asks: measured on the embedded broker at 1k messages/s, one hop's p50 was
  0.44 ms with a 100 ms wait and 0.52 ms with 5 ms, and the 5 ms wait made every idle
  consumer send 200 requests/s, CPU the 2-core machines need elsewhere.

Every producer uses ``acks=all``; never ``acks=0``. On a cluster (the embedded one with
``kafka.brokers = 3``: ``min.insync.replicas`` 2) a write is acknowledged once every in-sync
replica has it, so it survives the loss of any one broker. The ``bulk`` and ``latency``
profiles are idempotent producers. The ``live`` profile and the dataflow's publishers
(``streams.app``) are not, with one request in flight per connection so a retried batch
is never overtaken (``NOT_IDEMPOTENT``): librdkafka's idempotent producer lets at most
five messages per partition be in flight, and while a ready batch waits for an earlier
one's acknowledgement its broker thread calls ``poll()`` with a zero timeout in a loop,
a whole core for as long as the broker takes to answer. With the broker paused 100 ms
each second at 5k messages/s, a producer's threads used 22% of a core instead of 5%;
traced in the streams latency benchmark, three such producers (ticks in, signals and
records out) spun for tens to hundreds of milliseconds at a time on the 2-core machine,
and signals waiting behind them were 40-55 ms late (``bench/streams.py``). A retry may
then write a message twice; those consumers are idempotent by design (``tick_id``,
``signal_id``, ReplacingMergeTree tables). The execution path keeps the idempotent
``latency``/``bulk`` profiles: measured side by side, its signal -> order p99 is
6.0-6.6 ms with them and 100-350 ms in some runs without (cause not known).
"""

from __future__ import annotations

import logging
import socket
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from adapters.bus_credentials import ADMIN, EmbeddedCredentials
from adapters.endpoints import live_endpoint
from tickwave.config import Settings
from tickwave.config.kafka import PASSWORD_MECHANISMS, KafkaSettings
from tickwave.errors import ConfigurationError, ServiceError

logger = logging.getLogger(__name__)

Profile = Literal["bulk", "live", "latency"]

# librdkafka's own log lines go through Python logging instead of raw stderr.
_COMMON: dict[str, Any] = {
    "client.dns.lookup": "use_all_dns_ips",
    "socket.keepalive.enable": True,
    # A metadata request every 10 s: a client's connection is never idle for the broker's 30 s
    # (app.services.kafka: connections.max.idle.ms), so a quiet producer keeps its connection
    # rather than having to win a new one while a flood of idle connections holds the others.
    "topic.metadata.refresh.interval.ms": 10_000,
    "logger": logging.getLogger("librdkafka"),
}

# Not an idempotent producer (whose in-flight gate busy-polls a core, see above); one
# request in flight keeps each partition's order across retries.
NOT_IDEMPOTENT: dict[str, Any] = {"enable.idempotence": False, "max.in.flight.requests.per.connection": 1}

_PRODUCER: dict[Profile, dict[str, Any]] = {
    "bulk": {
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 1_000_000,
    },
    "live": {"linger.ms": 0.2, "compression.type": "none", **NOT_IDEMPOTENT},
    "latency": {"linger.ms": 0, "compression.type": "none"},
}

# What a consumer fetches ahead of its application: librdkafka's defaults keep up to 100,000
# messages or 64 MiB queued, which a consumer behind a backlog fills, and the process keeps that
# memory afterwards (the streams loader's 50 MB step after a 37,000-record backlog). 16 MiB is
# still tens of thousands of records ahead of a loader that takes 10,000 at a time.
PREFETCH_KBYTES = 16 * 1024
_PREFETCH: dict[str, Any] = {"queued.max.messages.kbytes": PREFETCH_KBYTES, "queued.min.messages": 20_000}

_CONSUMER: dict[Profile, dict[str, Any]] = {
    "bulk": {"fetch.wait.max.ms": 100, "fetch.min.bytes": 1, **_PREFETCH},
    "live": {"fetch.wait.max.ms": 100, "fetch.min.bytes": 1, **_PREFETCH},
    "latency": {"fetch.wait.max.ms": 100, "fetch.min.bytes": 1, **_PREFETCH},
}


@dataclass(frozen=True)
class KafkaConnection:
    """Where a cluster is and how this process proves who it is: what every client is built from.

    ``security`` holds librdkafka's security properties, secrets included; it never appears
    in ``repr`` or ``str`` (both name only the servers and the principal), so logging a
    connection is safe.
    """

    bootstrap: str
    security: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        """Name the servers (and the principal), never a secret."""
        return f"{self.bootstrap} as {self.principal}" if "sasl.username" in self.security else self.bootstrap

    @property
    def principal(self) -> str:
        """The SASL user this connection authenticates as (``ANONYMOUS`` without SASL)."""
        return self.security.get("sasl.username", "ANONYMOUS")

    def client_config(self) -> dict[str, Any]:
        """Return the properties every librdkafka client of this connection starts from."""
        return {"bootstrap.servers": self.bootstrap, **self.security, **_COMMON}


# A bare bootstrap string is a PLAINTEXT connection (tests, benchmarks, the probe of a plain broker).
Bootstrap = str | KafkaConnection


def connection(bootstrap: Bootstrap) -> KafkaConnection:
    """Return ``bootstrap`` as a connection (a bare string: PLAINTEXT)."""
    return bootstrap if isinstance(bootstrap, KafkaConnection) else KafkaConnection(bootstrap)


def client_security(
    kafka: KafkaSettings, *, password: str | None = None, ca_file: Path | None = None
) -> dict[str, str]:
    """Return librdkafka's security properties for the kafka section: the one place they are derived.

    Args:
        kafka: the section (protocol, mechanism, credentials, TLS files).
        password: the embedded broker's generated password of ``kafka.username``, used when the
            section has none.
        ca_file: the embedded broker's CA, used when the section names none.
    """
    if kafka.security_protocol == "PLAINTEXT":
        return {}
    config = {"security.protocol": kafka.security_protocol.lower()}
    if kafka.is_tls:
        ca = kafka.ssl_ca_file or ca_file
        if ca is not None:
            config["ssl.ca.location"] = str(ca)
        if kafka.ssl_certificate_file and kafka.ssl_key_file:
            config["ssl.certificate.location"] = str(kafka.ssl_certificate_file)
            config["ssl.key.location"] = str(kafka.ssl_key_file)
        if kafka.ssl_key_password is not None:
            config["ssl.key.password"] = kafka.ssl_key_password.get_secret_value()
    if kafka.is_sasl:
        config["sasl.mechanism"] = kafka.sasl_mechanism
        if kafka.sasl_mechanism in PASSWORD_MECHANISMS:
            secret = kafka.password.get_secret_value() if kafka.password is not None else password
            config["sasl.username"] = kafka.username or ""
            config["sasl.password"] = secret or ""
        elif kafka.sasl_oauthbearer_config is not None:
            config["sasl.oauthbearer.config"] = kafka.sasl_oauthbearer_config.get_secret_value()
    return config


def resolve_bootstrap(settings: Settings, principal: str | None = None) -> KafkaConnection:
    """Return the connection to the external cluster or to the running embedded broker.

    Args:
        settings: the kafka section and the state dir.
        principal: the embedded broker's user to connect as instead of ``kafka.username``
            (the composition root creates topics and ACLs as the super user).

    Raises:
        ServiceError: when no external cluster is set and the embedded one is not up.
        ConfigurationError: when the embedded broker has no password for the principal.
    """
    kafka = settings.kafka
    if kafka.bootstrap:
        if kafka.has_generated_credentials:  # an embedded broker reached by its address (tests, benchmarks)
            return embedded_connection(settings, kafka.bootstrap, principal)
        return KafkaConnection(kafka.bootstrap, client_security(kafka))
    # Every node of the embedded cluster that runs: a client started while one is down still finds the others.
    running = [endpoint for name in kafka.node_names if (endpoint := live_endpoint(settings.state_path, name))]
    if not running:
        raise ServiceError(
            f"Kafka is not running for state dir {settings.state_path}: "
            f"run `tickwave up`, or set TICKWAVE_KAFKA_BOOTSTRAP to an existing cluster"
        )
    return embedded_connection(settings, ",".join(endpoint.address for endpoint in running), principal)


def broker_moved(settings: Settings, bootstrap: Bootstrap) -> str | None:
    """Return where the embedded broker listens now when ``bootstrap`` names none of its live nodes, else None.

    None too for an external cluster (its addresses are the operator's) and while no node runs
    (a restart: its clients wait for it at the address they have). A node keeps its ports across
    restarts (``app.services.kafka.cluster_ports``) unless another process took them meanwhile:
    then a client started before is on a dead address, and must start again to follow.
    """
    kafka = settings.kafka
    if kafka.bootstrap:
        return None
    running = [endpoint.address for name in kafka.node_names if (endpoint := live_endpoint(settings.state_path, name))]
    used = {server.strip() for server in connection(bootstrap).bootstrap.split(",")}
    return None if not running or used & set(running) else ",".join(running)


def resolve_admin(settings: Settings) -> KafkaConnection:
    """Return the connection for administration and diagnostics (topics, ACLs, lags, `status`).

    The embedded broker's super user when it is secured (the composition root owns the broker);
    on an external cluster, the configured principal, with whatever rights the cluster gives it.
    """
    return resolve_bootstrap(settings, principal=ADMIN if settings.kafka.has_generated_credentials else None)


def as_principal(settings: Settings, principal: str) -> Settings:
    """Return the settings of a process that runs as ``principal`` on the secured embedded broker.

    Its password is then read from the broker's credentials (the state dir's, or ``kafka.credentials_dir``);
    settings for any other cluster are returned unchanged (there each process is given its own username and
    password by its operator).
    """
    kafka = settings.kafka
    if not kafka.has_generated_credentials:
        return settings
    return settings.model_copy(update={"kafka": kafka.model_copy(update={"username": principal, "password": None})})


def embedded_connection(settings: Settings, address: str, principal: str | None = None) -> KafkaConnection:
    """Return the connection to the embedded broker at ``address``: its CA and the principal's generated password.

    Raises:
        ConfigurationError: when the embedded broker has no password for the principal.
    """
    kafka = settings.kafka
    if not kafka.is_sasl:
        return KafkaConnection(address)
    credentials = embedded_credentials(settings)
    if principal is not None:
        kafka = as_principal(settings, principal).kafka
    password = None if kafka.password is not None else credentials.password(kafka.username or "")
    return KafkaConnection(address, client_security(kafka, password=password, ca_file=credentials.ca_file))


def embedded_credentials(settings: Settings) -> EmbeddedCredentials:
    """Return the embedded broker's generated credentials: ``kafka.credentials_dir``, else the state dir's."""
    return EmbeddedCredentials(settings.state_path, settings.kafka.credentials_dir)


def shared_section(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Return the kafka section of a process with another state dir that reaches the same broker as the same principal.

    Names and paths only (the generated credentials' folder, never a password), so it may go into a
    child's environment (:func:`shared_environment`); ``extra`` adds or overrides keys (a topic prefix).

    Raises:
        ConfigurationError: when the connection needs a password of the settings' own (not a generated one).
    """
    kafka = settings.kafka
    section: dict[str, Any] = {"bootstrap": resolve_bootstrap(settings).bootstrap, "topic_prefix": kafka.topic_prefix}
    if kafka.has_generated_credentials:
        section |= {
            "security_protocol": kafka.security_protocol,
            "username": kafka.username,
            "credentials_dir": str(embedded_credentials(settings).folder),
        }
    elif kafka.security_protocol == "PLAINTEXT":
        section["security_protocol"] = "PLAINTEXT"
    else:
        raise ConfigurationError("only an embedded broker's connection (generated credentials) or PLAINTEXT is shared")
    return section | extra


def shared_environment(settings: Settings, **extra: Any) -> dict[str, str]:
    """Return :func:`shared_section` as a child process's ``TICKWAVE_KAFKA_*`` variables."""
    section = shared_section(settings, **extra)
    return {f"TICKWAVE_KAFKA_{key.upper()}": str(value) for key, value in section.items() if value is not None}


def default_principal(settings: Settings, principal: str) -> Settings:
    """Return the settings of a command that runs as ``principal`` unless ``kafka.username`` names another.

    The commands a user types on the embedded broker (``ingest``, ``execution halt``, ``topics tail``) act
    as their role; whoever may read the state dir's credentials may be any of them, and no more.
    """
    return settings if settings.kafka.username else as_principal(settings, principal)


# What the cluster refused, said of the topic the client was using.
_DENIALS = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "topic {resource!r}",
    KafkaError.GROUP_AUTHORIZATION_FAILED: "the consumer group it reads topic {resource!r} with",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "a cluster operation on topic {resource!r}",
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "the transactional id it writes topic {resource!r} with",
}


def denial(error: KafkaError | None, bootstrap: Bootstrap, resource: str) -> str | None:
    """Return a message naming the principal and ``resource`` when ``error`` is a refusal by the cluster, else None.

    Args:
        error: a delivery, consume or admin error.
        bootstrap: the connection the client used (its principal is named).
        resource: the topic the client used.
    """
    if error is None:
        return None
    code = error.code()
    principal = connection(bootstrap).principal
    if code in _DENIALS:
        return (
            f"Kafka refused principal {principal!r} {_DENIALS[code].format(resource=resource)} ({error.name()}): "
            f"run the process as a principal with an ACL for it, or grant one"
        )
    if code in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED):
        return (
            f"Kafka did not authenticate principal {principal!r} (using {resource!r}): {error.str()}; "
            f"check kafka.username and kafka.password"
        )
    return None


def raise_if_denied(error: KafkaError | None, bootstrap: Bootstrap, resource: str) -> None:
    """Raise when ``error`` is a refusal by the cluster (see :func:`denial`).

    Raises:
        ConfigurationError: naming the principal and the resource; nothing works until an ACL or
            the process's principal is fixed.
    """
    message = denial(error, bootstrap, resource)
    if message is not None:
        raise ConfigurationError(message)


def producer_config(bootstrap: Bootstrap, profile: Profile = "bulk", **overrides: Any) -> dict[str, Any]:
    """Return librdkafka producer settings for ``profile``."""
    return {
        **connection(bootstrap).client_config(),
        "acks": "all",
        "enable.idempotence": True,
        **_PRODUCER[profile],
        **overrides,
    }


def consumer_config(bootstrap: Bootstrap, group_id: str, profile: Profile = "bulk", **overrides: Any) -> dict[str, Any]:
    """Return librdkafka consumer settings for ``profile`` (manual commits by default)."""
    return {
        **connection(bootstrap).client_config(),
        "group.id": group_id,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        **_CONSUMER[profile],
        **overrides,
    }


def make_producer(bootstrap: Bootstrap, profile: Profile = "bulk", **overrides: Any) -> Producer:
    """Create a producer for ``profile``."""
    return Producer(producer_config(bootstrap, profile, **overrides))


def make_consumer(bootstrap: Bootstrap, group_id: str, profile: Profile = "bulk", **overrides: Any) -> Consumer:
    """Create a consumer for ``profile``."""
    return Consumer(consumer_config(bootstrap, group_id, profile, **overrides))


def default_partition(key: bytes, partitions: int) -> int:
    """The partition librdkafka's default partitioner (``consistent_random``) gives a message with ``key``.

    CRC-32 of the key modulo the partition count, as every producer of Tickwave (all
    librdkafka, none setting ``partitioner``) places a tick keyed by its symbol. A producer
    with another partitioner (Java's murmur2) places keys elsewhere.
    """
    return zlib.crc32(key) % partitions


def make_admin(bootstrap: Bootstrap) -> AdminClient:
    """Create an admin client."""
    return AdminClient(connection(bootstrap).client_config())


def quix_connection(bootstrap: Bootstrap) -> Any:
    """Return ``bootstrap`` as quixstreams' ``broker_address`` (a ``ConnectionConfig`` when secured)."""
    from quixstreams.kafka.configuration import ConnectionConfig

    target = connection(bootstrap)
    if not target.security:
        return target.bootstrap
    return ConnectionConfig.from_librdkafka_dict({"bootstrap.servers": target.bootstrap, **target.security})


def broker_answers(bootstrap: Bootstrap, timeout_s: float = 2.0) -> bool:
    """Return True when a metadata request to ``bootstrap`` succeeds within the timeout."""
    target = connection(bootstrap)
    if not any(_accepts_connections(server) for server in target.bootstrap.split(",")):
        return False  # not listening yet: skip librdkafka and its connection-refused noise
    admin = AdminClient({**target.client_config(), "socket.connection.setup.timeout.ms": 1000})
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def _accepts_connections(server: str) -> bool:
    host, _, port = server.strip().rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=1.0):
            return True
    except (OSError, ValueError):
        return False
