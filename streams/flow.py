"""The Bytewax dataflow: raw tick messages to bars, features, predictions and signals.

``build_flow`` takes its config, source, sinks and model provider, so tests run it with
``TestingSource``/``TestingSink`` and production with Kafka and the warehouse. Stream
logic lives in pure modules (``validate``, ``bars``, ``features``, ``inference``,
``signals``); this module only wires them, one step id each.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeGuard

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import Sink

from streams.bars import NEVER, BarState
from streams.features import FeatureSpec, FeatureState
from streams.inference import Inference
from streams.routing import GroupLayout
from streams.signals import signal_from
from tickwave.clock import Clock
from tickwave.config import StreamsSettings
from tickwave.contracts import Bar, DeadLetter, FeatureVector, Message, Prediction, Signal, Tick, encode
from tickwave.modeling import CHALLENGER, CHAMPION, ModelProvider, SignalRules
from tickwave.timeframes import SessionAlignment
from tickwave.validation import STEP_FAILED, Rejection, SpikeFilter, ValidationRules, check_raw, dead_letter

logger = logging.getLogger(__name__)


class SignalPublisher(Protocol):
    """Sends messages without waiting; ``flush`` returns once all are acknowledged (``connectors.Publisher``)."""

    def publish(self, messages: Iterable[Message]) -> None:
        """Send ``messages``."""

    def flush(self) -> None:
        """Wait for every message sent so far to be acknowledged (raise if one was not)."""


@dataclass(frozen=True)
class FlowSinks:
    """Where each output of the flow goes; every item arrives as ``(key, value)``.

    The key is the symbol (the state group's key for the accepted ticks), so
    partitioned sinks can route by it.
    """

    ticks: Sink[tuple[str, list[Tick]]]  # accepted ticks, one list per state group and batch (key: the group)
    quarantine: Sink[tuple[str, DeadLetter]]  # the warehouse quarantine table
    dead_letters: Sink[tuple[str, DeadLetter]]  # the ticks.dlq topic
    bars: Sink[tuple[str, Bar]]
    features: Sink[tuple[str, FeatureVector]]
    predictions: Sink[tuple[str, Prediction]]
    # The signals topic: a Bytewax sink, or a publisher that the per-group step sends the
    # signals through the moment they are decided (production, see ``BarConsequences``).
    signals: Sink[tuple[str, Signal]] | SignalPublisher
    signal_records: Sink[tuple[str, Signal]]  # the warehouse signals table


@dataclass
class GroupOutput:
    """What one batch of one group's ticks produced (its symbols' items interleaved, each in order)."""

    accepted: list[Tick] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    features: list[FeatureVector] = field(default_factory=list)
    predictions: list[Prediction] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)


@dataclass
class SymbolState:
    """Spike filter, open bars and indicator state per timeframe of one symbol."""

    symbol: str
    spike_filter: SpikeFilter
    bars: BarState
    features: dict[str, FeatureState] = field(default_factory=dict)


@dataclass
class GroupState:
    """The symbols of one state group (one Bytewax key), and the layout of the groups (the recovery snapshot)."""

    groups: int
    symbols: dict[str, SymbolState] = field(default_factory=dict)
    partitions: int = 0  # a class default: snapshots written before partition-aligned groups read 0

    @property
    def layout(self) -> GroupLayout:
        """How the symbols were split into groups when this state was made."""
        return GroupLayout(self.groups, self.partitions)


@dataclass
class BarConsequences:
    """What closed bars lead to: their feature vectors, the champions' predictions and signals, the challengers' scores.

    Computed in the per-group step itself rather than in steps of their own: every
    Bytewax step and keyed exchange between a closing tick and its signal cost ~0.5-1 ms
    at p50 and far more at p99 (``bench/streams_latency.py``), which is the budget. The
    bars a batch closes are predicted in one model call, and with a ``publisher`` their
    signals are sent together the moment they are decided, not after the sinks' steps
    ran; ``GroupLogic.snapshot`` flushes them, so a committed epoch's signals are
    acknowledged.
    """

    spec: FeatureSpec
    inference: Inference
    signal_rules: SignalRules
    clock: Clock  # stamps the signals' created_at_ms
    publisher: SignalPublisher | None = None

    def follow(self, symbols: dict[str, SymbolState], output: GroupOutput) -> None:
        """Append the features, predictions and signals of ``output.bars`` to ``output``.

        What raises on one bar, vector or prediction becomes a dead letter of its own
        (``step_failed``) and the rest go on; a bar whose features raised starts its
        indicators over, since they may hold half its update.
        """
        for bar in output.bars:
            features = symbols[bar.symbol].features
            state = features.get(bar.timeframe)
            if state is None:
                state = features[bar.timeframe] = FeatureState(self.spec)
            try:
                vector = state.update(bar)
            except Exception as error:  # one bar's failure is its dead letter, the flow goes on
                features.pop(bar.timeframe, None)
                output.rejected.append(step_failed("features", error, bar))
                continue
            if vector is not None:
                output.features.append(vector)
        predictions = self._predicted(output, output.features, CHAMPION)
        if predictions:
            now_ms = self.clock.now_ms()
            signals = []
            for prediction in predictions:
                try:
                    signals.append(signal_from(prediction, self.signal_rules, now_ms))
                except Exception as error:  # as above
                    output.rejected.append(step_failed("signals", error, prediction))
            if self.publisher is not None:
                self.publisher.publish(signals)
            output.predictions.extend(predictions)
            output.signals.extend(signals)
        # The challengers score the same vectors after the champions' signals are sent: stored, never traded.
        output.predictions.extend(self._predicted(output, output.features, CHALLENGER))

    def _predicted(self, output: GroupOutput, vectors: list[FeatureVector], role: str) -> list[Prediction]:
        # The predictions of ``vectors`` by the models of ``role``; if the call raises, each vector one by one.
        try:
            return self.inference.predict_many(vectors, role=role)
        except Exception:  # retried vector by vector below, the failing ones dead-lettered
            predictions: list[Prediction] = []
            for vector in vectors:
                try:
                    predictions.extend(self.inference.predict_many([vector], role=role))
                except Exception as error:
                    output.rejected.append(step_failed("inference", error, vector))
            return predictions


STALL_MS = 1000  # woken this much later than asked: the flow was held up, not the market quiet


class GroupLogic(StatefulBatchLogic[Tick, GroupOutput, bytes]):
    """Per-group step: each symbol's spike filter and bars; closes a quiet symbol's bars on wall-clock time.

    One key holds several symbols (``streams.routing.GroupLayout``) so that the bars they close
    in one batch cost one model call and one publish: at a second's boundary
    all the symbols close together, and one by one each waited for every symbol ahead
    of it in Bytewax's key order.

    Wall-clock closing follows the idea of Bytewax's ``EventClock``, but only after real
    idleness: once a symbol has had no ticks for ``idle_close_ms`` of wall time, its
    event time advances by the wall time elapsed since its last tick arrived. A replay
    running at full speed never idles that long, so it is never cut short; a live
    symbol that goes quiet still gets its bars closed.
    """

    def __init__(
        self,
        state: GroupState,
        settings: StreamsSettings,
        clock: Clock,
        consequences: BarConsequences | None = None,
        alignment: SessionAlignment | None = None,
    ) -> None:
        """Wrap ``state``; each symbol's idle anchor starts now (never restored: a restart is not idleness)."""
        self.state = state
        self.settings = settings
        self.alignment = alignment  # where H4 and D1 bars start (tickwave.timeframes)
        self.clock = clock  # the wall clock that closes a quiet symbol's bars
        self.consequences = consequences
        now_ms = clock.now_ms()
        # symbol -> (wall ms of its last batch, its newest event ms then)
        self.anchors = {symbol: (now_ms, symbol_state.bars.newest_ms) for symbol, symbol_state in state.symbols.items()}
        self.wake_ms = NEVER  # when notify_at last asked to be woken

    def on_batch(self, values: list[Tick]) -> tuple[Iterable[GroupOutput], bool]:
        """Fold in a batch of the group's ticks."""
        output = GroupOutput()
        symbols = self.state.symbols
        state: SymbolState | None = None
        for tick in values:
            if state is None or state.symbol != tick.symbol:
                state = symbols.get(tick.symbol) or self._new_symbol(tick.symbol)
            try:
                reason = state.spike_filter.check(tick)
                if reason is not None:
                    output.rejected.append(Rejection(reason, encode(tick), tick.symbol, "spike"))
                    continue
                closed, status = state.bars.on_tick(tick)
            except Exception as error:  # the tick is the dead letter, the flow goes on
                output.rejected.append(step_failed("bars", error, tick))
                continue
            if status == "late":
                reason = f"late: {state.bars.watermark_ms - tick.time_ms} ms behind the watermark"
                output.rejected.append(Rejection(reason, encode(tick), tick.symbol, "late"))
            elif status == "accepted":
                output.accepted.append(tick)
                output.bars.extend(closed)
        now_ms = self.clock.now_ms()
        for symbol in {tick.symbol for tick in values}:
            self.anchors[symbol] = (now_ms, symbols[symbol].bars.newest_ms)
        return [self._followed(output)], StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[Iterable[GroupOutput], bool]:
        """Advance each quiet symbol's event time with the wall clock and close what that closes.

        Woken much later than asked (by over ``STALL_MS`` and half ``idle_close_ms``), the
        flow itself was held up (a restart's catch-up waiting on the warehouse, a paused
        process), not the market: the symbols'
        ticks may be queued unread, so the wait counts as no idleness. The short chaos run
        found this: a restarted flow re-reading the topic stalled while the warehouse was
        frozen, was woken past 3 s, closed a minute early and re-stored its bar without its
        last ticks (late).
        """
        now_ms = self.clock.now_ms()
        if now_ms - self.wake_ms > max(STALL_MS, self.settings.idle_close_ms // 2):
            self.anchors = {symbol: (now_ms, event_ms) for symbol, (_wall_ms, event_ms) in self.anchors.items()}
            return [], StatefulBatchLogic.RETAIN
        output = GroupOutput()
        for symbol, (anchor_wall_ms, anchor_event_ms) in self.anchors.items():
            idle_ms = now_ms - anchor_wall_ms
            if idle_ms >= self.settings.idle_close_ms and anchor_event_ms >= 0:
                bars = self.state.symbols[symbol].bars
                _close(output, symbol, lambda: bars.advance_to(anchor_event_ms + idle_ms, symbol))  # noqa: B023
        has_output = output.bars or output.rejected
        return ([self._followed(output)] if has_output else []), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[GroupOutput], bool]:
        """Close every open bar at the end of a finite input."""
        output = GroupOutput()
        for symbol, state in self.state.symbols.items():
            _close(output, symbol, lambda: state.bars.flush(symbol))  # noqa: B023
        output = self._followed(output)
        self._flush_published()
        return [output], StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        """Wake when idleness would advance a symbol's event time past its earliest open window's close."""
        if not self.settings.close_on_wall_clock:
            return None
        wake_ms = NEVER
        for symbol, (anchor_wall_ms, anchor_event_ms) in self.anchors.items():
            bars = self.state.symbols[symbol].bars
            if bars.next_close_ms >= NEVER or anchor_event_ms < 0:
                continue
            needed_ms = bars.next_close_ms + bars.wait_ms - anchor_event_ms
            wake_ms = min(wake_ms, anchor_wall_ms + max(self.settings.idle_close_ms, needed_ms))
        self.wake_ms = wake_ms
        return None if wake_ms >= NEVER else datetime.fromtimestamp(wake_ms / 1000, tz=UTC)

    def _new_symbol(self, symbol: str) -> SymbolState:
        settings = self.settings
        spike_filter = SpikeFilter.from_settings(settings)
        state = self.state.symbols[symbol] = SymbolState(
            symbol, spike_filter, BarState(tuple(settings.timeframes), settings.late_wait_ms, self.alignment)
        )
        # Where each symbol runs, once per symbol and process (one process, the default, says nothing).
        level = logging.INFO if self.state.partitions else logging.DEBUG
        logger.log(level, "streams: %s is folded in process %d (%s)", symbol, os.getpid(), self.state.layout.describe())
        return state

    def _followed(self, output: GroupOutput) -> GroupOutput:
        if self.consequences is not None and output.bars:
            self.consequences.follow(self.state.symbols, output)
        return output

    def snapshot(self) -> bytes:
        """Return the state, pickled, for the recovery store (signals sent so far acknowledged first).

        Pickled rather than deep-copied: a deep copy of one symbol's state took ~1 ms (up
        to 11 ms) at 500 ticks/s per symbol, for every symbol at every epoch, while the
        flow's input waited.
        """
        self._flush_published()
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)

    def _flush_published(self) -> None:
        if self.consequences is not None and self.consequences.publisher is not None:
            self.consequences.publisher.flush()


def group_state(layout: GroupLayout, resume: bytes | None) -> GroupState:
    """A group's state from its snapshot, or a new one.

    Raises:
        ValueError: for a snapshot of another layout: written with another
            ``streams.symbol_groups``, process count or partition count, or by a flow
            that kept one key per symbol. Its symbols would land in other groups and
            their open bars would be lost; the message says what to do.
    """
    if resume is None:
        return GroupState(layout.groups, partitions=layout.partitions)
    state = pickle.loads(resume) if isinstance(resume, bytes) else resume  # noqa: S301 - the flow's own recovery store
    if not isinstance(state, GroupState):
        raise ValueError(
            "the recovery store holds one state per symbol, written before symbols were grouped: "
            "let that flow finish, or start with an empty recovery store (<state dir>/data/streams/recovery)"
        )
    if state.layout != layout:
        old = state.layout
        back = (
            f"run {old.groups} processes with TICKWAVE_STREAMS_SYMBOL_GROUPS=0 on the same ticks topic"
            if old.partitions
            else f"set it back (TICKWAVE_STREAMS_SYMBOL_GROUPS={old.groups})"
        )
        raise ValueError(
            f"the recovery store was written with {old.describe()}, not {layout.describe()}: "
            f"{back}, or start with an empty recovery store (<state dir>/data/streams/recovery)"
        )
    return state


def build_flow(
    settings: StreamsSettings,
    source: Source[bytes],
    sinks: FlowSinks,
    provider: ModelProvider | None = None,
    rules: ValidationRules | None = None,
    spec: FeatureSpec | None = None,
    *,
    clock: Clock,
    flow_id: str = "tickwave_streams",
    layout: GroupLayout | None = None,
    alignment: SessionAlignment | None = None,
) -> Dataflow:
    """Build the dataflow from raw tick messages to signals (``layout``: ``settings.symbol_groups`` by default).

    ``clock`` is the wall clock: the time checks of validation, the wall-clock closing of
    quiet symbols' bars, and the stamps of predictions, signals and dead letters.
    ``alignment`` starts the H4 and D1 bars at the trading day's rollover (``Settings.bar_alignment``).
    """
    rules = rules or ValidationRules(max_tick_lead_ms=settings.max_tick_lead_ms)
    spec = spec or FeatureSpec()
    signal_rules = SignalRules(settings.entry_probability, settings.min_edge)
    flow = Dataflow(flow_id)

    raw = op.input("ticks_in", flow, source)
    # raw: bytes (one Kafka message value)

    checked = op.flat_map_batch("validate", raw, lambda batch: _check_batch(batch, rules, clock.now_ms()))
    # checked: Tick | Rejection
    valid = op.branch("split_valid", checked, _is_tick)
    invalid = op.map("key_invalid", valid.falses, _keyed_rejection)
    # invalid: (symbol or "", Rejection)

    layout = layout or GroupLayout.for_run(settings.symbol_groups, workers=1, partitions=0)
    group_of: dict[str, str] = {}  # symbol -> group key, worked out once per symbol rather than once per tick

    def group_key(tick: Tick) -> str:
        key = group_of.get(tick.symbol)
        if key is None:
            key = group_of[tick.symbol] = layout.key(tick.symbol)
        return key

    by_group = op.key_on("key_by_group", valid.trues, group_key)
    # by_group: (group key, Tick)

    inference = Inference(provider, spec.schema_hash, clock, settings.model_refresh_s)
    publisher = None if isinstance(sinks.signals, Sink) else sinks.signals
    consequences = BarConsequences(spec, inference, signal_rules, clock, publisher)

    def build_group_logic(resume: bytes | None) -> GroupLogic:
        return GroupLogic(group_state(layout, resume), settings, clock, consequences, alignment)

    outputs = op.stateful_batch("bars", by_group, build_group_logic)
    # outputs: (group key, GroupOutput): ticks, rejections, closed bars and what each bar led to

    signals = op.flat_map("signals", outputs, lambda item: [(signal.symbol, signal) for signal in item[1].signals])
    # signals: (symbol, Signal). Built first: Timely runs a step's operators in the order
    # they were built, so the signals topic is written before any other output (unless
    # the bars step already published them).
    if isinstance(sinks.signals, Sink):
        op.output("signals_out", signals, sinks.signals)
    op.output("signal_records_out", signals, sinks.signal_records)
    accepted = op.filter_map_value("accepted_ticks", outputs, lambda out: out.accepted or None)
    # accepted: (group key, list[Tick])
    op.output("ticks_out", accepted, sinks.ticks)
    rejected = op.flat_map("rejected_ticks", outputs, lambda item: [(r.symbol, r) for r in item[1].rejected])
    # rejected: (symbol, Rejection)
    all_rejected = op.merge("all_rejected", invalid, rejected)
    dead_letters = op.map_value("dead_letters", all_rejected, lambda rejection: dead_letter(rejection, clock.now_ms()))
    # dead_letters: (symbol or "", DeadLetter)
    op.output("quarantine_out", dead_letters, sinks.quarantine)
    op.output("dead_letters_out", dead_letters, sinks.dead_letters)

    bars = op.flat_map("closed_bars", outputs, lambda item: [(bar.symbol, bar) for bar in item[1].bars])
    # bars: (symbol, Bar)
    op.output("bars_out", bars, sinks.bars)
    vectors = op.flat_map("feature_vectors", outputs, lambda item: [(v.symbol, v) for v in item[1].features])
    # vectors: (symbol, FeatureVector), warm or not (warm-up values are None)
    op.output("features_out", vectors, sinks.features)
    predictions = op.flat_map("predictions", outputs, lambda item: [(p.symbol, p) for p in item[1].predictions])
    # predictions: (symbol, Prediction)
    op.output("predictions_out", predictions, sinks.predictions)
    return flow


_step_failures = itertools.count(1)  # records dead-lettered so in this process (a log throttle)


def step_failed(step: str, error: Exception, record: Message | bytes, symbol: str = "") -> Rejection:
    """The dead letter of a record that step ``step`` raised ``error`` on (the flow goes on without it)."""
    failures = next(_step_failures)
    if failures <= 10 or failures % 1000 == 0:  # the first ten, then every thousandth
        logger.warning("streams: step %s raised on a record, dead-lettered (%d so far): %r", step, failures, error)
    raw = record if isinstance(record, bytes) else encode(record)
    return Rejection(
        f"{step}: {type(error).__name__}: {error}", raw, symbol or getattr(record, "symbol", ""), STEP_FAILED
    )


def _close(output: GroupOutput, symbol: str, close: Callable[[], list[Bar]]) -> None:
    # Close a symbol's windows into ``output``; what raises is a dead letter naming the symbol.
    try:
        output.bars.extend(close())
    except Exception as error:  # no record to blame: the symbol's close is the dead letter
        output.rejected.append(step_failed("bars", error, symbol.encode(), symbol))


def _is_tick(item: Tick | Rejection) -> TypeGuard[Tick]:
    return isinstance(item, Tick)


def _keyed_rejection(item: Tick | Rejection) -> tuple[str, Rejection]:
    # The falses of split_valid: what check_raw did not accept is a Rejection.
    if isinstance(item, Tick):
        raise TypeError(f"split_valid sent the accepted tick {item.tick_id} to the rejections")
    return item.symbol, item


def _check_batch(batch: list[bytes], rules: ValidationRules, now_ms: int) -> list[Tick | Rejection]:
    checked: list[Tick | Rejection] = []
    for raw in batch:
        try:
            checked.append(check_raw(raw, rules, now_ms))
        except Exception as error:  # the message is the dead letter, the flow goes on
            checked.append(step_failed("validate", error, raw))
    return checked
