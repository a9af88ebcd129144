from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.tickwave.strategies import message_strategy
from tickwave.contracts import (
    MESSAGE_TYPES,
    KindTest,
    Message,
    OrderSubmitted,
    Prediction,
    Signal,
    Tick,
    client_order_id_for,
    decode,
    decode_any,
    encode,
    stable_id,
)
from tickwave.errors import ContractError

GOOD_TICK = Tick(symbol="EURUSD", time_ms=1_700_000_000_123, seq=2, bid=1.08501, ask=1.08503, volume=1.5)


@pytest.mark.parametrize("kind", MESSAGE_TYPES, ids=lambda kind: kind.__name__)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_encode_decode_when_any_valid_message_then_round_trips_exactly(
    kind: type[Message], data: st.DataObject
) -> None:
    message = data.draw(message_strategy(kind))

    wire = encode(message)

    assert decode(wire, kind) == message
    assert decode_any(wire) == message
    assert type(decode_any(wire)) is kind


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_kind_test_when_any_message_and_kinds_then_the_same_as_isinstance(data: st.DataObject) -> None:
    # The journal's audit chain and the paper ledger choose what they keep with it.
    kinds = tuple(data.draw(st.lists(st.sampled_from((*MESSAGE_TYPES, Message)), min_size=1, max_size=6)))
    test = KindTest(*kinds)
    for _ in range(2):  # the second answer comes from the memo
        message = data.draw(message_strategy(data.draw(st.sampled_from(MESSAGE_TYPES))))
        assert test(message) is isinstance(message, kinds)
        assert test(message) is isinstance(message, kinds)


@pytest.mark.parametrize("kind", MESSAGE_TYPES, ids=lambda kind: kind.__name__)
def test_message_when_declared_then_frozen_versioned_and_strict(kind: type[Message]) -> None:
    config = kind.__struct_config__

    assert config.frozen
    assert config.forbid_unknown_fields
    assert isinstance(config.tag, str) and config.tag.endswith(".v1")


def test_message_tags_when_all_types_listed_then_unique() -> None:
    tags = [kind.__struct_config__.tag for kind in MESSAGE_TYPES]

    assert len(tags) == len(set(tags))


@settings(max_examples=2000, deadline=None)
@given(raw=st.binary(max_size=300))
def test_decode_any_when_arbitrary_bytes_then_only_contract_error(raw: bytes) -> None:
    try:
        decode_any(raw)
    except ContractError as error:
        assert error.reason
        assert error.raw == raw


@settings(max_examples=300, deadline=None)
@given(message=message_strategy(Tick), cut=st.integers(min_value=0))
def test_decode_when_message_truncated_then_contract_error_with_reason(message: Message, cut: int) -> None:
    wire = encode(message)
    truncated = wire[: cut % len(wire)]

    with pytest.raises(ContractError, match="invalid Tick"):
        decode(truncated, Tick)


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"ask": 1.0, "bid": 2.0}, "below bid"),
        ({"bid": 0.0}, "> 0.0 - at `$.bid`"),
        ({"bid": -1.0}, "> 0.0 - at `$.bid`"),
        ({"symbol": ""}, "symbol"),
        ({"symbol": "EUR USD"}, "symbol"),
        ({"time_ms": -5}, "time_ms"),
        ({"volume": -1.0}, ">= 0"),
        ({"unexpected": 1}, "unknown field"),
        ({"type": "tick.v9"}, "type"),
        ({"bid": "1.1"}, "Expected `float`"),
    ],
)
def test_decode_when_tick_is_impossible_then_reason_names_the_problem(patch: dict[str, object], reason: str) -> None:
    fields = msgspec.json.decode(encode(GOOD_TICK))
    fields.update(patch)
    raw = msgspec.json.encode(fields)

    with pytest.raises(ContractError) as caught:
        decode(raw, Tick)

    assert reason in caught.value.reason
    assert caught.value.raw == raw


def test_decode_when_json_has_nan_then_rejected() -> None:
    raw = encode(GOOD_TICK).replace(b'"bid":1.08501', b'"bid":NaN')

    with pytest.raises(ContractError):
        decode(raw, Tick)


def test_tick_when_constructed_with_non_finite_price_then_value_error() -> None:
    with pytest.raises(ValueError, match="finite"):
        Tick(symbol="EURUSD", time_ms=1, seq=0, bid=math.inf, ask=math.inf)


def test_decode_when_other_message_type_then_contract_error() -> None:
    signal = Signal(
        signal_id="s",
        symbol="EURUSD",
        timeframe="1m",
        bar_start_ms=0,
        direction="long",
        strength=0.5,
        confidence=0.7,
        model_id="m",
        model_version=1,
        created_at_ms=0,
    )

    with pytest.raises(ContractError, match="invalid Tick"):
        decode(encode(signal), Tick)


def test_ids_when_same_inputs_then_deterministic_and_distinct_otherwise() -> None:
    first = Signal.make_id("model", 3, "EURUSD", "1m", 60_000)

    assert first == Signal.make_id("model", 3, "EURUSD", "1m", 60_000)
    assert first != Signal.make_id("model", 4, "EURUSD", "1m", 60_000)
    assert client_order_id_for(first) == client_order_id_for(first)
    assert client_order_id_for(first) != client_order_id_for(first + "x")
    assert len(client_order_id_for(first)) <= 31  # fits MT5's order comment


@settings(max_examples=200, deadline=None)
@given(signal_id=st.text())
def test_client_order_id_for_when_spelled_out_then_the_stable_id_it_always_was(signal_id: str) -> None:
    # Persisted in journals, the warehouse and MT5 comments: the fast spelling must never change an id.
    assert client_order_id_for(signal_id) == "tw-" + stable_id("order", signal_id, length=24)
    assert client_order_id_for("sig-1") == "tw-8536f6838e9656d24281bd53"


def test_tick_id_when_same_millisecond_then_seq_distinguishes() -> None:
    other = Tick(symbol="EURUSD", time_ms=GOOD_TICK.time_ms, seq=3, bid=1.08501, ask=1.08503)

    assert other.tick_id != GOOD_TICK.tick_id
    assert GOOD_TICK.tick_id == "EURUSD:1700000000123:2"


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (
            Signal,
            b'{"type":"signal.v1","signal_id":"s","symbol":"EURUSD","timeframe":"1m","bar_start_ms":0,'
            b'"direction":"long","strength":0.5,"confidence":0.7,"model_id":"m","model_version":1,'
            b'"created_at_ms":0}',
        ),
        (
            Prediction,
            b'{"type":"prediction.v1","symbol":"EURUSD","timeframe":"1m","bar_start_ms":0,"model_id":"m",'
            b'"model_version":1,"probabilities":{"up":0.5},"inference_latency_us":3.0,"predicted_at_ms":0}',
        ),
    ],
)
def test_decode_when_message_predates_the_ensemble_fields_then_read_with_their_defaults(
    kind: type[Message], raw: bytes
) -> None:
    message = decode(raw, kind)

    assert message.members == ()  # type: ignore[attr-defined]
    assert getattr(message, "confidence", 0.7) in (None, 0.7)


def test_prediction_when_confidence_outside_unit_interval_then_rejected() -> None:
    with pytest.raises(ValueError, match="confidence"):
        Prediction(
            symbol="EURUSD",
            timeframe="1m",
            bar_start_ms=0,
            model_id="m",
            model_version=1,
            probabilities={"up": 0.5},
            inference_latency_us=1.0,
            predicted_at_ms=0,
            confidence=1.5,
        )


# An OrderSubmitted as journaled before it named its venue: the audit hash chain covers these bytes.
SUBMITTED_BEFORE_VENUES = (
    b'{"type":"order_submitted.v1","client_order_id":"tw-1","signal_id":"s","symbol":"EURUSD","model_id":"m",'
    b'"model_version":1,"event_at_ms":5,"side":"buy","quantity_lots":0.1,"order_type":"market","limit_price":null}'
)


def test_order_submitted_when_it_predates_the_venue_then_encoded_again_byte_identical() -> None:
    message = decode(SUBMITTED_BEFORE_VENUES, OrderSubmitted)

    assert message.venue_name == ""
    assert encode(message) == SUBMITTED_BEFORE_VENUES  # a republished tail or an audit replay keeps its hash


def test_order_submitted_when_it_names_its_venue_then_the_venue_round_trips() -> None:
    message = msgspec.structs.replace(decode(SUBMITTED_BEFORE_VENUES, OrderSubmitted), venue="mt5:Broker-Live")

    wire = encode(message)

    assert wire.endswith(b',"venue":"mt5:Broker-Live"}')
    assert decode(wire, OrderSubmitted).venue_name == "mt5:Broker-Live"


def _integer_fields(kind: type[Message]) -> list[str]:
    fields = msgspec.inspect.type_info(kind).fields  # type: ignore[attr-defined]
    names = []
    for field in fields:
        types = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
        if any(isinstance(member, msgspec.inspect.IntType) for member in types):
            names.append(field.encode_name)
    return names


@pytest.mark.parametrize("kind", MESSAGE_TYPES, ids=lambda kind: kind.__name__)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data())
def test_decode_when_an_integer_is_beyond_64_bits_then_contract_error(kind: type[Message], data: st.DataObject) -> None:
    # The execution core and the warehouse's columns hold 64-bit integers: a larger one is malformed at decode
    # (dead-lettered by the consumers).
    message = data.draw(message_strategy(kind))
    for name in _integer_fields(kind):
        fields = msgspec.json.decode(encode(message))
        for beyond in (2**63, -(2**63) - 1, 2**64 + 5):
            fields[name] = beyond
            with pytest.raises(ContractError, match=name):
                decode(msgspec.json.encode(fields), kind)
            with pytest.raises(ContractError):
                decode_any(msgspec.json.encode(fields))


def test_integer_fields_when_listed_then_every_time_and_version_is_bounded() -> None:
    largest = msgspec.structs.replace(GOOD_TICK, time_ms=2**63 - 1, seq=2**63 - 1, flags=-(2**63))
    assert decode(encode(largest), Tick) == largest
    assert {"time_ms", "seq", "flags"} <= set(_integer_fields(Tick))
    assert {"created_at_ms", "bar_start_ms", "model_version"} <= set(_integer_fields(Signal))
