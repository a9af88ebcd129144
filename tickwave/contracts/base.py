"""What every message shares: the field types, their checks and the base struct."""

from __future__ import annotations

import math
from typing import Annotated, Final, Literal

import msgspec

Symbol = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._#\-]+$")]
# Every integer a message carries fits 64 signed bits: the execution core and the warehouse's columns hold
# 64-bit integers, so a larger one is refused at decode as malformed (dead-lettered), never met downstream.
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
Count = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
EpochMs = Count
Positive = Annotated[float, msgspec.Meta(gt=0.0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]
Side = Literal["buy", "sell"]
Direction = Literal["long", "short", "flat"]
TradingState = Literal["ACTIVE", "REDUCING", "HALTED"]


def require_finite(message: msgspec.Struct, *names: str) -> None:
    """Raise ValueError naming the first of ``names`` whose value is not finite (None passes)."""
    for name in names:
        value = getattr(message, name)
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")


def require_positive(message: msgspec.Struct, *names: str) -> None:
    """Raise ValueError naming the first of ``names`` whose value is not above zero (None passes)."""
    for name in names:
        value = getattr(message, name)
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")


class Message(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type"):
    """Base of every bus message (not itself sent)."""
