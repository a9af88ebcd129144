"""Jars from a Maven repository by a locked list: each fetched over HTTP(S), its SHA-256 checked.

A locked list names every jar by its path in a Maven repository and its SHA-256, one a line
(``#`` starts a comment). :func:`fill_cache` fills a cache folder atomically, so a half-filled
cache is never used; :func:`download_locked` streams each jar to disk, hashing it on the way, and
refuses the whole fetch on one wrong byte. Kafka's broker (``app/services/kafka/jars.py``) and the
JDBC driver's conformance run (``tests/conformance/jdbc_driver.py``) come this way, with Java alone.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tickwave.errors import ServiceError

COMPLETE_MARKER = ".complete"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LockedJar:
    """One jar of a locked list: its path in a Maven repository and its SHA-256."""

    path: str
    sha256: str

    @property
    def name(self) -> str:
        """The jar's file name."""
        return self.path.rsplit("/", 1)[-1]


def read_locked_list(path: Path) -> list[LockedJar]:
    """Return the jars a locked list names, in its order."""
    jars = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            jar_path, digest = line.split()
            jars.append(LockedJar(jar_path, digest))
    return jars


def fill_cache(target: Path, fill: Callable[[Path], None], marker: str) -> Path:
    """Fill ``target`` once through ``fill(staging)``, then move it in place (no half-filled cache).

    ``marker`` is written into the complete cache's marker file; a cache that has one is kept.
    """
    if (target / COMPLETE_MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        fill(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (staging / COMPLETE_MARKER).write_text(marker)
    try:
        staging.rename(target)
    except OSError:  # another process filled the cache first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def download_locked(jars: list[LockedJar], repository: str, staging: Path, *, setting: str, fallback: str) -> None:
    """Stream every jar of ``jars`` from ``repository`` into ``staging``, each digest checked.

    ``setting`` names the setting that chose the repository and ``fallback`` what else the user
    can do: both are said in the error.

    Raises:
        ServiceError: the repository is not an http(s) URL, a download fails or a digest differs.
    """
    if urlsplit(repository).scheme not in ("http", "https"):
        raise ServiceError(f"{setting} must be an http(s) URL, not {repository!r}")
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
                f"({setting}; HTTPS_PROXY for a proxy), then retry; {fallback}."
            ) from exc
        if digest.hexdigest() != jar.sha256:
            raise ServiceError(
                f"{url} does not match its locked SHA-256 (got {digest.hexdigest()}, expected {jar.sha256}): "
                f"refusing to run it. Check {setting} (a mirror serving other bytes?)."
            )
