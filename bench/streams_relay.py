"""The latency benchmark's plain-loop contender: the flow's own per-group step without Bytewax.

A confluent-kafka consumer loop reads the ticks topic with the flow's source settings,
validates each message (``check_raw``) and folds each batch into one ``GroupLogic``, the
flow's own step: spike filter, bars, features, one model call for the bars a batch
closes, and the signals published the moment they are decided, through the production
signals publisher. With production sinks it also publishes what the flow's sinks
publish to ``streams.records`` (the loader inserts them). It keeps no recovery
snapshots and has no scheduler or keyed exchange between its steps: it is what the same
code costs over the same two Kafka hops with no framework, the floor a hand-written
consumer would reach on the same machine (``bench/streams_latency.py`` runs both).

Run as ``python -m bench.streams_relay MODEL_PATH SINKS`` with the flow's ``TICKWAVE_*``
environment; SIGTERM stops it after the batch in hand, with everything published flushed.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterable
from types import FrameType

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from adapters.bus import consumer_config, resolve_bootstrap
from adapters.gcpause import start_gc_freezer
from bench.streams_latency import FileModelProvider, RegistryLookupProvider
from streams.app import production_sinks
from streams.connectors import Publisher, TopicSink
from streams.features import FeatureSpec
from streams.flow import BarConsequences, GroupLogic, GroupOutput, GroupState, SignalPublisher
from streams.inference import Inference
from tickwave.clock import Clock, SystemClock
from tickwave.config import Settings, StreamsSettings, load_settings
from tickwave.contracts import Message
from tickwave.modeling import ModelProvider, SignalRules
from tickwave.topics import TICKS, topic_name
from tickwave.validation import Rejection, ValidationRules, check_raw, dead_letter

BATCH = 2000  # messages taken per batch at most, as the flow's source


class RelayStep:
    """The flow's work on one batch of raw tick messages, in the caller's thread.

    Signals go to ``signals`` as they are decided (inside ``GroupLogic``, as in the
    flow); ``take`` returns what the flow's sinks would write to ``streams.records``.
    """

    def __init__(
        self,
        settings: StreamsSettings,
        provider: ModelProvider | None,
        signals: SignalPublisher,
        clock: Clock,
        rules: ValidationRules | None = None,
    ) -> None:
        """Validate with ``rules`` and fold into one group, serving ``provider``'s champion; ``clock`` as the flow's."""
        spec = FeatureSpec()
        inference = Inference(provider, spec.schema_hash, clock, settings.model_refresh_s)
        signal_rules = SignalRules(settings.entry_probability, settings.min_edge)
        consequences = BarConsequences(spec, inference, signal_rules, clock, signals)
        self.step = GroupLogic(GroupState(1), settings, clock, consequences)
        self.rules = rules or ValidationRules(max_tick_lead_ms=settings.max_tick_lead_ms)
        self.clock = clock

    def take(self, values: list[bytes]) -> list[Message]:
        """Fold in a batch; return its records: signals, ticks, dead letters, bars, features, predictions."""
        now_ms = self.clock.now_ms()
        checked = [check_raw(value, self.rules, now_ms) for value in values]
        rejected = [item for item in checked if isinstance(item, Rejection)]
        outputs, _retain = self.step.on_batch([item for item in checked if not isinstance(item, Rejection)])
        return self._records(outputs, rejected, now_ms)

    def finish(self) -> list[Message]:
        """Close every open bar, as the flow does at the end of a finite input; return the records."""
        outputs, _retain = self.step.on_eof()
        return self._records(outputs, [], self.clock.now_ms())

    @staticmethod
    def _records(outputs: Iterable[GroupOutput], rejected: list[Rejection], now_ms: int) -> list[Message]:
        records: list[Message] = [dead_letter(rejection, now_ms) for rejection in rejected]
        for output in outputs:
            records.extend(output.signals)
            records.extend(output.accepted)
            records.extend(dead_letter(rejection, now_ms) for rejection in output.rejected)
            records.extend(output.bars)
            records.extend(output.features)
            records.extend(output.predictions)
        return records


def relay(settings: Settings, model_path: str, sinks: str, stop: threading.Event) -> None:
    """Read ticks and publish signals until ``stop`` (``sinks``: "production" or "signals-only")."""
    publishers = production_sinks(settings)
    signals, records_sink = publishers.signals, publishers.ticks
    assert isinstance(signals, Publisher) and isinstance(records_sink, TopicSink)
    records = records_sink.publisher if sinks == "production" else None  # the flow's records publisher
    provider = RegistryLookupProvider(model_path, settings) if sinks == "production" else FileModelProvider(model_path)
    step = RelayStep(settings.streams, provider, signals, SystemClock())
    topic = topic_name(settings, TICKS)
    config = consumer_config(
        resolve_bootstrap(settings), "tickwave-relay-unused", "latency", **{"fetch.max.bytes": 16 * 1024 * 1024}
    )
    consumer = Consumer(config)
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in partitions])
    try:
        while not stop.is_set():
            first = consumer.poll(0.1)
            if first is None:
                continue
            batch = [message.value() for message in (first, *consumer.consume(BATCH - 1, 0)) if not message.error()]
            produced = step.take(batch)
            if records is not None:
                records.publish(produced)
    finally:
        signals.flush()
        if records is not None:
            records.flush()
        consumer.close()


def main() -> None:
    """``python -m bench.streams_relay MODEL_PATH SINKS``."""
    stop = threading.Event()

    def on_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_stop)
    start_gc_freezer(threading.Event())  # as the flow's processes do
    relay(load_settings(), sys.argv[1], sys.argv[2], stop)


if __name__ == "__main__":
    main()
