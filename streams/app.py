"""The production dataflow: the ticks topic in; warehouse tables and topics out.

``make_flow()`` is the factory ``python -m streams.worker`` calls in every process, so
it loads the settings itself (the process's entry point).
"""

from __future__ import annotations

import threading

from bytewax.dataflow import Dataflow

from adapters.bus import NOT_IDEMPOTENT, resolve_bootstrap
from adapters.gcpause import start_gc_freezer
from adapters.metrics import register_collectors, serve_metrics
from adapters.signing import signals_key
from streams.connectors import Publisher, TickTopicSource, TopicSink
from streams.flow import FlowSinks, build_flow
from streams.metrics import DataflowCollector, MeteredPublisher, SignalLatencyPublisher
from streams.routing import GroupLayout
from tickwave.clock import Clock, SystemClock
from tickwave.config import Settings, load_settings
from tickwave.instruments import tick_bounds
from tickwave.modeling import ModelProvider
from tickwave.topics import SIGNALS, STREAMS_RECORDS, TICKS, TICKS_DLQ, topic_name
from tickwave.validation import ValidationRules


def production_sinks(settings: Settings) -> FlowSinks:
    """Signals and dead letters to their topics; warehouse rows to ``streams.records`` for the loader.

    The flow never waits for the warehouse: an insert took 16-57 ms, and Bytewax holds
    the input back while an epoch's snapshot waits (so did the writer threads' share of
    the GIL). The broker acknowledges the records within a millisecond or two, and
    ``streams.loader`` inserts them (``tickwave streams run`` starts it). The publishers
    are not idempotent producers (``adapters.bus.NOT_IDEMPOTENT``: an idempotent one
    busy-polls a core while it waits for the broker, which made signals 40-55 ms late);
    signals carry their ``signal_id`` and records their natural keys, so a retried
    duplicate changes nothing.
    """
    bootstrap = resolve_bootstrap(settings)
    records = MeteredPublisher(bootstrap, topic_name(settings, STREAMS_RECORDS), "bulk", **NOT_IDEMPOTENT)
    register_collectors("dataflow", [DataflowCollector(records)])  # served by the process running the flow
    return FlowSinks(
        ticks=TopicSink(records, lambda ticks: ticks),
        quarantine=TopicSink(records),
        dead_letters=TopicSink(Publisher(bootstrap, topic_name(settings, TICKS_DLQ), "bulk")),
        bars=TopicSink(records),
        features=TopicSink(records),
        predictions=TopicSink(records),
        # from the bars step, each signed with the dataflow's key: the execution process decides no other
        signals=SignalLatencyPublisher(
            bootstrap,
            topic_name(settings, SIGNALS),
            "latency",
            signing_key=signals_key(settings),
            late_wait_ms=settings.streams.late_wait_ms,
            **NOT_IDEMPOTENT,
        ),
        signal_records=TopicSink(records),
    )


def model_provider(settings: Settings) -> ModelProvider:
    """The registry's champions, one per timeframe (polled by the flow, hot-swapped when they change)."""
    from streams.champions import RegistryModelProvider

    return RegistryModelProvider(settings)


def flow_for(
    settings: Settings,
    clock: Clock,
    tail: bool = True,
    provider: ModelProvider | None = None,
    sinks: FlowSinks | None = None,
    processes: int = 1,
) -> Dataflow:
    """Build the production flow (``tail=False`` stops at the topic's end; ``provider`` and ``sinks`` override).

    ``clock``: the wall clock the flow runs on (``SystemClock()`` in production).

    ``processes``: how many Bytewax processes (one worker each) run it, for the symbol groups' layout.
    """
    source = TickTopicSource(resolve_bootstrap(settings), topic_name(settings, TICKS), tail=tail)
    sinks = sinks or production_sinks(settings)
    partitions = len(source.list_parts()) if processes > 1 else 0  # what aligned groups need from the broker
    layout = GroupLayout.for_run(settings.streams.symbol_groups, processes, partitions)
    # Every symbol is accepted (ingest and the execution process hold to [symbols]); each within its bounds.
    rules = ValidationRules(max_tick_lead_ms=settings.streams.max_tick_lead_ms, bounds=tick_bounds(settings.symbols))
    return build_flow(
        settings.streams,
        source,
        sinks,
        provider or model_provider(settings),
        rules,
        clock=clock,
        layout=layout,
        alignment=settings.bar_alignment,
    )


def make_flow(tail: str = "true", processes: int = 1, index: int = 0) -> Dataflow:
    """Build the flow of process ``index`` of several (``python -m streams.worker``, one worker each).

    ``index``: this process's number among them (its metrics are served as ``streams-<index>``).
    """
    from tickwave.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)  # a process of its own: its reports and errors reach its log
    flow = flow_for(settings, SystemClock(), tail=tail.lower() == "true", processes=processes)
    serve_metrics(settings, f"streams-{index}")
    start_gc_freezer(threading.Event())  # as ``streams.runner.run_in_process`` does
    return flow
