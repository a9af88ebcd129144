"""Signed bus messages: HMAC-SHA256 over a message's bytes, with one key per signing role.

Two channels reach the execution process from outside it, and each has its signer:

- ``execution.control`` (halt, flatten, ``set_limit``...): the operator (``tickwave
  execution ...``) signs with ``<state dir>/secrets/control.key``;
- ``signals``: the dataflow signs every signal with ``<state dir>/secrets/signals.key``.

The execution process checks the signature (a constant-time compare) before the bytes
are decoded and refuses what is unsigned or wrongly signed, so a producer that can write
the topic (a loosened ACL, a PLAINTEXT broker) but holds no key can neither trade nor
halt. A key per role: a signature made for one channel is worth nothing on the other.

Each key is 32 random bytes, hex, in a 0600 file inside a 0700 folder: ``tickwave up``
generates every key before it starts a process (:func:`ensure_keys`), and whichever side
needs a key first generates it otherwise (``O_EXCL``: two first users agree on one key).
Processes read their key from the file at start: never from the environment or the
command line. The signature travels in a Kafka header (:data:`SIGNATURE_HEADER`), hex.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from tickwave.config import Settings

SECRETS_DIR = "secrets"
SIGNATURE_HEADER = "tickwave-signature"
KEY_BYTES = 32

Channel = Literal["control", "signals"]
CHANNELS: tuple[Channel, ...] = ("control", "signals")

# Kafka headers as confluent-kafka gives them (``Message.headers()``) and takes them.
Headers = Sequence[tuple[str, bytes | None]]


def key_path(state_path: Path, channel: Channel) -> Path:
    """Return the key file of ``channel`` for this state directory."""
    return state_path / SECRETS_DIR / f"{channel}.key"


def channel_key(state_path: Path, channel: Channel) -> bytes:
    """Return ``channel``'s key, generating it on first use (O_EXCL: two first users agree on one key)."""
    path = key_path(state_path, channel)
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    key = secrets.token_bytes(KEY_BYTES)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key.hex())
        handle.flush()
        os.fsync(handle.fileno())
    return key


def control_key(settings: Settings) -> bytes:
    """Return the operator's key, which signs control commands."""
    return channel_key(settings.state_path, "control")


def signals_key(settings: Settings) -> bytes:
    """Return the dataflow's key, which signs signals."""
    return channel_key(settings.state_path, "signals")


def ensure_keys(settings: Settings) -> list[Path]:
    """Generate every channel's key that does not exist yet (``tickwave up``); return their files."""
    for channel in CHANNELS:
        channel_key(settings.state_path, channel)
    return [key_path(settings.state_path, channel) for channel in CHANNELS]


def sign(key: bytes, value: bytes) -> str:
    """Return the hex HMAC-SHA256 of ``value``."""
    return hmac.new(key, value, hashlib.sha256).hexdigest()


def signed_headers(key: bytes, value: bytes) -> list[tuple[str, bytes]]:
    """Return the Kafka headers that carry ``value``'s signature."""
    return [(SIGNATURE_HEADER, sign(key, value).encode())]


def is_signed_by(key: bytes, value: bytes, signature: str | bytes | None) -> bool:
    """Whether ``signature`` is ``value``'s HMAC under ``key`` (constant-time compare)."""
    if signature is None:
        return False
    text = signature.decode("ascii", "replace") if isinstance(signature, bytes) else signature
    return hmac.compare_digest(sign(key, value), text)


def refusal(what: str, value: bytes | None, headers: Headers | None, key: bytes) -> str | None:
    """Why a message of kind ``what`` is not signed with ``key``, or None if it is.

    The one check both channels run before a message's bytes are decoded.
    """
    signature = next((v for k, v in headers or () if k == SIGNATURE_HEADER), None)
    if value is not None and is_signed_by(key, value, signature):
        return None
    return f"unsigned {what}" if signature is None else f"{what} with a wrong signature"
