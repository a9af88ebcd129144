"""The broker's class-data archive: written once per JVM and jars, then mapped by every broker start."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from app.services.kafka import KafkaService, java_executable
from app.services.kafka.classes import ARCHIVE_GLOB, archive_path
from app.services.kafka.jars import COMPLETE_MARKER
from app.services.supervisor import Supervisor
from tickwave.config import Settings, load_settings


def own_jars(folder: Path) -> Path:
    """A jar cache of this test's own, holding the cached jars (`make bootstrap` fetched them)."""
    cached = KafkaService(Settings()).jars_dir
    folder.mkdir()
    for jar in cached.glob("*.jar"):
        try:
            os.link(jar, folder / jar.name)
        except OSError:  # another file system
            shutil.copy2(jar, folder / jar.name)
    (folder / COMPLETE_MARKER).touch()
    return folder


def test_broker_when_prepared_then_it_maps_the_archive_written_for_its_jvm_and_jars(tmp_path: Path) -> None:
    jars = own_jars(tmp_path / "jars")
    (jars / "classes-0000000000000000.jsa").write_bytes(b"an older JDK's")
    settings = load_settings(state_dir=tmp_path / "state", kafka={"port": 0, "controller_port": 0, "jars_dir": jars})
    service = KafkaService(settings)

    written, again = service.archive_classes(), service.archive_classes()
    archive = archive_path(java_executable(), jars)
    supervisor = Supervisor(settings)
    started = supervisor.start(service)
    try:
        mapped = Path(f"/proc/{started.pid}/maps").read_text()
    finally:
        supervisor.stop(service)

    assert (written, again) == (True, False)  # one archive per JVM and jars
    assert sorted(jars.glob(ARCHIVE_GLOB)) == [archive]  # the stale one gone, no partial file left
    assert not list(jars.glob(".classes-*"))
    assert str(archive) in mapped  # the JVM took it (it starts without an archive it cannot use, silently)
