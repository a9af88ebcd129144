"""The embedded warehouse's certificate: configured, or a CA and a server certificate generated once.

With ``clickhouse.tls`` on and no ``clickhouse.tls_cert_file``/``tls_key_file``, the first
start generates under ``<state dir>/tls/warehouse/`` (directory 0700, key 0600):

- ``ca.pem``: a CA of this state dir alone (its key is discarded once it has signed, so it
  can sign nothing else); every client verifies the server against it;
- ``server.pem`` / ``server-key.pem``: the server's certificate for ``127.0.0.1``, ``::1``
  and ``localhost`` (subject alternative names: clients check the name there, not in
  the common name) and its key.

They are made with the ``cryptography`` package (already locked, through authlib) and
remade, all three, when the server certificate has less than :data:`RENEW_BEFORE` left:
clients read the CA file at every connection, so a renewal needs only a warehouse
restart. Two processes starting at once take a lock, so they never write a mismatched pair.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tickwave.config import Settings
from tickwave.errors import ConfigurationError

TLS_DIR = Path("tls") / "warehouse"
CA_FILE = "ca.pem"
CERT_FILE = "server.pem"
KEY_FILE = "server-key.pem"
VALIDITY = timedelta(days=397)  # the longest a public server certificate may live; renewed before
RENEW_BEFORE = timedelta(days=30)
SERVER_NAMES = ("localhost",)
SERVER_ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class ServerTls:
    """The certificate chain and key the embedded warehouse serves HTTPS with."""

    cert_file: Path
    key_file: Path


def generated_dir(settings: Settings) -> Path:
    """Return the directory of the generated CA and server certificate."""
    return settings.state_path / TLS_DIR


def generated_ca_file(settings: Settings) -> Path:
    """Return the generated CA's certificate (what clients verify the embedded warehouse against)."""
    return generated_dir(settings) / CA_FILE


def is_generated(settings: Settings) -> bool:
    """Return True when the embedded warehouse serves a generated certificate (TLS on, none configured)."""
    clickhouse = settings.clickhouse
    return clickhouse.tls and not clickhouse.is_external and clickhouse.tls_cert_file is None


def server_tls(settings: Settings, *, create: bool = False, now: datetime | None = None) -> ServerTls | None:
    """Return the embedded warehouse's certificate and key, or None when it serves plain HTTP.

    Args:
        settings: the configuration.
        create: generate (or renew) the CA and certificate when TLS is on and none is configured.
        now: the time validity is judged at (default: now, UTC).

    Raises:
        ConfigurationError: a configured file is missing, or the generated ones are missing
            and ``create`` is off.
    """
    clickhouse = settings.clickhouse
    if not clickhouse.tls or clickhouse.is_external:
        return None
    if clickhouse.tls_cert_file is not None and clickhouse.tls_key_file is not None:
        for path in (clickhouse.tls_cert_file, clickhouse.tls_key_file):
            if not path.is_file():
                raise ConfigurationError(f"clickhouse TLS file {path} does not exist")
        return ServerTls(clickhouse.tls_cert_file, clickhouse.tls_key_file)
    directory = generated_dir(settings)
    files = ServerTls(directory / CERT_FILE, directory / KEY_FILE)
    if create:
        with _locked(directory):
            if _needs_renewal(files.cert_file, now or datetime.now(UTC)):
                _generate(directory, now or datetime.now(UTC))
    elif not files.cert_file.is_file():
        raise ConfigurationError(f"no warehouse certificate in {directory}: start the warehouse once to generate it")
    return files


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _needs_renewal(cert_file: Path, now: datetime) -> bool:
    from cryptography import x509

    if not all(path.is_file() for path in (cert_file, cert_file.with_name(KEY_FILE), cert_file.with_name(CA_FILE))):
        return True
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except ValueError:
        return True
    return certificate.not_valid_after_utc - now < RENEW_BEFORE


def _generate(directory: Path, now: datetime) -> None:
    # EC P-256: small, fast, and accepted by Python's ssl, urllib3, Go's crypto/tls and Grafana.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    not_before, not_after = now - timedelta(minutes=5), now + VALIDITY
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tickwave warehouse CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in SERVER_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in SERVER_ADDRESSES]
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # The key first and the CA last: a reader that finds the CA finds a matching pair.
    _write(directory / KEY_FILE, key_pem, 0o600)
    _write(directory / CERT_FILE, server.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(directory / CA_FILE, ca.public_bytes(serialization.Encoding.PEM), 0o644)


def _key_usage(**allowed: bool) -> Any:
    from cryptography import x509

    usages = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{usage: allowed.get(usage, False) for usage in usages})


def _write(path: Path, content: bytes, mode: int) -> None:
    # Atomic: written beside, then renamed over the old one.
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
