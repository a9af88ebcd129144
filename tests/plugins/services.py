"""Session fixtures for the real embedded services (Kafka; the warehouse joins here).

One broker serves the whole run, on free loopback ports, with its state dir in a temp
folder, secured as `tickwave up` makes it by default: SASL_PLAINTEXT on loopback with SCRAM
and ACLs (``TICKWAVE_KAFKA_SECURITY_PROTOCOL=SASL_SSL`` runs the session with TLS too). Tests
connect as the super user (``admin``) through the broker's generated credentials
(``kafka.credentials_dir``: no password in any setting or environment); the ``topics``
fixture also grants the registry's ACLs on the test's topics, so a process a test starts as
its own principal (the streams loader) is allowed what it is in production.
Tests isolate their data by topic prefix (``unique_prefix``), never by sharing names.
Every process started here is stopped at session end, even on failure.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.acls import apply_acls
from adapters.bus import make_admin, resolve_admin, shared_environment, shared_section
from adapters.bus_credentials import ADMIN
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
    """The real embedded Kafka broker (the authenticated default), started once for the test session."""
    settings = load_settings(state_dir=state_dir, kafka={"port": 0, "controller_port": 0})
    supervisor = Supervisor(settings)
    service = KafkaService(settings)
    started = supervisor.start(service)
    assert isinstance(started, Endpoint), "the test broker must be embedded, not external"
    try:
        yield started
    finally:
        supervisor.stop(service)


def bus_section(settings: Settings, **extra: Any) -> dict[str, Any]:
    """The kafka section for settings a test builds around another state dir: the same broker, the same principal."""
    return shared_section(settings, **extra)


def bus_environment(settings: Settings) -> dict[str, str]:
    """The ``TICKWAVE_KAFKA_*`` variables of a child process that reaches the broker as ``settings`` do."""
    return shared_environment(settings)


@pytest.fixture
def unique_prefix() -> str:
    """A topic prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def settings(state_dir: Path, kafka_endpoint: Endpoint, unique_prefix: str) -> Settings:
    """Settings pointing at the session broker as its super user, with this test's own topic prefix."""
    # TICKWAVE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT runs the session on an unauthenticated broker (what the
    # tests of the authenticated default must fail on).
    protocol = load_settings(state_dir=state_dir).kafka.security_protocol
    credentials = (
        {} if protocol == "PLAINTEXT" else {"username": ADMIN, "credentials_dir": str(state_dir / "secrets" / "kafka")}
    )
    return load_settings(
        state_dir=state_dir,
        kafka={
            "bootstrap": kafka_endpoint.address,
            "security_protocol": protocol,
            **credentials,
            "topic_prefix": unique_prefix,
        },
    )


@pytest.fixture
def topics(settings: Settings) -> Settings:
    """Create every registered topic under this test's prefix, with the registry's ACLs on them; return the settings."""
    admin = make_admin(resolve_admin(settings))
    create_topics(admin, settings)
    if settings.kafka.is_sasl:
        apply_acls(admin, settings)
    return settings
