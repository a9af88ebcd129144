"""The benchmarks' own embedded Kafka: the authenticated default, SASL_SSL, or PLAINTEXT to compare against.

``embedded_bus`` starts one broker (Supervisor + KafkaService, free loopback ports, a temp state
dir) and yields the settings of a client that reaches it as the super user, through the broker's
generated credentials (no password in any setting, argument or environment). A benchmark's
clients take ``resolve_bootstrap(bus)``; its child processes take ``shared_environment(bus)``;
``prepare_topics`` creates a prefix's topics with the registry's ACLs, so a process run as its
own principal (the dataflow, the streams loader) is allowed what it is under ``tickwave up``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adapters.acls import apply_acls
from adapters.bus import make_admin, resolve_admin, shared_section
from adapters.bus_credentials import ADMIN
from adapters.topics import create_topics
from app.services.kafka import KafkaService
from app.services.supervisor import Supervisor
from tickwave.config import Settings, load_settings
from tickwave.config.kafka import EMBEDDED_PROTOCOLS, KafkaSettings

AUTHENTICATED: str = KafkaSettings.model_fields["security_protocol"].default  # the embedded default
PLAINTEXT = "PLAINTEXT"
PROTOCOLS = EMBEDDED_PROTOCOLS  # what the embedded broker can speak


@contextmanager
def embedded_bus(security_protocol: str = AUTHENTICATED, **kafka: Any) -> Iterator[Settings]:
    """Start an embedded broker speaking ``security_protocol``; yield its super user's settings; stop it."""
    state = Path(tempfile.mkdtemp(prefix=f"tw-bench-{security_protocol.lower()}-"))
    user = {"username": ADMIN} if security_protocol != PLAINTEXT else {}
    settings = load_settings(
        state_dir=state,
        kafka={"port": 0, "controller_port": 0, "security_protocol": security_protocol, **user, **kafka},
    )
    supervisor, service = Supervisor(settings), KafkaService(settings)
    endpoint = supervisor.start(service)
    assert not isinstance(endpoint, str), "the benchmark's broker is embedded"
    try:
        yield settings
    finally:
        supervisor.stop(service)


def bench_settings(bus: Settings, state_dir: Path, prefix: str, **sections: Any) -> Settings:
    """Return settings with their own state dir and topic prefix that reach ``bus``'s broker as its principal."""
    return load_settings(state_dir=state_dir, kafka=shared_section(bus, topic_prefix=prefix), **sections)


def prepare_topics(settings: Settings) -> None:
    """Create the registered topics under the settings' prefix, with their ACLs when the broker is secured."""
    admin = make_admin(resolve_admin(settings))
    create_topics(admin, settings)
    if settings.kafka.is_sasl:
        apply_acls(admin, settings)
