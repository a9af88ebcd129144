"""Signed control messages: HMAC-SHA256 over the message's bytes with a key from the secrets dir.

The operator side (``tickwave execution ...``) signs every control command it publishes;
the execution process checks the signature (a constant-time compare) and the command's
age before anything in it is acted on, so a producer without the key cannot halt, flatten
or change limits, and an old command replayed onto the topic is refused.

The key is ``<state dir>/secrets/control.key`` (directory 0700, file 0600): generated once,
atomically, by whichever side needs it first; both sides on the machine read it there.
The signature travels in a Kafka header (:data:`SIGNATURE_HEADER`), hex-encoded.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from tickwave.config import Settings

SECRETS_DIR = "secrets"
KEY_FILE = "control.key"
SIGNATURE_HEADER = "tickwave-signature"
KEY_BYTES = 32


def key_path(settings: Settings) -> Path:
    """Return the control key's file for this state directory."""
    return settings.state_path / SECRETS_DIR / KEY_FILE


def control_key(settings: Settings) -> bytes:
    """Return the control key, generating it on first use (O_EXCL: two first users agree on one key)."""
    path = key_path(settings)
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


def sign(key: bytes, value: bytes) -> str:
    """Return the hex HMAC-SHA256 of ``value``."""
    return hmac.new(key, value, hashlib.sha256).hexdigest()


def is_signed_by(key: bytes, value: bytes, signature: str | bytes | None) -> bool:
    """Whether ``signature`` is ``value``'s HMAC under ``key`` (constant-time compare)."""
    if signature is None:
        return False
    text = signature.decode("ascii", "replace") if isinstance(signature, bytes) else signature
    return hmac.compare_digest(sign(key, value), text)
