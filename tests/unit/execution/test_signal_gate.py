"""The signal gate: only the dataflow's signed signals are decided; every other one is recorded, bounded."""

from __future__ import annotations

from pathlib import Path

from adapters.signing import sign, signed_headers
from execution.connectors import REFUSALS_RECORDED_PER_S, SignalGate
from execution.journal import JOURNAL_NAME, Journal
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, ListPublisher, make_service, signal, tick
from tickwave.clock import ManualClock
from tickwave.contracts import OrderSubmitted, RiskEvent, Signal, encode

KEY = b"d" * 32
WHERE = "signals[0]@7"


def _refused(publisher: ListPublisher) -> list[RiskEvent]:
    return [event for event in publisher.of_type(RiskEvent) if event.kind == "signal_refused"]


def test_admit_when_signed_by_the_dataflow_then_decided_into_an_order(tmp_path: Path) -> None:
    # Arrange
    clock, publisher = ManualClock(WEDNESDAY_NOON_MS), ListPublisher()
    service = make_service(tmp_path, clock, publisher)
    service.handle_tick(tick(WEDNESDAY_NOON_MS))
    gate = SignalGate(KEY, service)
    value = encode(signal(1, WEDNESDAY_NOON_MS))

    # Act
    admitted = gate.admit(value, signed_headers(KEY, value), WHERE)
    assert isinstance(admitted, Signal)
    service.handle_signals([admitted])

    # Assert
    assert len(publisher.of_type(OrderSubmitted)) == 1
    assert _refused(publisher) == []
    service.close()


def test_admit_when_forged_then_refused_recorded_critical_and_no_order(tmp_path: Path) -> None:
    # Arrange: unsigned, signed with another key, and a valid signature moved onto another signal id
    clock, publisher = ManualClock(WEDNESDAY_NOON_MS), ListPublisher()
    service = make_service(tmp_path, clock, publisher)
    service.handle_tick(tick(WEDNESDAY_NOON_MS))
    gate = SignalGate(KEY, service)
    genuine = encode(signal(1, WEDNESDAY_NOON_MS, model_id="rt-attacker"))
    moved = encode(signal(2, WEDNESDAY_NOON_MS))

    # Act
    admitted = [
        gate.admit(genuine, None, WHERE),
        gate.admit(genuine, signed_headers(b"x" * 32, genuine), WHERE),
        gate.admit(moved, [("tickwave-signature", sign(KEY, genuine).encode())], WHERE),
        gate.admit(b"{not a signal", None, WHERE),
    ]

    # Assert
    assert admitted == [None, None, None, None]
    refused = _refused(publisher)
    assert [event.severity for event in refused] == ["critical"] * 4
    assert refused[0].detail.startswith(f"unsigned signal at {WHERE}: claims signal ")
    assert "of model rt-attacker v1, EURUSD 1m long" in refused[0].detail
    assert all("wrong signature" in event.detail for event in refused[1:3])
    assert "bytes, not a valid signal" in refused[3].detail
    assert publisher.of_type(OrderSubmitted) == [] and service.broker.positions() == {}
    assert service.engine.trading_state == "ACTIVE"  # a refused signal changes nothing else
    service.close()
    with Journal(tmp_path / "execution" / "execution-1" / JOURNAL_NAME, fsync=False) as journal:
        recorded = [event for event in journal.events() if isinstance(event, RiskEvent)]
    assert [event.detail for event in recorded if event.kind == "signal_refused"] == [e.detail for e in refused]


def test_admit_when_flooded_then_a_bounded_number_recorded_per_second_and_the_rest_counted(tmp_path: Path) -> None:
    # Arrange
    clock, publisher = ManualClock(WEDNESDAY_NOON_MS), ListPublisher()
    service = make_service(tmp_path, clock, publisher)
    gate = SignalGate(KEY, service)
    forged = encode(signal(1, WEDNESDAY_NOON_MS))
    flood = 3 * REFUSALS_RECORDED_PER_S

    # Act
    for _ in range(flood):
        gate.admit(forged, None, WHERE)
    clock.advance(1_000)
    gate.admit(forged, None, WHERE)

    # Assert
    refused = _refused(publisher)
    assert len(refused) == REFUSALS_RECORDED_PER_S + 1
    assert f"; {flood - REFUSALS_RECORDED_PER_S} more refused before it" in refused[-1].detail
    service.close()


def test_admit_when_a_signed_signal_carries_an_integer_beyond_64_bits_then_quarantined_and_the_next_decided(
    tmp_path: Path,
) -> None:
    # The core holds 64-bit integers: a wider one is malformed at decode, before it reaches the engine.
    clock, publisher = ManualClock(WEDNESDAY_NOON_MS), ListPublisher()
    service = make_service(tmp_path, clock, publisher)
    service.handle_tick(tick(WEDNESDAY_NOON_MS))
    gate = SignalGate(KEY, service)
    wide = encode(signal(1, WEDNESDAY_NOON_MS)).replace(b'"model_version":1', b'"model_version":18446744073709551616')
    good = encode(signal(2, WEDNESDAY_NOON_MS))

    refused = gate.admit(wide, signed_headers(KEY, wide), WHERE)
    admitted = gate.admit(good, signed_headers(KEY, good), WHERE)
    assert refused is None
    assert isinstance(admitted, Signal)
    service.handle_signals([admitted])

    assert [event.signal_id for event in publisher.of_type(OrderSubmitted)] == [admitted.signal_id]
    service.close()
