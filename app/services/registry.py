"""The embedded services `tickwave up` manages, in start order."""

from __future__ import annotations

from app.services.kafka import KafkaService
from app.services.processes import own_processes
from app.services.supervisor import ManagedService
from app.services.warehouse import WarehouseService
from tickwave.config import Settings


def embedded_services(settings: Settings) -> list[ManagedService]:
    """Return every embedded service in start order (stop in reverse)."""
    return [*kafka_nodes(settings), WarehouseService(settings), *own_processes(settings)]


def kafka_nodes(settings: Settings) -> list[KafkaService]:
    """Return the embedded Kafka's nodes: ``kafka``, or ``kafka``, ``kafka-2`` and ``kafka-3`` for a cluster."""
    return [KafkaService(settings, node) for node in range(1, settings.kafka.brokers + 1)]


def service_by_name(settings: Settings, name: str) -> ManagedService:
    """Return the service called ``name``.

    Raises:
        KeyError: naming the known services.
    """
    services = {service.name: service for service in embedded_services(settings)}
    if name not in services:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(services)}")
    return services[name]
