"""The authenticated embedded broker: its SCRAM users, its listeners and authorizer, its certificates.

The client listener is SASL_PLAINTEXT (the default: SCRAM on loopback) or SASL_SSL (SCRAM over
TLS). At the first secured start the broker gets, under ``<state dir>/secrets/kafka`` (0700,
files 0600):

- with SASL_SSL, a CA and a broker certificate signed by it, made with the JDK's ``keytool``
  (``-genkeypair``, ``-certreq``, ``-gencert``; the broker's names are 127.0.0.1 and localhost),
  and the CA exported as PEM for the Python clients;
- one random password per principal: the super user ``admin`` (the broker itself, its
  controller, ``tickwave up`` and ``tickwave topics``) and the registry's principals.

The SCRAM users are written into the metadata log when the storage is formatted
(``StorageTool format --add-scram``); the ACLs are created after the start from the topic
registry (``adapters/acls.py``). Passwords reach keytool through its ``:env`` option and
the storage tool through a Java argument file, never a command line; the broker reads
them from its 0600 ``server.properties``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

from adapters.bus_credentials import ADMIN, EmbeddedCredentials
from adapters.endpoints import LOOPBACK
from tickwave.config import Settings
from tickwave.errors import ServiceError
from tickwave.topics import PRINCIPALS

KEYSTORE_SECRET = ".keystore"  # noqa: S105 - the file name of the broker's keystore password
SCRAM_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
SCRAM_ITERATIONS = 4096  # as the storage tool makes them
CERTIFICATE_DAYS = 825
_STORE_PASSWORD_ENV = "TICKWAVE_KEYSTORE_SECRET"  # noqa: S105 - the name of a variable, not a secret


def plaintext_warning(settings: Settings) -> str | None:
    """Return what ``up`` and ``status`` say when the embedded broker was asked to run unauthenticated, else None."""
    if not settings.kafka.is_embedded_plaintext:
        return None
    return (
        "the embedded Kafka runs PLAINTEXT (kafka.security_protocol): any local process or user can write any "
        "topic, signals included, and so place orders; unset TICKWAVE_KAFKA_SECURITY_PROTOCOL for the "
        "authenticated default (SASL_PLAINTEXT with SCRAM and ACLs)"
    )


def keystore_path(credentials: EmbeddedCredentials) -> Path:
    """The broker's PKCS12 keystore: its key, its certificate and the CA."""
    return credentials.folder / "broker.p12"


def ensure_principals(credentials: EmbeddedCredentials) -> dict[str, str]:
    """Return every principal's password, generating the missing ones (0600)."""
    return {name: credentials.ensure_password(name) for name in (ADMIN, *PRINCIPALS)}


@contextlib.contextmanager
def generating(credentials: EmbeddedCredentials) -> Iterator[None]:
    """Hold the credentials folder's lock: the nodes of a cluster, started together, make one set between them."""
    credentials.folder.mkdir(parents=True, exist_ok=True)
    credentials.folder.chmod(0o700)
    with open(credentials.folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_certificates(credentials: EmbeddedCredentials) -> None:
    """Make the CA, the broker's certificate signed by it and the CA's PEM, once (keytool)."""
    keystore = keystore_path(credentials)
    if keystore.exists() and credentials.ca_file.exists():
        return
    password = credentials.ensure_password(KEYSTORE_SECRET)
    folder = credentials.folder
    ca_store, request, signed = folder / "ca.p12", folder / "broker.csr", folder / "broker.crt"
    for leftover in (ca_store, keystore, request, signed, credentials.ca_file):
        leftover.unlink(missing_ok=True)  # a start that died half-way: begin again
    store = ["-storetype", "PKCS12", "-storepass:env", _STORE_PASSWORD_ENV]
    days = ["-validity", str(CERTIFICATE_DAYS)]
    steps = [
        [
            "-genkeypair",
            "-alias",
            "ca",
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-dname",
            "CN=Tickwave embedded Kafka CA",
            "-ext",
            "bc:c",
            "-validity",
            "3650",
            "-keystore",
            str(ca_store),
            *store,
        ],
        ["-exportcert", "-rfc", "-alias", "ca", "-keystore", str(ca_store), *store, "-file", str(credentials.ca_file)],
        [
            "-genkeypair",
            "-alias",
            "broker",
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-dname",
            f"CN={LOOPBACK}",
            *days,
            "-keystore",
            str(keystore),
            *store,
        ],
        ["-certreq", "-alias", "broker", "-keystore", str(keystore), *store, "-file", str(request)],
        [
            "-gencert",
            "-rfc",
            "-alias",
            "ca",
            "-keystore",
            str(ca_store),
            *store,
            "-infile",
            str(request),
            "-outfile",
            str(signed),
            *days,
            "-ext",
            f"SAN=ip:{LOOPBACK},dns:localhost",
            "-ext",
            "EKU=serverAuth",
        ],
        [
            "-importcert",
            "-noprompt",
            "-alias",
            "ca",
            "-file",
            str(credentials.ca_file),
            "-keystore",
            str(keystore),
            *store,
        ],
        ["-importcert", "-alias", "broker", "-file", str(signed), "-keystore", str(keystore), *store],
    ]
    environment = {**os.environ, _STORE_PASSWORD_ENV: password}
    for step in steps:
        result = subprocess.run(["keytool", *step], capture_output=True, text=True, env=environment, check=False)
        if result.returncode != 0:
            raise ServiceError(
                f"keytool {step[0]} failed for the embedded Kafka's certificates:\n{result.stdout}{result.stderr}"
            )
    request.unlink()
    for path in folder.iterdir():
        path.chmod(0o600)  # the lock file too: it is empty


def listener_block(protocol: str, controller_protocol: str, port: int, controller_port: int) -> str:
    """Return the client listener (named after its ``protocol``) and the controller listener, on loopback."""
    return f"""\
listeners={protocol}://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}
advertised.listeners={protocol}://{LOOPBACK}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name={protocol}
listener.security.protocol.map=CONTROLLER:{controller_protocol},{protocol}:{protocol}
"""


def _jaas(module: str, password: str, *, is_plain_server: bool = False) -> str:
    users = f' user_{ADMIN}="{password}"' if is_plain_server else ""
    return f'{module} required username="{ADMIN}" password="{password}"{users};'


def secured_properties(credentials: EmbeddedCredentials, port: int, controller_port: int, protocol: str) -> str:
    """Return the listener, SASL, TLS and authorizer part of server.properties (it holds secrets: 0600).

    The client listener speaks ``protocol`` (SASL_PLAINTEXT or SASL_SSL) with SCRAM; the
    controller listener, on loopback and spoken only by this process to itself, is
    SASL_PLAINTEXT with PLAIN (KRaft cannot check SCRAM there: the credentials live in the
    metadata the controller serves).
    """
    admin = credentials.ensure_password(ADMIN)
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
    name = protocol.lower()
    return (
        listener_block(protocol, "SASL_PLAINTEXT", port, controller_port)
        + f"""\
sasl.enabled.mechanisms={",".join(SCRAM_MECHANISMS)}
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config={_jaas(plain, admin, is_plain_server=True)}
listener.name.{name}.scram-sha-512.sasl.jaas.config={_jaas(scram, admin)}
listener.name.{name}.scram-sha-256.sasl.jaas.config={_jaas(scram, admin)}
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:{ADMIN}
"""
        + (tls_properties(credentials) if protocol == "SASL_SSL" else "")
    )


def tls_properties(credentials: EmbeddedCredentials) -> str:
    """Return the broker's TLS part of server.properties: its keystore (and password) and its CA."""
    store = credentials.ensure_password(KEYSTORE_SECRET)
    return f"""\
ssl.keystore.type=PKCS12
ssl.keystore.location={keystore_path(credentials)}
ssl.keystore.password={store}
ssl.key.password={store}
ssl.truststore.type=PEM
ssl.truststore.location={credentials.ca_file}
ssl.client.auth=none
"""


def add_missing_users(admin: AdminClient, passwords: dict[str, str], timeout_s: float = 30.0) -> list[str]:
    """Give the running broker a SCRAM user for each principal it lacks (one added since its storage was formatted).

    Returns:
        The principals added.
    """
    known = admin.describe_user_scram_credentials().result(timeout=timeout_s)
    missing = sorted(name for name in passwords if name not in known)
    if not missing:
        return []
    upserts = [
        UserScramCredentialUpsertion(
            name,
            ScramCredentialInfo(ScramMechanism[mechanism.replace("-", "_")], SCRAM_ITERATIONS),
            passwords[name].encode(),
        )
        for name in missing
        for mechanism in SCRAM_MECHANISMS
    ]
    for name, future in admin.alter_user_scram_credentials(upserts, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            raise ServiceError(f"adding SCRAM user {name!r} to the embedded Kafka failed: {exc.args[0].str()}") from exc
    return missing


def scram_arguments(passwords: dict[str, str]) -> list[str]:
    """Return StorageTool's ``--add-scram`` arguments for every principal and mechanism (for an argument file)."""
    return [
        argument
        for name, password in sorted(passwords.items())
        for mechanism in SCRAM_MECHANISMS
        for argument in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
    ]


def write_argument_file(path: Path, arguments: list[str]) -> Path:
    """Write a Java launcher argument file (``java @file``) readable by the owner only."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write("\n".join(arguments) + "\n")
    return path
