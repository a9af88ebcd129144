"""The class-data archive is named by the JVM and the jars that can use it, and a broker is started with it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from app.services.kafka import KafkaService
from app.services.kafka.classes import archive_path
from tickwave.config import load_settings


def jars_in(folder: Path) -> Path:
    folder.mkdir()
    for name in ("kafka_2.13.jar", "kafka-clients.jar"):
        (folder / name).write_bytes(b"classes")
    return folder


def test_archive_path_when_a_jar_or_the_jvm_changes_then_another_name(tmp_path: Path) -> None:
    jars = jars_in(tmp_path / "jars")
    java = sys.executable  # any binary: the name follows the file it resolves to
    first = archive_path(java, jars)

    same = archive_path(java, jars)
    os.utime(jars / "kafka-clients.jar", ns=(1, 1))
    touched = archive_path(java, jars)
    (jars / "extra.jar").write_bytes(b"more")
    added = archive_path(java, jars)
    other_jvm = archive_path("/bin/sh", jars)

    assert first == same and first.parent == jars and first.suffix == ".jsa"
    assert len({first, touched, added, other_jvm}) == 4


def test_launch_options_when_an_archive_exists_or_is_being_written_then_the_broker_is_told(tmp_path: Path) -> None:
    jars = jars_in(tmp_path / "jars")
    service = KafkaService(load_settings(state_dir=tmp_path / "state", kafka={"jars_dir": jars}))
    java = sys.executable

    without = service.class_archive_options(java)
    archive_path(java, jars).write_bytes(b"archive")
    mapped = service.class_archive_options(java)
    service.archive_at_exit = tmp_path / "writing.jsa"
    writing = service.class_archive_options(java)

    assert without == []
    assert mapped == [f"-XX:SharedArchiveFile={archive_path(java, jars)}"]
    assert writing == [f"-XX:ArchiveClassesAtExit={tmp_path / 'writing.jsa'}"]
