"""Kafka's jars come by the locked list: every digest checked, a changed byte refused, Maven not needed."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.services.kafka.jars import COMPLETE_MARKER, default_cache_dir, fetch_jars, locked_jars
from tickwave.config import Settings
from tickwave.errors import ServiceError


@pytest.fixture(scope="module")
def cached_jars() -> Path:
    # `make bootstrap` filled the cache before the tests run; it is the bytes Maven Central served.
    settings = Settings()
    folder = settings.kafka.jars_dir or default_cache_dir(settings.kafka.version)
    if not (folder / COMPLETE_MARKER).exists():
        pytest.fail(f"Kafka's jars are not cached in {folder}: run `make bootstrap` first")
    return folder


@pytest.fixture
def mirror(tmp_path: Path, cached_jars: Path) -> Iterator[Path]:
    """A Maven repository on loopback holding the cached jars at their repository paths."""
    root = tmp_path / "repository"
    for jar in locked_jars(Settings().kafka.version) or []:
        (root / jar.path).parent.mkdir(parents=True, exist_ok=True)
        (root / jar.path).write_bytes((cached_jars / jar.name).read_bytes())
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    root.joinpath(".url").write_text(f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield root
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_locked_jars_when_the_pinned_version_is_read_then_the_broker_and_its_log_binding_are_listed() -> None:
    jars = locked_jars(Settings().kafka.version)

    assert jars is not None
    names = {jar.name for jar in jars}
    assert f"kafka_2.13-{Settings().kafka.version}.jar" in names
    assert any(name.startswith("log4j-slf4j-impl-") for name in names)
    assert all(len(jar.sha256) == 64 for jar in jars)


def test_fetch_jars_when_the_mirror_serves_the_locked_bytes_then_every_jar_lands(
    tmp_path: Path, mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")  # no Maven
    target = tmp_path / "cache" / "kafka"

    fetch_jars(Settings().kafka.version, target, mirror.joinpath(".url").read_text())

    assert (target / COMPLETE_MARKER).exists()
    assert {p.name for p in target.glob("*.jar")} == {jar.name for jar in locked_jars(Settings().kafka.version) or []}


def test_fetch_jars_when_one_byte_of_a_jar_differs_then_nothing_is_cached(tmp_path: Path, mirror: Path) -> None:
    jar = next(j for j in locked_jars(Settings().kafka.version) or [] if j.name.startswith("kafka-clients-"))
    tampered = bytearray((mirror / jar.path).read_bytes())
    tampered[len(tampered) // 2] ^= 0x01
    (mirror / jar.path).write_bytes(bytes(tampered))
    target = tmp_path / "cache" / "kafka"

    with pytest.raises(ServiceError, match="does not match its locked SHA-256"):
        fetch_jars(Settings().kafka.version, target, mirror.joinpath(".url").read_text())

    assert not target.exists()
    assert list(target.parent.iterdir()) == [], "the half-filled staging folder is removed"


def test_fetch_jars_when_the_version_has_no_list_and_no_maven_then_the_fix_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")

    with pytest.raises(ServiceError, match="no locked jar list"):
        fetch_jars("0.0.1", tmp_path / "kafka")
