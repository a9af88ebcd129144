"""Every message on Tickwave's bus: frozen, typed, versioned msgspec structs.

Wire format: one JSON object per Kafka message, encoded by :func:`encode` and decoded
by :func:`decode` / :func:`decode_any`. The ``type`` field carries the message type and
its schema version (``"tick.v1"``); a breaking change adds a new struct with a new tag
(``"tick.v2"``) beside the old one, so old messages on a topic stay readable.

Why msgspec: it validates while it decodes, into frozen slotted structs, at ~1 us per
tick (pydantic v2 is several times slower; dataclasses + json validate nothing).

Conventions:

- Timestamps are UTC milliseconds since the Unix epoch, in fields ending ``_ms``
  (``time_ms`` is the market event time of a tick).
- Prices and volumes are floats, as MT5 gives them. Money that is *summed* (P&L,
  exposure, cash) is never accumulated in floats: see :mod:`tickwave.money`.
- Each message has an id that makes redelivery harmless (``tick_id``, ``bar_id``,
  ``signal_id``, ``client_order_id``, ``event_id``, ``fill_id``...): consumers upsert or
  skip by it.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from tickwave.contracts.base import (
    Direction,
    EpochMs,
    Message,
    NonNegative,
    Positive,
    Side,
    Symbol,
    TradingState,
)
from tickwave.contracts.core import KindTest, client_order_id_for, encode, joined_id, stable_id
from tickwave.contracts.market import (
    Bar,
    DeadLetter,
    FeatureVector,
    Prediction,
    Signal,
    Tick,
)
from tickwave.contracts.orders import (
    ControlCommand,
    Fill,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderEvent,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderSubmitted,
    RiskEvent,
)
from tickwave.errors import ContractError

__all__ = [
    "MESSAGE_TYPES",
    "AnyMessage",
    "Bar",
    "ContractError",
    "ControlCommand",
    "DeadLetter",
    "Direction",
    "EpochMs",
    "FeatureVector",
    "Fill",
    "KindTest",
    "Message",
    "NonNegative",
    "OrderAccepted",
    "OrderCanceled",
    "OrderDenied",
    "OrderEvent",
    "OrderFilled",
    "OrderIntent",
    "OrderRejected",
    "OrderSubmitted",
    "Positive",
    "Prediction",
    "RiskEvent",
    "Side",
    "Signal",
    "Symbol",
    "Tick",
    "TradingState",
    "client_order_id_for",
    "decode",
    "decode_any",
    "encode",
    "joined_id",
    "stable_id",
]

AnyMessage = (
    Tick
    | DeadLetter
    | Bar
    | FeatureVector
    | Prediction
    | Signal
    | OrderIntent
    | OrderSubmitted
    | OrderAccepted
    | OrderRejected
    | OrderFilled
    | OrderCanceled
    | OrderDenied
    | Fill
    | RiskEvent
    | ControlCommand
)

MESSAGE_TYPES: tuple[type[Message], ...] = (
    Tick,
    DeadLetter,
    Bar,
    FeatureVector,
    Prediction,
    Signal,
    OrderIntent,
    OrderSubmitted,
    OrderAccepted,
    OrderRejected,
    OrderFilled,
    OrderCanceled,
    OrderDenied,
    Fill,
    RiskEvent,
    ControlCommand,
)

M = TypeVar("M", bound=Message)

_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decoder(kind: Any) -> msgspec.json.Decoder[Any]:
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    return decoder


def decode(data: bytes | bytearray | memoryview | str, kind: type[M]) -> M:
    """Decode bytes into a message of type ``kind``.

    Raises:
        ContractError: for malformed JSON, a wrong or unknown type tag, missing or
            unknown fields, wrong types, or impossible values; ``reason`` says which.
    """
    try:
        return _decoder(kind).decode(data)  # type: ignore[no-any-return]
    except (msgspec.DecodeError, ValueError, TypeError) as exc:
        raw = data.encode() if isinstance(data, str) else bytes(data)
        raise ContractError(f"invalid {kind.__name__}: {exc}", raw) from exc


def decode_any(data: bytes | bytearray | memoryview | str) -> AnyMessage:
    """Decode bytes into whichever message type their ``type`` tag names.

    Raises:
        ContractError: as :func:`decode`.
    """
    try:
        return _decoder(AnyMessage).decode(data)  # type: ignore[no-any-return]
    except (msgspec.DecodeError, ValueError, TypeError) as exc:
        raw = data.encode() if isinstance(data, str) else bytes(data)
        raise ContractError(f"invalid message: {exc}", raw) from exc
