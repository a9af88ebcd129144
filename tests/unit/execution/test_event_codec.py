"""The core's events (`events.rs`): the same schema as the contracts and exactly msgspec's bytes.

The journal, the audit chain and the warehouse keep an event's bytes, so whatever writes them must write
msgspec's to the byte: the kept golden journals re-encoded, each type compared with msgspec over random
values (floats of every magnitude and not finite, strings with control characters and any unicode, 64-bit
integers, decimals), and the schema read from both sides.
"""

from __future__ import annotations

import json
import random
import struct
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import tickwave_core
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tickwave.audit_chain import CHAINED_TYPES, GENESIS_HASH
from tickwave.contracts import (
    ControlCommand,
    Fill,
    Message,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderSubmitted,
    RiskEvent,
    Signal,
    Tick,
    decode_any,
    encode,
)

GOLDEN = Path(__file__).parents[2] / "fixtures" / "golden"
ENGINE_TYPES: tuple[type[Message], ...] = (Tick, Signal, OrderIntent, *CHAINED_TYPES, Fill, RiskEvent, ControlCommand)


def _journal(path: Path) -> list[bytes]:
    # A journal line: 8 hex digits of CRC, a separator, the event's JSON.
    return [line[9:] for line in path.read_bytes().splitlines()]


def _journals() -> list[Path]:
    paths = sorted((GOLDEN / "journals").glob("*.jsonl"))
    assert len(paths) >= 4
    return paths


def test_core_events_when_the_kept_golden_journals_are_read_then_each_event_encodes_to_its_bytes() -> None:
    seen: set[str] = set()

    for path in _journals():
        for raw in _journal(path):
            message = decode_any(raw)
            seen.add(type(message).__name__)

            assert tickwave_core.encode_event(message) == raw
            assert tickwave_core.event_round_trip(message) == message

    assert seen == {kind.__name__ for kind in ENGINE_TYPES} - {"Tick"}  # ticks are not journaled


def test_core_events_when_a_kept_journal_is_linked_by_the_core_then_the_recorded_chain_head_follows() -> None:
    recorded = json.loads((GOLDEN / "scenarios.json").read_text())

    for path in _journals():
        events = [decode_any(raw) for raw in _journal(path)]

        head, next_seq = tickwave_core.chain_events(GENESIS_HASH, 0, events)

        assert {"head": head, "next_seq": next_seq} == recorded[path.stem]["chain"]
        assert next_seq == sum(isinstance(event, CHAINED_TYPES) for event in events) > 0


def test_replay_journal_when_a_kept_journal_goes_to_the_core_and_back_then_it_is_the_same_and_linked() -> None:
    recorded = json.loads((GOLDEN / "scenarios.json").read_text())

    for path in _journals():
        events = [decode_any(raw) for raw in _journal(path)]

        journal = tickwave_core.ReplayJournal(events)

        assert len(journal) == len(events) and journal.to_py() == events
        assert journal[0] == events[0] and journal[-1] == events[-1] and list(journal) == events
        assert journal.of_tags(["order_filled.v1", "fill.v1"]) == [
            e for e in events if isinstance(e, OrderFilled | Fill)
        ]
        head, length = journal.chain()
        assert {"head": head, "next_seq": length} == recorded[path.stem]["chain"]


def test_replay_timeline_when_given_other_messages_or_flags_not_one_per_tick_then_it_is_refused() -> None:
    ticks = [Tick(symbol="EURUSD", time_ms=n, seq=n, bid=1.1, ask=1.2) for n in range(3)]

    assert len(tickwave_core.ReplayTimeline(ticks, [True, False, True])) == 3
    with pytest.raises(ValueError, match="one valid flag per tick"):
        tickwave_core.ReplayTimeline(ticks, [True] * 4)
    with pytest.raises(ValueError, match="fewer valid flags"):
        tickwave_core.ReplayTimeline(ticks, [True])
    with pytest.raises(TypeError, match="ticks and signals"):
        tickwave_core.ReplayTimeline(
            [
                *ticks,
                RiskEvent(
                    risk_event_id="r", kind="k", severity="info", trading_state="ACTIVE", detail="d", occurred_at_ms=0
                ),
            ]
        )


def test_core_events_when_the_schema_is_read_both_ways_then_names_tags_and_fields_agree() -> None:
    core = {name: (tag, fields) for name, tag, fields in tickwave_core.event_schema()}

    contracts = {kind.__name__: (kind.__struct_config__.tag, list(kind.__struct_fields__)) for kind in ENGINE_TYPES}

    assert core == contracts


# ---------------------------------------------------------------------------------------------------------------------
# Random values against msgspec

_TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(["", '"\\\n\x00\x1f\x7f', "é😀\u2028"])
_INT = st.integers(-(2**63), 2**63 - 1) | st.sampled_from([0, -1, 2**63 - 1, -(2**63)])
_FLOAT = st.floats(allow_nan=True, allow_infinity=True) | st.floats(min_value=1e-7, max_value=1e17)
_DECIMAL = st.builds(
    lambda sign, digits, exponent: Decimal((sign, tuple(int(d) for d in str(digits)), exponent)),
    st.integers(0, 1),
    st.integers(0, 10**40),
    st.integers(-40, 40),
).filter(lambda amount: not (amount.is_zero() and amount.is_signed()))  # a negative zero is refused, below


def _unset(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.just(msgspec.UNSET) | values


def _header() -> dict[str, st.SearchStrategy[Any]]:
    return {
        "client_order_id": _TEXT,
        "signal_id": _TEXT,
        "symbol": _TEXT,
        "model_id": _TEXT,
        "model_version": _INT,
        "event_at_ms": _INT,
    }


_SIDE = st.sampled_from(["buy", "sell"])
_ORDER_TYPE = st.sampled_from(["market", "limit"])
_FIELDS: dict[type[Message], dict[str, st.SearchStrategy[Any]]] = {
    Tick: {
        "symbol": _TEXT,
        "time_ms": _INT,
        "seq": _INT,
        "bid": _FLOAT,
        "ask": _FLOAT,
        "last": _FLOAT,
        "volume": _FLOAT,
        "flags": _INT,
        "source": _TEXT,
    },
    Signal: {
        "signal_id": _TEXT,
        "symbol": _TEXT,
        "timeframe": _TEXT,
        "bar_start_ms": _INT,
        "direction": st.sampled_from(["long", "short", "flat"]),
        "strength": st.floats(0.0, 1.0),
        "confidence": st.floats(0.0, 1.0),
        "model_id": _TEXT,
        "model_version": _INT,
        "created_at_ms": _INT,
        "members": st.lists(_TEXT, max_size=3).map(tuple),
    },
    OrderIntent: {
        "client_order_id": _TEXT,
        "signal_id": _TEXT,
        "symbol": _TEXT,
        "side": _SIDE,
        "quantity_lots": _FLOAT,
        "order_type": _ORDER_TYPE,
        "model_id": _TEXT,
        "model_version": _INT,
        "created_at_ms": _INT,
        "limit_price": st.none() | _FLOAT,
    },
    OrderSubmitted: {
        **_header(),
        "side": _SIDE,
        "quantity_lots": _FLOAT,
        "order_type": _ORDER_TYPE,
        "limit_price": st.none() | _FLOAT,
        "venue": _unset(_TEXT),
    },
    OrderAccepted: {**_header(), "broker_order_id": _TEXT},
    OrderRejected: {**_header(), "reason": _TEXT, "broker_code": st.none() | _INT},
    OrderFilled: {
        **_header(),
        "fill_id": _TEXT,
        "fill_price": _FLOAT,
        "fill_lots": _FLOAT,
        "cumulative_lots": _FLOAT,
        "is_final": st.booleans(),
    },
    OrderCanceled: {**_header(), "reason": _TEXT},
    OrderDenied: {**_header(), "reason": _TEXT, "check": _TEXT},
    Fill: {
        "fill_id": _TEXT,
        "client_order_id": _TEXT,
        "signal_id": _TEXT,
        "symbol": _TEXT,
        "side": _SIDE,
        "price": _FLOAT,
        "quantity_lots": _FLOAT,
        "commission": _FLOAT,
        "filled_at_ms": _INT,
        "model_id": _TEXT,
        "model_version": _INT,
        "broker_deal_id": _TEXT,
        "position_before_lots": _unset(_DECIMAL),
        "position_after_lots": _unset(_DECIMAL),
        "entry_value_after": _unset(_DECIMAL),
        "realized_pnl_quote": _unset(_DECIMAL),
        "realized_pnl_account": _unset(st.none() | _DECIMAL),
        "round_trip_id": _unset(_TEXT),
        "opens_round_trip_id": _unset(_TEXT),
    },
    RiskEvent: {
        "risk_event_id": _TEXT,
        "kind": _TEXT,
        "severity": st.sampled_from(["info", "warning", "critical"]),
        "trading_state": st.sampled_from(["ACTIVE", "REDUCING", "HALTED"]),
        "detail": _TEXT,
        "occurred_at_ms": _INT,
        "symbol": _TEXT,
        "check": _TEXT,
    },
    ControlCommand: {
        "command_id": _TEXT,
        "command": st.sampled_from(["halt", "reduce", "resume", "status", "set_limit", "flatten"]),
        "issued_by": _TEXT,
        "issued_at_ms": _INT,
        "reason": _TEXT,
        "symbol": _TEXT,
        "params": st.dictionaries(_TEXT, _TEXT, max_size=3),
    },
}


def test_core_events_when_random_values_are_drawn_then_every_type_has_a_strategy_for_each_field() -> None:
    assert set(_FIELDS) == set(ENGINE_TYPES)
    for kind, fields in _FIELDS.items():
        assert list(fields) == list(kind.__struct_fields__)


@pytest.mark.parametrize("kind", ENGINE_TYPES, ids=[kind.__name__ for kind in ENGINE_TYPES])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_core_events_when_any_event_is_encoded_then_its_bytes_are_msgspecs(kind: type[Message], data: Any) -> None:
    values = data.draw(st.fixed_dictionaries(_FIELDS[kind]))
    try:
        message = kind(**values)
    except ValueError:  # a value the contract's own checks refuse (a NaN price)
        assume(False)
        raise

    assert tickwave_core.encode_event(message) == encode(message)
    assert encode(tickwave_core.event_round_trip(message)) == encode(message)


def test_core_events_when_any_64_bit_pattern_is_a_float_field_then_it_is_written_as_msgspec_writes_it() -> None:
    rng = random.Random(20_260_101)
    patterns = [rng.getrandbits(64) for _ in range(20_000)]
    # And the edges of each exponent form: 1e-5 / 1e-6, 1e15 / 1e16 and their neighbours.
    edges = [float(f"{m}e{e}") for e in range(-330, 310) for m in ("1", "1.5", "9.999999999999999")]
    floats = [struct.unpack("<d", struct.pack("<Q", bits))[0] for bits in patterns] + edges
    header = {"client_order_id": "c", "signal_id": "s", "symbol": "X", "model_id": "m", "model_version": 1}

    for at, value in enumerate(floats):
        message = OrderSubmitted(
            **header, event_at_ms=at, side="buy", quantity_lots=value, order_type="limit", limit_price=-value
        )

        assert tickwave_core.encode_event(message) == encode(message), repr(value)


# ---------------------------------------------------------------------------------------------------------------------
# What the core does not hold exactly is refused, never written in other bytes


def _accepted(**changes: Any) -> OrderAccepted:
    fields: dict[str, Any] = {
        "client_order_id": "c",
        "signal_id": "s",
        "symbol": "X",
        "model_id": "m",
        "model_version": 1,
        "event_at_ms": 0,
        "broker_order_id": "b",
    }
    return OrderAccepted(**(fields | changes))


def _fill(**changes: Any) -> Fill:
    fields: dict[str, Any] = {
        "fill_id": "f",
        "client_order_id": "c",
        "signal_id": "s",
        "symbol": "X",
        "side": "buy",
        "price": 1.5,
        "quantity_lots": 1.0,
        "commission": 0.0,
        "filled_at_ms": 0,
        "model_id": "m",
        "model_version": 1,
    }
    return Fill(**(fields | changes))


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (_accepted(model_version=2**63), OverflowError),
        (_accepted(event_at_ms=-(2**63) - 1), OverflowError),
        (_accepted(model_version=True), TypeError),
        (_accepted(model_version=1.0), TypeError),
        (_accepted(broker_order_id=b"b"), TypeError),
        (_fill(price=2), TypeError),
        (_fill(side="long"), ValueError),
        (_fill(position_before_lots=Decimal("NaN")), ValueError),
        (_fill(position_before_lots=Decimal("-0")), ValueError),
        (_fill(position_before_lots=Decimal("9" * 78)), ValueError),  # beyond 256 bits
        (_fill(entry_value_after=Decimal("1E+2147483648")), ValueError),  # an exponent beyond 32 bits
        (_fill(position_before_lots=1.5), TypeError),
        (_fill(realized_pnl_quote=None), TypeError),
        ({"type": "order_accepted.v1"}, TypeError),
    ],
)
def test_core_events_when_a_value_does_not_fit_then_it_is_refused(message: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        tickwave_core.encode_event(message)


def test_core_events_when_a_string_holds_a_lone_surrogate_then_both_encoders_refuse_it() -> None:
    message = _accepted(broker_order_id="\ud800")

    with pytest.raises(UnicodeEncodeError):
        encode(message)
    with pytest.raises(UnicodeEncodeError):
        tickwave_core.encode_event(message)


def test_core_events_when_a_64_bit_edge_is_written_then_it_is_msgspecs() -> None:
    for value in (2**63 - 1, -(2**63), 0, -1):
        message = _accepted(model_version=value, event_at_ms=value)

        assert tickwave_core.encode_event(message) == encode(message)
