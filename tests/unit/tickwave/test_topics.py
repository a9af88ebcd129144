from __future__ import annotations

import pytest

from tickwave.config import load_settings
from tickwave.topics import EXECUTION_CONTROL, TICKS, topic_name, topic_specs


def test_topic_specs_when_listed_then_required_topics_with_unique_names() -> None:
    specs = topic_specs(load_settings())
    names = [spec.base_name for spec in specs]

    assert names == ["ticks", "ticks.dlq", "signals", "streams.records", "orders.events", "execution.control"]
    assert all(spec.partitions >= 1 for spec in specs)


def test_topic_specs_when_partitions_configured_then_used() -> None:
    specs = {spec.base_name: spec for spec in topic_specs(load_settings(kafka={"ticks_partitions": 12}))}

    assert specs[TICKS].partitions == 12
    assert specs[EXECUTION_CONTROL].partitions == 1  # control commands need a total order


def test_topic_name_when_prefix_set_then_prefixed() -> None:
    assert topic_name(load_settings(kafka={"topic_prefix": "staging."}), TICKS) == "staging.ticks"


def test_topic_name_when_unregistered_then_key_error() -> None:
    with pytest.raises(KeyError, match="unknown topic"):
        topic_name(load_settings(), "tick")
