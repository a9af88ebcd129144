"""The production dataflow: the ticks topic in; warehouse tables and topics out.

``make_flow()`` is the factory ``python -m bytewax.run`` imports in every process, so
it loads the settings itself (the process's entry point).
"""

from __future__ import annotations

import threading

from bytewax.dataflow import Dataflow

from streams.connectors import TickTopicSource, TopicSink, WarehouseSink, WriterPool
from streams.flow import FlowSinks, build_flow
from streams.inference import ModelProvider
from tickwave.bus import resolve_bootstrap
from tickwave.config import Settings, load_settings
from tickwave.gcpause import start_gc_freezer
from tickwave.topics import SIGNALS, TICKS, TICKS_DLQ, topic_name
from tickwave.warehouse.client import connect


def production_sinks(settings: Settings, pool: WriterPool) -> FlowSinks:
    """Warehouse tables through ``pool``; signals and dead letters to their topics."""
    bootstrap = resolve_bootstrap(settings)
    return FlowSinks(
        ticks=WarehouseSink(pool, lambda ticks: ticks),
        quarantine=WarehouseSink(pool),
        dead_letters=TopicSink(bootstrap, topic_name(settings, TICKS_DLQ), "bulk"),
        bars=WarehouseSink(pool),
        features=WarehouseSink(pool),
        predictions=WarehouseSink(pool),
        signals=TopicSink(bootstrap, topic_name(settings, SIGNALS), "latency"),
        signal_records=WarehouseSink(pool),
    )


def model_provider(settings: Settings) -> ModelProvider:
    """The registry's champion (polled by the flow, hot-swapped when it changes)."""
    from models.registry import RegistryModelProvider

    return RegistryModelProvider(settings)


def flow_for(settings: Settings, tail: bool = True, provider: ModelProvider | None = None) -> Dataflow:
    """Build the production flow (``tail=False`` stops at the topic's end; ``provider`` overrides the registry)."""
    pool = WriterPool(lambda: connect(settings))
    source = TickTopicSource(resolve_bootstrap(settings), topic_name(settings, TICKS), tail=tail)
    sinks = production_sinks(settings, pool)
    return build_flow(settings.streams, source, sinks, provider or model_provider(settings))


def make_flow(tail: str = "true") -> Dataflow:
    """Entry point for ``python -m bytewax.run streams.app:make_flow()``."""
    flow = flow_for(load_settings(), tail=tail.lower() == "true")
    start_gc_freezer(threading.Event())  # as ``streams.runner.run_in_process`` does
    return flow
