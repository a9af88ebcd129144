"""Signed bus messages: one key per channel, generated private, and an HMAC that covers every byte."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters.signing import (
    CHANNELS,
    SIGNATURE_HEADER,
    channel_key,
    ensure_keys,
    key_path,
    refusal,
    sign,
    signed_headers,
)
from tickwave.config import load_settings
from tickwave.contracts import Signal, encode

KEY = bytes(range(32))
OPERATOR_KEY = bytes(reversed(KEY))  # another channel's key: a valid control signature is none for a signal


def _signal(signal_id: str = "s1", strength: float = 0.5, model_id: str = "m1") -> bytes:
    return encode(
        Signal(
            signal_id=signal_id,
            symbol="EURUSD",
            timeframe="1m",
            bar_start_ms=60_000,
            direction="long",
            strength=strength,
            confidence=0.9,
            model_id=model_id,
            model_version=1,
            created_at_ms=1_700_000_000_000,
        )
    )


def test_ensure_keys_when_first_up_then_one_private_key_per_channel_stable_and_distinct(tmp_path: Path) -> None:
    # Arrange
    settings = load_settings(state_dir=tmp_path)

    # Act
    paths = ensure_keys(settings)
    again = {channel: channel_key(tmp_path, channel) for channel in CHANNELS}
    ensure_keys(settings)

    # Assert
    assert paths == [key_path(tmp_path, channel) for channel in CHANNELS]
    assert {os.stat(path).st_mode & 0o777 for path in paths} == {0o600}
    assert os.stat(tmp_path / "secrets").st_mode & 0o777 == 0o700
    assert {len(key) for key in again.values()} == {32}
    assert len(set(again.values())) == len(CHANNELS), "each channel has its own key"
    assert {channel: channel_key(tmp_path, channel) for channel in CHANNELS} == again


def test_refusal_when_signed_with_the_key_then_none() -> None:
    value = _signal()
    assert refusal("signal", value, signed_headers(KEY, value), KEY) is None
    assert refusal("signal", value, [("other", b"x"), *signed_headers(KEY, value)], KEY) is None


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unsigned", "unsigned signal"),
        ("empty header", "signal with a wrong signature"),
        ("wrong key", "signal with a wrong signature"),
        ("altered strength", "signal with a wrong signature"),
        ("altered model", "signal with a wrong signature"),
        ("valid signature, another signal id", "signal with a wrong signature"),
        ("signature of a control message", "signal with a wrong signature"),
        ("no value", "signal with a wrong signature"),
    ],
)
def test_refusal_when_the_signature_does_not_cover_these_bytes_with_this_key_then_refused(
    case: str, expected: str
) -> None:
    # Arrange: a genuine signed signal, then what an attacker can make of it
    genuine = _signal()
    signature = sign(KEY, genuine).encode()
    value, headers = {
        "unsigned": (genuine, None),
        "empty header": (genuine, [(SIGNATURE_HEADER, b"")]),
        "wrong key": (genuine, signed_headers(bytes(32), genuine)),
        "altered strength": (_signal(strength=1.0), [(SIGNATURE_HEADER, signature)]),
        "altered model": (_signal(model_id="rt-attacker"), [(SIGNATURE_HEADER, signature)]),
        "valid signature, another signal id": (_signal(signal_id="s2"), [(SIGNATURE_HEADER, signature)]),
        "signature of a control message": (genuine, signed_headers(OPERATOR_KEY, genuine)),
        "no value": (None, [(SIGNATURE_HEADER, signature)]),
    }[case]

    # Act
    refused = refusal("signal", value, headers, KEY)

    # Assert
    assert refused == expected


def test_refusal_when_one_byte_of_the_message_changes_then_refused() -> None:
    genuine = _signal()
    headers = signed_headers(KEY, genuine)
    for index in range(0, len(genuine), 7):
        altered = genuine[:index] + bytes([genuine[index] ^ 0x01]) + genuine[index + 1 :]
        assert refusal("signal", altered, headers, KEY) is not None, index
