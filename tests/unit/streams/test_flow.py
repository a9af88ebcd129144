"""The dataflow end to end in one process, with TestingSource / TestingSink."""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import msgspec
import pytest
from bytewax.testing import TestingSink, TestingSource, run_main

from streams.bars import BarState
from streams.features import FeatureSpec
from streams.flow import (
    BarConsequences,
    FlowSinks,
    GroupLogic,
    GroupState,
    SymbolState,
    build_flow,
    group_state,
)
from streams.inference import Inference
from streams.routing import GroupLayout
from tests.unit.streams.tiny_model import StaticProvider, tiny_artifact
from tickwave.clock import ManualClock
from tickwave.config import StreamsSettings
from tickwave.contracts import Bar, DeadLetter, FeatureVector, Message, Prediction, Tick, encode
from tickwave.modeling import CHALLENGER, CHAMPION, SignalRules
from tickwave.validation import SpikeFilter, ValidationRules

T0 = 1_700_000_040_000  # a minute boundary
NOW_MS = T0 + 3_600_000
SETTINGS = StreamsSettings(timeframes=("1s", "1m"), late_wait_ms=500, close_on_wall_clock=False, model_refresh_s=0.01)
ONE = GroupLayout(1)  # one group holds every symbol: one process, the default


def stream(minutes: int = 55) -> list[Tick]:
    """Two symbols, a tick every 250 ms each, a gentle deterministic walk."""
    ticks = []
    for index in range(minutes * 240):
        for symbol, base in (("EURUSD", 1.085), ("USDJPY", 151.25)):
            wiggle = ((index * 7919) % 13 - 6) * 1e-5 * base
            mid = base * (1 + 1e-4 * ((index // 40) % 7)) + wiggle
            ticks.append(
                Tick(
                    symbol=symbol,
                    time_ms=T0 + index * 250,
                    seq=0,
                    bid=mid - base * 1e-5,
                    ask=mid + base * 1e-5,
                    volume=1.0,
                )
            )
    return ticks


OUTPUTS = tuple(FlowSinks.__dataclass_fields__)


def run_flow(raw: list[Any], provider: StaticProvider | None) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {
        name: []
        for name in (
            "ticks",
            "quarantine",
            "dead_letters",
            "bars",
            "features",
            "predictions",
            "signals",
            "signal_records",
        )
    }
    sinks = FlowSinks(**{name: TestingSink(items) for name, items in out.items()})
    rules = ValidationRules(known_symbols=frozenset({"EURUSD", "USDJPY"}))
    flow = build_flow(SETTINGS, TestingSource(raw, batch_size=64), sinks, provider, rules, clock=ManualClock(NOW_MS))
    run_main(flow)
    return unkey(out)


def unkey(out: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Drop the routing keys; flatten the per-batch tick lists."""
    values = {name: [value for _key, value in items] for name, items in out.items()}
    values["ticks"] = [tick for batch in values["ticks"] for tick in batch]
    return values


@pytest.fixture(scope="module")
def result() -> dict[str, list[Any]]:
    ticks = stream()
    raw = [encode(tick) for tick in ticks]
    spike = msgspec.structs.replace(ticks[2001], time_ms=ticks[2001].time_ms + 1, bid=2.0, ask=2.0001)
    late = msgspec.structs.replace(ticks[3000], time_ms=ticks[3000].time_ms - 5_000, seq=1)
    bad = [b"not json", b'{"type":"tick.v1"}', encode(msgspec.structs.replace(ticks[5], symbol="XAUUSD"))]
    raw[2002:2002] = [encode(spike)]
    raw[3002:3002] = [encode(late)]
    raw[100:100] = bad
    raw[4001:4001] = [raw[4000]]  # a message redelivered within the wait: counted once
    return run_flow(raw, StaticProvider(tiny_artifact(FeatureSpec(), timeframe="1m")))


def test_flow_when_stream_has_bad_late_spike_and_duplicate_then_each_quarantined_with_reason(
    result: dict[str, list[Any]],
) -> None:
    reasons = [dead.reason for dead in result["quarantine"]]
    checks = sorted(reason.split(":")[0] for reason in reasons)

    assert checks == ["contract", "contract", "late", "spike", "unknown_symbol"]
    assert result["dead_letters"] == result["quarantine"]
    assert all(isinstance(dead, DeadLetter) and dead.raw for dead in result["quarantine"])
    assert "unknown_symbol: 'XAUUSD' is not in [symbols]" in reasons
    assert result["signal_records"] == result["signals"]
    assert len(result["ticks"]) == len(stream())  # every good tick kept, the duplicate once


def test_flow_when_minutes_of_ticks_then_exact_bar_counts(result: dict[str, list[Any]]) -> None:
    bars: list[Bar] = result["bars"]
    one_minute = [bar for bar in bars if bar.timeframe == "1m"]
    one_second = [bar for bar in bars if bar.timeframe == "1s"]

    assert len(one_minute) == 2 * 55
    assert len(one_second) == 2 * 55 * 60
    assert all(bar.tick_count == 240 for bar in one_minute)
    assert sum(bar.tick_count for bar in one_second) == len(result["ticks"])


def test_flow_when_1m_model_loaded_then_prediction_and_signal_per_warm_1m_vector_only(
    result: dict[str, list[Any]],
) -> None:
    warm = [vector for vector in result["features"] if vector.is_warm]
    warm_1m = [vector for vector in warm if vector.timeframe == "1m"]

    assert len(result["features"]) == len(result["bars"])
    assert len(warm) == 2 * (55 * 60 - 49) + 2 * (55 - 49)  # the 1 s vectors are warm too, and not scored
    assert len(warm_1m) == 2 * (55 - 49)
    assert sorted((p.symbol, p.bar_start_ms) for p in result["predictions"]) == sorted(
        (vector.symbol, vector.bar_start_ms) for vector in warm_1m
    )
    assert {p.timeframe for p in result["predictions"]} == {s.timeframe for s in result["signals"]} == {"1m"}
    assert len(result["signals"]) == len({signal.signal_id for signal in result["signals"]}) == len(warm_1m)
    assert {p.model_id for p in result["predictions"]} == {"tiny"}


def test_flow_when_champions_on_two_timeframes_and_one_symbol_then_each_scores_only_its_own() -> None:
    raw = [encode(tick) for tick in stream(minutes=52)]
    spec = FeatureSpec()
    provider = StaticProvider(
        tiny_artifact(spec, version=1, timeframe="1m"),
        tiny_artifact(spec, version=7, timeframe="1s", symbols=("USDJPY",)),
    )

    out = run_flow(raw, provider)

    scored = {(p.model_version, p.timeframe, p.symbol) for p in out["predictions"]}
    warm = [v for v in out["features"] if v.is_warm]
    assert scored == {(1, "1m", "EURUSD"), (1, "1m", "USDJPY"), (7, "1s", "USDJPY")}
    assert len(out["predictions"]) == sum(
        1 for v in warm if v.timeframe == "1m" or (v.timeframe == "1s" and v.symbol == "USDJPY")
    )


def test_flow_when_model_declares_no_timeframe_then_refused() -> None:
    raw = [encode(tick) for tick in stream(minutes=2)]
    undeclared = replace(tiny_artifact(FeatureSpec(), timeframe="1s"), timeframe="", symbols=())

    out = run_flow(raw, StaticProvider(undeclared))

    assert out["features"] and out["predictions"] == []


def test_flow_when_no_model_then_features_only() -> None:
    raw = [encode(tick) for tick in stream(minutes=2)]

    out = run_flow(raw, StaticProvider(None))

    assert out["features"] and out["predictions"] == [] and out["signals"] == []


def test_flow_when_model_schema_differs_then_refused() -> None:
    raw = [encode(tick) for tick in stream(minutes=2)]
    other = tiny_artifact(FeatureSpec(rsi_period=7), timeframe="1s")

    out = run_flow(raw, StaticProvider(other))

    assert out["predictions"] == []


def group_logic(clock: ManualClock, idle_close_ms: int = 3000) -> GroupLogic:
    settings = StreamsSettings(
        timeframes=("1s",), late_wait_ms=200, close_on_wall_clock=True, idle_close_ms=idle_close_ms
    )
    return GroupLogic(GroupState(1), settings, clock)


def test_group_logic_when_historical_replay_runs_then_wall_clock_never_makes_ticks_late() -> None:
    clock = ManualClock(NOW_MS + 10**9)  # the replayed ticks are far in the past
    logic = group_logic(clock)
    ticks = stream(minutes=1)
    outputs = []
    for start in range(0, len(ticks), 20):
        outputs.extend(logic.on_batch(ticks[start : start + 20])[0])
        clock.advance(50)  # busy, never idle for 3 s
        outputs.extend(logic.on_notify()[0])

    assert all(not out.rejected for out in outputs)
    assert sum(len(out.accepted) for out in outputs) == len(ticks)


def test_group_logic_when_one_symbol_goes_quiet_then_its_bar_closes_after_idle_time_and_only_its() -> None:
    clock = ManualClock(NOW_MS)
    logic = group_logic(clock)
    logic.on_batch([Tick(symbol="EURUSD", time_ms=NOW_MS - 500, seq=0, bid=1.1, ask=1.1002)])
    clock.advance(1000)
    logic.on_batch([Tick(symbol="USDJPY", time_ms=NOW_MS + 400, seq=0, bid=151.2, ask=151.22)])
    wake = logic.notify_at()
    assert wake is not None and wake.timestamp() * 1000 == NOW_MS + 3000  # EURUSD's, the earlier of the two

    clock.set(NOW_MS + 2999)
    assert list(logic.on_notify()[0]) == []
    clock.advance(1)
    (closed,) = logic.on_notify()[0]
    assert [(bar.symbol, bar.start_ms) for bar in closed.bars] == [("EURUSD", NOW_MS - 500 - (NOW_MS - 500) % 1000)]
    assert logic.state.symbols["USDJPY"].bars.open_bars["1s"]  # still open: idle 2 s only


class RecordingPublisher:
    """Records what the flow publishes, and when it flushes (the seam ``connectors.Publisher`` fills)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.batches: list[list[Any]] = []  # one list per publish call

    def publish(self, messages: Iterable[Message]) -> None:
        self.batches.append(list(messages))
        self.events.extend(("publish", message) for message in self.batches[-1])

    def flush(self) -> None:
        self.events.append(("flush", None))


def test_flow_when_signals_go_to_a_publisher_then_each_sent_once_as_decided_and_flushed_before_the_end() -> None:
    raw = [encode(tick) for tick in stream(minutes=2)]
    publisher = RecordingPublisher()
    out: dict[str, list[Any]] = {name: [] for name in OUTPUTS}
    testing = {name: TestingSink(items) for name, items in out.items() if name != "signals"}
    sinks = FlowSinks(**testing, signals=publisher)
    rules = ValidationRules(known_symbols=frozenset({"EURUSD", "USDJPY"}))
    provider = StaticProvider(tiny_artifact(FeatureSpec(), timeframe="1s"))
    flow = build_flow(SETTINGS, TestingSource(raw, batch_size=64), sinks, provider, rules, clock=ManualClock(NOW_MS))

    run_main(flow)

    published = [message for kind, message in publisher.events if kind == "publish"]
    records = [signal for _key, signal in out["signal_records"]]
    assert published and sorted(s.signal_id for s in published) == sorted(s.signal_id for s in records)
    assert publisher.events[-1] == ("flush", None)  # nothing sent after the last flush
    assert "signals_out" not in {step.step_name for step in flow.substeps}  # not published a second time


def test_group_state_when_snapshot_resumed_then_equal_and_new_when_none() -> None:
    logic = GroupLogic(group_state(ONE, None), SETTINGS, ManualClock(NOW_MS))
    logic.on_batch(stream(minutes=1)[:50])  # both symbols: open bars, seen ids, spike references

    snapshot = logic.snapshot()
    resumed = group_state(ONE, snapshot)

    assert isinstance(snapshot, bytes)  # immutable: later ticks cannot change what was saved
    assert sorted(resumed.symbols) == ["EURUSD", "USDJPY"]
    for symbol, state in logic.state.symbols.items():
        again = resumed.symbols[symbol].bars
        assert again.open_bars == state.bars.open_bars and again.seen == state.bars.seen
        assert again.newest_ms == state.bars.newest_ms > 0
    assert group_state(ONE, None) == GroupState(1)


def test_group_state_when_store_has_another_layout_then_refused_with_what_to_do() -> None:
    snapshot = GroupLogic(group_state(GroupLayout(2), None), SETTINGS, ManualClock(NOW_MS)).snapshot()
    old = pickle.dumps(SymbolState("EURUSD", SpikeFilter(), BarState(("1s",), 200)))

    with pytest.raises(ValueError, match=r"streams\.symbol_groups=2, not streams\.symbol_groups=1: set it back"):
        group_state(ONE, snapshot)
    with pytest.raises(ValueError, match="one state per symbol"):
        group_state(ONE, old)


def test_group_state_when_store_aligned_with_other_processes_or_partitions_then_refused() -> None:
    aligned = GroupLayout(2, partitions=6)
    snapshot = GroupLogic(group_state(aligned, None), SETTINGS, ManualClock(NOW_MS)).snapshot()

    assert group_state(aligned, snapshot).layout == aligned
    with pytest.raises(ValueError, match=r"with 2 processes and 6 ticks partitions, not .* with 2 processes and 8"):
        group_state(GroupLayout(2, partitions=8), snapshot)
    with pytest.raises(ValueError, match="run 2 processes with TICKWAVE_STREAMS_SYMBOL_GROUPS=0"):
        group_state(GroupLayout(2), snapshot)  # hashed groups: the same count, another layout


def test_group_state_when_snapshot_predates_aligned_groups_then_read_as_hashed() -> None:
    state = GroupState(2)
    del state.partitions  # pickled as a snapshot from before aligned groups: no such field
    snapshot = pickle.dumps(state)

    assert group_state(GroupLayout(2), snapshot).layout == GroupLayout(2)


class CountingInference(Inference):
    """The flow's inference, counting its model calls."""

    calls: list[int]

    def predict_many(self, vectors: Sequence[FeatureVector], role: str = CHAMPION) -> list[Prediction]:
        predictions = super().predict_many(vectors, role)
        if predictions:
            self.calls.append(len(predictions))
        return predictions


def test_group_logic_when_symbols_close_in_one_batch_then_one_model_call_and_one_publish() -> None:
    spec = FeatureSpec()
    inference = CountingInference(
        StaticProvider(tiny_artifact(spec, timeframe="1s")), spec.schema_hash, ManualClock(NOW_MS)
    )
    inference.calls = []
    publisher = RecordingPublisher()
    consequences = BarConsequences(spec, inference, SignalRules(), ManualClock(NOW_MS), publisher)
    logic = GroupLogic(group_state(ONE, None), SETTINGS, ManualClock(NOW_MS), consequences)
    ticks = stream(minutes=2)
    for start in range(0, len(ticks), 8):  # a batch holds both symbols' closing ticks of a second
        logic.on_batch(ticks[start : start + 8])

    warm_seconds = 2 * 60 - 1 - 49  # 1 s bars closed, less the 49 that warm the features up
    assert inference.calls == [2] * warm_seconds
    assert [len(batch) for batch in publisher.batches] == [2] * warm_seconds
    assert all({s.symbol for s in batch} == {"EURUSD", "USDJPY"} for batch in publisher.batches)


def test_group_logic_when_a_challenger_is_served_then_it_scores_every_vector_in_shadow_and_never_publishes() -> None:
    spec = FeatureSpec()
    champion = tiny_artifact(spec, version=1, timeframe="1s")
    challenger = replace(tiny_artifact(spec, version=2, seed=1, timeframe="1s"), role=CHALLENGER)
    inference = CountingInference(StaticProvider(champion, challenger), spec.schema_hash, ManualClock(NOW_MS))
    inference.calls = []
    publisher = RecordingPublisher()
    logic = GroupLogic(
        group_state(ONE, None),
        SETTINGS,
        ManualClock(NOW_MS),
        BarConsequences(spec, inference, SignalRules(), ManualClock(NOW_MS), publisher),
    )
    ticks = stream(minutes=2)
    outputs = [output for start in range(0, len(ticks), 8) for output in logic.on_batch(ticks[start : start + 8])[0]]

    predictions = [prediction for output in outputs for prediction in output.predictions]
    signals = [signal for output in outputs for signal in output.signals]
    published = [signal for batch in publisher.batches for signal in batch]
    warm = 2 * (2 * 60 - 1 - 49)
    by_role = {role: [p for p in predictions if p.role == role] for role in (CHAMPION, CHALLENGER)}
    assert [len(by_role[CHAMPION]), len(by_role[CHALLENGER])] == [warm, warm]
    assert {p.model_version for p in by_role[CHALLENGER]} == {2}
    assert {(p.symbol, p.bar_start_ms) for p in by_role[CHALLENGER]} == {
        (p.symbol, p.bar_start_ms) for p in by_role[CHAMPION]
    }
    assert len(signals) == len(published) == warm
    assert {signal.model_version for signal in [*signals, *published]} == {1}  # the challenger never trades


def test_group_logic_when_woken_long_after_it_asked_then_the_stall_is_not_idleness() -> None:
    # A restarted flow re-reading the topic, held up 5 s (the chaos run's frozen warehouse):
    # the minute's last ticks are still queued, so the late wake-up must not close the bar.
    clock = ManualClock(NOW_MS + 10**9)
    logic = group_logic(clock)
    ticks = stream(minutes=1)
    logic.on_batch(ticks[: len(ticks) - 5])
    wake = logic.notify_at()
    assert wake is not None
    clock.set(int(wake.timestamp() * 1000) + 5000)  # woken 5 s late
    assert list(logic.on_notify()[0]) == []
    (output,) = logic.on_batch(ticks[len(ticks) - 5 :])[0]
    assert not output.rejected, [rejection.reason for rejection in output.rejected]
    assert len(output.accepted) == 5

    # Woken on time afterwards (nothing queued: the market is quiet), the idle rule closes the bar.
    wake = logic.notify_at()
    assert wake is not None
    clock.set(int(wake.timestamp() * 1000))
    (closed,) = logic.on_notify()[0]
    assert closed.bars
