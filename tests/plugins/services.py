"""Session fixtures for the real embedded services (Kafka; the warehouse joins here).

One broker serves the whole run, on free loopback ports, with its state dir in a temp
folder. Tests isolate their data by topic prefix (``unique_prefix``), never by sharing
names. Every process started here is stopped at session end, even on failure.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.bus import make_admin
from adapters.endpoints import Endpoint
from adapters.topics import create_topics
from app.services.kafka import KafkaService
from app.services.supervisor import Supervisor
from tickwave.config import Settings, load_settings


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state directory shared by the session's embedded services."""
    return tmp_path_factory.mktemp("tickwave-state")


@pytest.fixture(scope="session")
def kafka_endpoint(state_dir: Path) -> Iterator[Endpoint]:
    """The real embedded Kafka broker, started once for the test session."""
    settings = load_settings(state_dir=state_dir, kafka={"port": 0, "controller_port": 0})
    supervisor = Supervisor(settings)
    service = KafkaService(settings)
    started = supervisor.start(service)
    assert isinstance(started, Endpoint), "the test broker must be embedded, not external"
    try:
        yield started
    finally:
        supervisor.stop(service)


@pytest.fixture
def unique_prefix() -> str:
    """A topic prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def settings(state_dir: Path, kafka_endpoint: Endpoint, unique_prefix: str) -> Settings:
    """Settings pointing at the session broker, with this test's own topic prefix."""
    return load_settings(
        state_dir=state_dir,
        kafka={"bootstrap": kafka_endpoint.address, "topic_prefix": unique_prefix},
    )


@pytest.fixture
def topics(settings: Settings) -> Settings:
    """Create every registered topic under this test's prefix; return the settings."""
    create_topics(make_admin(settings.kafka.bootstrap or ""), settings)
    return settings
