"""Producer profiles: which ones are idempotent, and that none drops acks."""

from __future__ import annotations

import pytest

from adapters.bus import NOT_IDEMPOTENT, producer_config
from streams.app import production_sinks
from streams.connectors import Publisher
from tickwave.config import load_settings


@pytest.mark.parametrize("profile", ["bulk", "live", "latency"])
def test_producer_config_when_any_profile_then_acks_all(profile: str) -> None:
    assert producer_config("127.0.0.1:9092", profile)["acks"] == "all"  # type: ignore[arg-type]


def test_producer_config_when_live_then_not_idempotent_with_one_request_in_flight() -> None:
    config = producer_config("127.0.0.1:9092", "live")
    assert config["enable.idempotence"] is False, "an idempotent producer busy-polls while the broker is slow"
    assert config["max.in.flight.requests.per.connection"] == 1, "a retried batch must not be overtaken"


@pytest.mark.parametrize("profile", ["bulk", "latency"])
def test_producer_config_when_bulk_or_latency_then_idempotent(profile: str) -> None:
    assert producer_config("127.0.0.1:9092", profile)["enable.idempotence"] is True  # type: ignore[arg-type]


def test_production_sinks_when_built_then_the_flow_publishers_are_not_idempotent() -> None:
    settings = load_settings(kafka={"bootstrap": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"})
    sinks = production_sinks(settings)
    publishers = {sinks.signals.topic: sinks.signals, sinks.bars.publisher.topic: sinks.bars.publisher}  # type: ignore[union-attr]
    assert len(publishers) == 2
    for publisher in publishers.values():
        assert isinstance(publisher, Publisher)
        assert publisher.overrides == NOT_IDEMPOTENT, publisher.topic
