"""Control messages: only signed, fresh commands are acted on; nothing in one stops the process."""

from __future__ import annotations

import os
from pathlib import Path

from adapters.signing import SIGNATURE_HEADER, control_key, key_path, sign
from execution.connectors import admit_control
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, ListPublisher, make_service
from tickwave.clock import ManualClock
from tickwave.config import load_settings
from tickwave.contracts import ControlCommand, RiskEvent, encode

WINDOW_MS = 60_000


def _halt(issued_at_ms: int = WEDNESDAY_NOON_MS) -> bytes:
    return encode(ControlCommand(command_id="c1", command="halt", issued_by="t", issued_at_ms=issued_at_ms))


def _admit(value: bytes, headers: list[tuple[str, bytes | None]] | None, key: bytes, now_ms: int = WEDNESDAY_NOON_MS):  # type: ignore[no-untyped-def]
    return admit_control(value, headers, key, now_ms, WINDOW_MS)


def test_control_key_when_first_used_then_generated_private_and_stable(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path)
    key = control_key(settings)
    assert len(key) == 32 and control_key(settings) == key
    assert os.stat(key_path(settings.state_path, "control")).st_mode & 0o777 == 0o600


def test_admit_when_signed_and_fresh_then_the_command() -> None:
    key, value = b"k" * 32, _halt()
    admitted = _admit(value, [(SIGNATURE_HEADER, sign(key, value).encode())], key, WEDNESDAY_NOON_MS + 5_000)
    assert isinstance(admitted, ControlCommand) and admitted.command == "halt"


def test_admit_when_unsigned_tampered_wrong_key_stale_or_garbage_then_refused_with_reason() -> None:
    key, value = b"k" * 32, _halt()
    good = sign(key, value).encode()
    tampered = value.replace(b'"halt"', b'"flatten"')
    old = _halt(WEDNESDAY_NOON_MS - WINDOW_MS - 1)
    cases = {
        "unsigned": _admit(value, None, key),
        "wrong signature": _admit(tampered, [(SIGNATURE_HEADER, good)], key),
        "wrong signature ": _admit(value, [(SIGNATURE_HEADER, sign(b"x" * 32, value).encode())], key),
        "stale": _admit(old, [(SIGNATURE_HEADER, sign(key, old).encode())], key),
        "invalid": _admit(b"{not json", [(SIGNATURE_HEADER, sign(key, b"{not json").encode())], key),
    }
    for expected, admitted in cases.items():
        assert isinstance(admitted, str) and expected.strip() in admitted, (expected, admitted)


def test_refuse_control_when_called_then_critical_event_and_process_goes_on(tmp_path: Path) -> None:
    publisher = ListPublisher()
    service = make_service(tmp_path, ManualClock(WEDNESDAY_NOON_MS), publisher, market_hours="always")
    service.refuse_control("unsigned control message")
    refused = [e for e in publisher.of_type(RiskEvent) if e.kind == "control_refused"]
    assert [(e.severity, e.detail) for e in refused] == [("critical", "unsigned control message")]
    assert service.engine.trading_state == "ACTIVE"
    service.close()
