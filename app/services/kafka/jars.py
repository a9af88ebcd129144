"""Kafka's jars from Maven Central: a locked list fetched over HTTPS, Maven only where no list exists.

For the Kafka version the project pins, ``jars-<version>.txt`` beside this file lists every
runtime jar (the broker and log4j's SLF4J binding, as ``pom.xml`` asks) by its path in a
Maven repository and its SHA-256: they are fetched with the standard library and checked,
so a user needs Java and nothing else. Another version (``kafka.version``) falls back to
``mvn dependency:copy-dependencies`` on ``pom.xml``. Either way the jars land in a cache
shared by every checkout, filled atomically (a half-filled cache is never used).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tickwave.errors import ServiceError

logger = logging.getLogger(__name__)

POM = Path(__file__).with_name("pom.xml")
COMPLETE_MARKER = ".complete"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LockedJar:
    """One jar of the locked list: its path in a Maven repository and its SHA-256."""

    path: str
    sha256: str

    @property
    def name(self) -> str:
        """The jar's file name."""
        return self.path.rsplit("/", 1)[-1]


def default_cache_dir(version: str) -> Path:
    """Return the shared jar cache for a Kafka version (honours XDG_CACHE_HOME)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tickwave" / f"kafka-{version}"


def lock_file(version: str) -> Path:
    """Return where the locked jar list of ``version`` lives (it may not exist)."""
    return Path(__file__).with_name(f"jars-{version}.txt")


def locked_jars(version: str) -> list[LockedJar] | None:
    """Return the locked jars of ``version``, or None when the project ships no list for it."""
    path = lock_file(version)
    if not path.is_file():
        return None
    jars = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            jar_path, digest = line.split()
            jars.append(LockedJar(jar_path, digest))
    return jars


def fetch_jars(version: str, target: Path, repository: str = MAVEN_CENTRAL) -> Path:
    """Fetch Kafka's runtime jars into ``target`` once (atomic: no half-filled cache).

    Raises:
        ServiceError: when a download fails or a digest differs (locked list), or Maven is
            missing or fails (any other version), with the fix.
    """
    if (target / COMPLETE_MARKER).exists():
        return target
    jars = locked_jars(version)
    fill: Callable[[Path], None] = (
        (lambda staging: _download(jars, repository, staging)) if jars else (lambda staging: _maven(version, staging))
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    logger.info("fetching Apache Kafka %s jars into %s", version, target)
    try:
        fill(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (staging / COMPLETE_MARKER).write_text(version)
    try:
        staging.rename(target)
    except OSError:  # another process filled the cache first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _download(jars: list[LockedJar], repository: str, staging: Path) -> None:
    # Each jar streamed to disk and hashed on the way; a wrong digest fails the whole fetch.
    if urlsplit(repository).scheme not in ("http", "https"):
        raise ServiceError(f"kafka.maven_repository must be an http(s) URL, not {repository!r}")
    base = repository.rstrip("/")
    for jar in jars:
        url = f"{base}/{jar.path}"
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(staging / jar.name, "wb") as out:  # noqa: S310 - http(s) only, checked above
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        except OSError as exc:
            raise ServiceError(
                f"fetching {url} failed ({exc}). Check network access to the Maven repository "
                "(kafka.maven_repository; HTTPS_PROXY for a proxy), then retry; or set TICKWAVE_KAFKA_BOOTSTRAP."
            ) from exc
        if digest.hexdigest() != jar.sha256:
            raise ServiceError(
                f"{url} does not match its locked SHA-256 (got {digest.hexdigest()}, expected {jar.sha256}): "
                "refusing to run it. Check kafka.maven_repository (a mirror serving other bytes?)."
            )


def _maven(version: str, staging: Path) -> None:
    # No locked list for this version: Maven resolves the pom's dependencies.
    mvn = shutil.which("mvn")
    if not mvn:
        raise ServiceError(
            f"Kafka {version} has no locked jar list in this release, so Maven (`mvn`) is needed once to fetch "
            "its jars from Maven Central. Install it (Debian/Ubuntu: `apt-get install maven`), use the default "
            "kafka.version, or set TICKWAVE_KAFKA_BOOTSTRAP."
        )
    command = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-Dkafka.version={version}",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not list(staging.glob("kafka_2.13-*.jar")):
        output = (result.stdout + result.stderr).strip()[-2000:]
        raise ServiceError(
            f"fetching Kafka {version} from Maven Central failed (mvn exit {result.returncode}). "
            f"Check network access to Maven Central (and ~/.m2/settings.xml proxies), then retry; "
            f"or set TICKWAVE_KAFKA_BOOTSTRAP.\n{output}"
        )
