"""Kafka's jars from Maven Central: a locked list fetched over HTTPS, Maven only where no list exists.

For the Kafka version the project pins, ``jars-<version>.txt`` beside this file lists every
runtime jar (the broker and log4j's SLF4J binding, as ``pom.xml`` asks) by its path in a
Maven repository and its SHA-256: they are fetched with the standard library and checked,
so a user needs Java and nothing else. Another version (``kafka.version``) falls back to
``mvn dependency:copy-dependencies`` on ``pom.xml``. Either way the jars land in a cache
shared by every checkout, filled atomically (a half-filled cache is never used).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from adapters.maven import COMPLETE_MARKER, MAVEN_CENTRAL, LockedJar, download_locked, fill_cache, read_locked_list
from tickwave.errors import ServiceError

__all__ = [
    "COMPLETE_MARKER",
    "MAVEN_CENTRAL",
    "LockedJar",
    "default_cache_dir",
    "fetch_jars",
    "lock_file",
    "locked_jars",
]

logger = logging.getLogger(__name__)

POM = Path(__file__).with_name("pom.xml")


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
    return read_locked_list(path) if path.is_file() else None


def fetch_jars(version: str, target: Path, repository: str = MAVEN_CENTRAL) -> Path:
    """Fetch Kafka's runtime jars into ``target`` once (atomic: no half-filled cache).

    Raises:
        ServiceError: when a download fails or a digest differs (locked list), or Maven is
            missing or fails (any other version), with the fix.
    """
    jars = locked_jars(version)

    def fill(staging: Path) -> None:
        logger.info("fetching Apache Kafka %s jars into %s", version, target)
        if jars:
            fallback = "or set TICKWAVE_KAFKA_BOOTSTRAP"
            download_locked(jars, repository, staging, setting="kafka.maven_repository", fallback=fallback)
        else:
            _maven(version, staging)

    return fill_cache(target, fill, version)


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
