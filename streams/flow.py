"""The Bytewax dataflow: raw tick messages to bars, features, predictions and signals.

``build_flow`` takes its config, source, sinks and model provider, so tests run it with
``TestingSource``/``TestingSink`` and production with Kafka and the warehouse. Stream
logic lives in pure modules (``validate``, ``bars``, ``features``, ``inference``,
``signals``); this module only wires them, one step id each.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import Sink

from streams.bars import NEVER, BarState
from streams.features import FeatureSpec, FeatureState
from streams.inference import Inference, ModelProvider
from streams.signals import SignalRules, signal_from
from streams.validate import Rejection, SpikeFilter, ValidationRules, check_raw, dead_letter
from tickwave.config import StreamsSettings
from tickwave.contracts import Bar, DeadLetter, FeatureVector, Message, Prediction, Signal, Tick, encode

ClockMs = Callable[[], int]


def wall_clock_ms() -> int:
    """Milliseconds since the epoch, UTC."""
    return time.time_ns() // 1_000_000


class SignalPublisher(Protocol):
    """Sends messages without waiting; ``flush`` returns once all are acknowledged (``connectors.Publisher``)."""

    def publish(self, messages: Iterable[Message]) -> None:
        """Send ``messages``."""

    def flush(self) -> None:
        """Wait for every message sent so far to be acknowledged (raise if one was not)."""


@dataclass(frozen=True)
class FlowSinks:
    """Where each output of the flow goes; every item arrives as ``(key, value)``.

    The key is the symbol (``"EURUSD:1m"`` for per-series outputs), so partitioned
    sinks can route by it.
    """

    ticks: Sink[tuple[str, list[Tick]]]  # accepted ticks, one list per symbol and batch
    quarantine: Sink[tuple[str, DeadLetter]]  # the warehouse quarantine table
    dead_letters: Sink[tuple[str, DeadLetter]]  # the ticks.dlq topic
    bars: Sink[tuple[str, Bar]]
    features: Sink[tuple[str, FeatureVector]]
    predictions: Sink[tuple[str, Prediction]]
    # The signals topic: a Bytewax sink, or a publisher that the per-symbol step sends each
    # signal through the moment it is decided (production, see ``BarConsequences``).
    signals: Sink[tuple[str, Signal]] | SignalPublisher
    signal_records: Sink[tuple[str, Signal]]  # the warehouse signals table


@dataclass
class SymbolOutput:
    """What one batch of one symbol's ticks produced."""

    accepted: list[Tick] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    features: list[FeatureVector] = field(default_factory=list)
    predictions: list[Prediction] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)


@dataclass
class SymbolState:
    """Spike filter, open bars and indicator state per timeframe of one symbol (the recovery snapshot)."""

    symbol: str
    spike_filter: SpikeFilter
    bars: BarState
    features: dict[str, FeatureState] = field(default_factory=dict)


@dataclass
class BarConsequences:
    """What a closed bar leads to: its feature vector, then the champion's prediction and the signal.

    Computed in the per-symbol step itself rather than in steps of their own: every
    Bytewax step and keyed exchange between a closing tick and its signal cost ~0.5-1 ms
    at p50 and far more at p99 (``bench/streams_latency.py``), which is the budget. With
    a ``publisher``, each signal is sent the moment it is decided, not after the step
    has processed every other symbol of the batch and the sink's steps ran (~2 ms at p50
    when ten symbols close together); ``SymbolLogic.snapshot`` flushes it, so a
    committed epoch's signals are acknowledged.
    """

    spec: FeatureSpec
    inference: Inference
    signal_rules: SignalRules
    clock_ms: ClockMs
    publisher: SignalPublisher | None = None

    def follow(self, features: dict[str, FeatureState], output: SymbolOutput) -> None:
        """Append the features, predictions and signals of ``output.bars`` to ``output``."""
        for bar in output.bars:
            state = features.get(bar.timeframe)
            if state is None:
                state = features[bar.timeframe] = FeatureState(self.spec)
            vector = state.update(bar)
            if vector is None:
                continue
            output.features.append(vector)
            prediction = self.inference.predict(vector)
            if prediction is None:
                continue
            output.predictions.append(prediction)
            signal = signal_from(prediction, self.signal_rules, self.clock_ms())
            if self.publisher is not None:
                self.publisher.publish((signal,))
            output.signals.append(signal)


class SymbolLogic(StatefulBatchLogic[Tick, SymbolOutput, bytes]):
    """Per-symbol step: spike filter, then bars; closes a quiet symbol's bars on wall-clock time.

    Wall-clock closing follows the idea of Bytewax's ``EventClock``, but only after real
    idleness: once a symbol has had no ticks for ``idle_close_ms`` of wall time, its
    event time advances by the wall time elapsed since its last tick arrived. A replay
    running at full speed never idles that long, so it is never cut short; a live
    symbol that goes quiet still gets its bars closed.
    """

    def __init__(
        self,
        state: SymbolState,
        settings: StreamsSettings,
        clock_ms: ClockMs,
        consequences: BarConsequences | None = None,
    ) -> None:
        """Wrap ``state``; the idle anchor starts now (never restored: a restart is not idleness)."""
        self.state = state
        self.settings = settings
        self.clock_ms = clock_ms
        self.consequences = consequences
        self.anchor_wall_ms = clock_ms()
        self.anchor_event_ms = state.bars.newest_ms

    def on_batch(self, values: list[Tick]) -> tuple[Iterable[SymbolOutput], bool]:
        """Fold in a batch of one symbol's ticks."""
        output = SymbolOutput()
        state = self.state
        if not state.symbol and values:
            state.symbol = values[0].symbol  # the builder is not told its key
        for tick in values:
            reason = state.spike_filter.check(tick)
            if reason is not None:
                output.rejected.append(Rejection(reason, encode(tick), tick.symbol, "spike"))
                continue
            closed, status = state.bars.on_tick(tick)
            if status == "late":
                reason = f"late: {state.bars.watermark_ms - tick.time_ms} ms behind the watermark"
                output.rejected.append(Rejection(reason, encode(tick), tick.symbol, "late"))
            elif status == "accepted":
                output.accepted.append(tick)
                output.bars.extend(closed)
        self.anchor_wall_ms, self.anchor_event_ms = self.clock_ms(), state.bars.newest_ms
        return [self._followed(output)], StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[Iterable[SymbolOutput], bool]:
        """Advance a quiet symbol's event time with the wall clock and close what that closes."""
        idle_ms = self.clock_ms() - self.anchor_wall_ms
        if idle_ms < self.settings.idle_close_ms or self.anchor_event_ms < 0:
            return [], StatefulBatchLogic.RETAIN
        closed = self.state.bars.advance_to(self.anchor_event_ms + idle_ms, self.state.symbol)
        return ([self._followed(SymbolOutput(bars=closed))] if closed else []), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[SymbolOutput], bool]:
        """Close every open bar at the end of a finite input."""
        output = self._followed(SymbolOutput(bars=self.state.bars.flush(self.state.symbol)))
        self._flush_published()
        return [output], StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        """Wake when idleness would advance event time past the earliest open window's close."""
        bars = self.state.bars
        if not self.settings.close_on_wall_clock or bars.next_close_ms >= NEVER or self.anchor_event_ms < 0:
            return None
        needed_ms = bars.next_close_ms + bars.wait_ms - self.anchor_event_ms
        wake_ms = self.anchor_wall_ms + max(self.settings.idle_close_ms, needed_ms)
        return datetime.fromtimestamp(wake_ms / 1000, tz=UTC)

    def _followed(self, output: SymbolOutput) -> SymbolOutput:
        if self.consequences is not None and output.bars:
            self.consequences.follow(self.state.features, output)
        return output

    def snapshot(self) -> bytes:
        """Return the state, pickled, for the recovery store (signals sent so far acknowledged first).

        Pickled rather than deep-copied: a deep copy of one symbol's state took ~1 ms (up
        to 11 ms) at 500 ticks/s per symbol, for every symbol at every epoch, while the
        flow's input waited. A store written with plain states still resumes.
        """
        self._flush_published()
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)

    def _flush_published(self) -> None:
        if self.consequences is not None and self.consequences.publisher is not None:
            self.consequences.publisher.flush()


def symbol_state(settings: StreamsSettings, resume: bytes | SymbolState | None) -> SymbolState:
    """A symbol's state from its snapshot (pickled; a plain state from older stores), or a new one."""
    if isinstance(resume, bytes):
        resume = pickle.loads(resume)  # noqa: S301 - the flow's own recovery store
    if resume is not None:
        return resume
    spike_filter = SpikeFilter(settings.spike_threshold_bps, confirm_after=settings.spike_confirm_ticks)
    return SymbolState("", spike_filter, BarState(tuple(settings.timeframes), settings.late_wait_ms))


def build_flow(
    settings: StreamsSettings,
    source: Source[bytes],
    sinks: FlowSinks,
    provider: ModelProvider | None = None,
    rules: ValidationRules | None = None,
    spec: FeatureSpec | None = None,
    clock_ms: ClockMs = wall_clock_ms,
    flow_id: str = "tickwave_streams",
) -> Dataflow:
    """Build the dataflow from raw tick messages to signals."""
    rules = rules or ValidationRules(max_future_ms=settings.max_future_ms)
    spec = spec or FeatureSpec()
    signal_rules = SignalRules(settings.entry_probability, settings.min_edge)
    flow = Dataflow(flow_id)

    raw = op.input("ticks_in", flow, source)
    # raw: bytes (one Kafka message value)

    checked = op.flat_map_batch("validate", raw, lambda batch: _check_batch(batch, rules, clock_ms()))
    # checked: Tick | Rejection
    valid = op.branch("split_valid", checked, lambda item: isinstance(item, Tick))
    invalid = op.key_on("key_invalid", valid.falses, lambda rejection: rejection.symbol)
    # invalid: (symbol or "", Rejection)

    by_symbol = op.key_on("key_by_symbol", valid.trues, lambda tick: tick.symbol)
    # by_symbol: (symbol, Tick)

    inference = Inference(provider, spec.schema_hash, settings.model_refresh_s, clock_ms)
    publisher = None if isinstance(sinks.signals, Sink) else sinks.signals
    consequences = BarConsequences(spec, inference, signal_rules, clock_ms, publisher)

    def build_symbol_logic(resume: bytes | SymbolState | None) -> SymbolLogic:
        return SymbolLogic(symbol_state(settings, resume), settings, clock_ms, consequences)

    outputs = op.stateful_batch("bars", by_symbol, build_symbol_logic)
    # outputs: (symbol, SymbolOutput): ticks, rejections, closed bars and what each bar led to

    signals = op.flat_map_value("signals", outputs, lambda out: out.signals)
    # signals: (symbol, Signal). Built first: Timely runs a step's operators in the order
    # they were built, so the signals topic is written before any other output (unless
    # the bars step already published them).
    if isinstance(sinks.signals, Sink):
        op.output("signals_out", signals, sinks.signals)
    op.output("signal_records_out", signals, sinks.signal_records)
    accepted = op.filter_map_value("accepted_ticks", outputs, lambda out: out.accepted or None)
    # accepted: (symbol, list[Tick])
    op.output("ticks_out", accepted, sinks.ticks)
    rejected = op.flat_map_value("rejected_ticks", outputs, lambda out: out.rejected)
    # rejected: (symbol, Rejection)
    all_rejected = op.merge("all_rejected", invalid, rejected)
    dead_letters = op.map_value("dead_letters", all_rejected, lambda rejection: dead_letter(rejection, clock_ms()))
    # dead_letters: (symbol or "", DeadLetter)
    op.output("quarantine_out", dead_letters, sinks.quarantine)
    op.output("dead_letters_out", dead_letters, sinks.dead_letters)

    bars = op.flat_map_value("closed_bars", outputs, lambda out: out.bars)
    # bars: (symbol, Bar)
    op.output("bars_out", bars, sinks.bars)
    vectors = op.flat_map_value("feature_vectors", outputs, lambda out: out.features)
    # vectors: (symbol, FeatureVector), warm or not (warm-up values are None)
    op.output("features_out", vectors, sinks.features)
    predictions = op.flat_map_value("predictions", outputs, lambda out: out.predictions)
    # predictions: (symbol, Prediction)
    op.output("predictions_out", predictions, sinks.predictions)
    return flow


def _check_batch(batch: list[bytes], rules: ValidationRules, now_ms: int) -> list[Tick | Rejection]:
    return [check_raw(raw, rules, now_ms) for raw in batch]
