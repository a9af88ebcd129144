"""The latency benchmark's plain-loop contender does the flow's work: the same signals and records."""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec
from bytewax.testing import TestingSink, TestingSource, run_main

from bench.streams_relay import RelayStep
from streams.features import FeatureSpec
from streams.flow import FlowSinks, build_flow
from tests.unit.streams.test_flow import NOW_MS, OUTPUTS, SETTINGS, RecordingPublisher, stream, unkey
from tests.unit.streams.tiny_model import every_timeframe
from tickwave.clock import ManualClock
from tickwave.contracts import Message, Prediction, encode
from tickwave.validation import ValidationRules

RULES = ValidationRules(known_symbols=frozenset({"EURUSD", "USDJPY"}))


def raw_ticks() -> list[bytes]:
    """Four minutes of two symbols, with a spike, a late tick and two undecodable messages."""
    ticks = stream(minutes=4)
    raw = [encode(tick) for tick in ticks]
    raw[700:700] = [encode(msgspec.structs.replace(ticks[699], time_ms=ticks[699].time_ms + 1, bid=2.0, ask=2.0001))]
    raw[900:900] = [encode(msgspec.structs.replace(ticks[800], time_ms=ticks[800].time_ms - 5_000, seq=1))]
    raw[50:50] = [b"not json", b'{"type":"tick.v1"}']
    return raw


def flow_outputs(raw: list[bytes]) -> tuple[list[Any], Counter[bytes]]:
    """The flow's published signals, and its records (every output but the signals topic and the DLQ)."""
    publisher = RecordingPublisher()
    out: dict[str, list[Any]] = {name: [] for name in OUTPUTS}
    sinks = FlowSinks(
        **{name: TestingSink(items) for name, items in out.items() if name != "signals"}, signals=publisher
    )
    provider = every_timeframe(FeatureSpec(), SETTINGS.timeframes, ("EURUSD", "USDJPY"))
    run_main(build_flow(SETTINGS, TestingSource(raw, batch_size=64), sinks, provider, RULES, clock=ManualClock(NOW_MS)))
    values = unkey(out)
    records = [
        message for name, messages in values.items() if name not in ("signals", "dead_letters") for message in messages
    ]
    published = [message for kind, message in publisher.events if kind == "publish"]
    return published, comparable(records)


def comparable(records: list[Message]) -> Counter[bytes]:
    """The records as a multiset of their encodings, each prediction's measured inference time zeroed."""
    return Counter(
        encode(msgspec.structs.replace(record, inference_latency_us=0.0) if isinstance(record, Prediction) else record)
        for record in records
    )


def test_relay_when_same_ticks_then_same_signals_published_and_same_records_as_the_flow() -> None:
    raw = raw_ticks()
    flow_published, flow_records = flow_outputs(raw)
    publisher = RecordingPublisher()
    provider = every_timeframe(FeatureSpec(), SETTINGS.timeframes, ("EURUSD", "USDJPY"))
    step = RelayStep(SETTINGS, provider, publisher, ManualClock(NOW_MS), RULES)

    records = [record for start in range(0, len(raw), 64) for record in step.take(raw[start : start + 64])]
    records += step.finish()  # the flow closes the open bars at the input's end

    published = [message for kind, message in publisher.events if kind == "publish"]
    assert len(published) > 300  # warm 1 s bars of two symbols over four minutes
    assert published == flow_published
    assert comparable(records) == flow_records
    reasons = sorted(record.reason.split(":")[0] for record in records if hasattr(record, "reason"))
    assert reasons == ["contract", "contract", "late", "spike"]
