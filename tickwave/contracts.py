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

import hashlib
import math
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from tickwave.errors import ContractError

Symbol = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._#\-]+$")]
EpochMs = Annotated[int, msgspec.Meta(ge=0)]
Positive = Annotated[float, msgspec.Meta(gt=0.0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]
Side = Literal["buy", "sell"]
Direction = Literal["long", "short", "flat"]
TradingState = Literal["ACTIVE", "REDUCING", "HALTED"]


def _require_finite(message: msgspec.Struct, *names: str) -> None:
    for name in names:
        value = getattr(message, name)
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")


def _require_positive(message: msgspec.Struct, *names: str) -> None:
    for name in names:
        value = getattr(message, name)
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")


def stable_id(*parts: object, length: int = 32) -> str:
    """Return a deterministic hex id of ``parts`` (the same inputs always give the same id)."""
    text = "\x1f".join(map(str, parts))
    return hashlib.blake2b(text.encode(), digest_size=length // 2).hexdigest()


class Message(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type"):
    """Base of every bus message (not itself sent)."""


class KindTest:
    """``isinstance(message, kinds)``, worked out once per message type and then looked up.

    ``isinstance`` against a msgspec struct class costs ~150 ns for each class that does
    not match (~0.9 us for a tuple of six order events), measured here; on the decision
    path the journal and the paper broker ask it several times per order. The answer is
    ``issubclass(type(message), kinds)``, the same as ``isinstance`` for these classes.
    """

    def __init__(self, *kinds: type) -> None:
        self.kinds = kinds
        self._known: dict[type, bool] = {}

    def __call__(self, message: object) -> bool:
        """Return whether ``message`` is an instance of one of the kinds."""
        kind = type(message)
        known = self._known.get(kind)
        if known is None:
            known = self._known[kind] = issubclass(kind, self.kinds)
        return known


# ---------------------------------------------------------------------------------------
# Market data and analytics
# ---------------------------------------------------------------------------------------


class Tick(Message, frozen=True, tag="tick.v1"):
    """One quote or trade from a market source.

    ``seq`` orders distinct ticks that share one millisecond (MT5 delivers such ticks
    and they are real), so ``(symbol, time_ms, seq)`` identifies a tick.
    """

    symbol: Symbol
    time_ms: EpochMs
    seq: Annotated[int, msgspec.Meta(ge=0)]
    bid: Positive
    ask: Positive
    last: NonNegative = 0.0
    volume: NonNegative = 0.0
    flags: int = 0
    source: str = ""

    def __post_init__(self) -> None:
        """Reject impossible quotes: non-finite, non-positive, or ask below bid."""
        # One chained comparison on the hot path (NaN fails every comparison).
        if 0.0 < self.bid <= self.ask < math.inf and 0.0 <= self.last < math.inf and 0.0 <= self.volume < math.inf:
            return
        _require_finite(self, "bid", "ask", "last", "volume")
        _require_positive(self, "bid", "ask")
        if self.ask < self.bid:
            raise ValueError(f"ask {self.ask!r} is below bid {self.bid!r}")
        raise ValueError("last and volume must be >= 0")

    @property
    def tick_id(self) -> str:
        """The natural id: symbol, event time and ordinal within the millisecond."""
        return f"{self.symbol}:{self.time_ms}:{self.seq}"

    @property
    def mid(self) -> float:
        """The mid price."""
        return (self.bid + self.ask) / 2.0


class DeadLetter(Message, frozen=True, tag="dead_letter.v1"):
    """Input that was rejected, with the reason and the raw bytes (UTF-8 or base64)."""

    source: str
    reason: str
    raw: str
    received_at_ms: EpochMs
    raw_encoding: Literal["utf-8", "base64"] = "utf-8"
    symbol: str = ""

    @property
    def dead_letter_id(self) -> str:
        """A deterministic id of the rejected input."""
        return stable_id(self.source, self.raw)


class Bar(Message, frozen=True, tag="bar.v1"):
    """OHLC of bid, ask and mid over one event-time window of one symbol."""

    symbol: Symbol
    timeframe: str
    start_ms: EpochMs
    end_ms: EpochMs
    bid_open: float
    bid_high: float
    bid_low: float
    bid_close: float
    ask_open: float
    ask_high: float
    ask_low: float
    ask_close: float
    mid_open: float
    mid_high: float
    mid_low: float
    mid_close: float
    tick_count: Annotated[int, msgspec.Meta(ge=1)]
    volume: float
    spread_mean: float
    spread_max: float

    def __post_init__(self) -> None:
        """Reject windows that end before they start and non-finite values."""
        if self.end_ms <= self.start_ms:
            raise ValueError("end_ms must be after start_ms")
        # Fast path: a sum of finite values is finite (NaN and inf propagate; an overflow
        # only sends a valid bar to the exact check below).
        total = (
            self.bid_open + self.bid_high + self.bid_low + self.bid_close + self.ask_open + self.ask_high
            + self.ask_low + self.ask_close + self.mid_open + self.mid_high + self.mid_low + self.mid_close
            + self.volume + self.spread_mean + self.spread_max
        )  # fmt: skip
        if math.isfinite(total):
            return
        _require_finite(self, "bid_open", "bid_high", "bid_low", "bid_close", "ask_open", "ask_high",
                        "ask_low", "ask_close", "mid_open", "mid_high", "mid_low", "mid_close",
                        "volume", "spread_mean", "spread_max")  # fmt: skip

    @property
    def bar_id(self) -> str:
        """The natural key ``(symbol, timeframe, start)``."""
        return f"{self.symbol}:{self.timeframe}:{self.start_ms}"


class FeatureVector(Message, frozen=True, tag="features.v1"):
    """Indicator values at one bar close; ``None`` marks a value still warming up."""

    symbol: Symbol
    timeframe: str
    bar_start_ms: EpochMs
    values: dict[str, float | None]
    is_warm: bool
    schema_hash: str = ""

    def __post_init__(self) -> None:
        """Reject non-finite numbers (warm-up is ``None``, never NaN)."""
        if math.isfinite(sum(value for value in self.values.values() if value is not None)):
            return
        for name, value in self.values.items():
            if value is not None and not math.isfinite(value):
                raise ValueError(f"feature {name} must be finite or null, got {value!r}")

    @property
    def feature_id(self) -> str:
        """The natural key: the bar's key."""
        return f"{self.symbol}:{self.timeframe}:{self.bar_start_ms}"


class Prediction(Message, frozen=True, tag="prediction.v1"):
    """One model output for one feature vector."""

    symbol: Symbol
    timeframe: str
    bar_start_ms: EpochMs
    model_id: str
    model_version: int
    probabilities: dict[str, float]
    inference_latency_us: float
    predicted_at_ms: EpochMs
    # Added compatibly (older messages decode with the defaults): an ensemble's confidence
    # score (members' agreement x certainty of the blend) and its members ("framework:weight").
    confidence: float | None = None
    members: tuple[str, ...] = ()
    # Added compatibly: "champion" (its signal trades) or "challenger" (scored in shadow, never a signal).
    role: str = "champion"

    def __post_init__(self) -> None:
        """Require probabilities and the confidence in [0, 1]."""
        for label, probability in self.probabilities.items():
            if not (0.0 <= probability <= 1.0):
                raise ValueError(f"probability of {label} must be in [0, 1], got {probability!r}")
        if self.confidence is not None and not (0.0 <= self.confidence <= 1.0):
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence!r}")

    @property
    def prediction_id(self) -> str:
        """The natural key: model, version and bar."""
        return f"{self.model_id}:{self.model_version}:{self.symbol}:{self.timeframe}:{self.bar_start_ms}"


class Signal(Message, frozen=True, tag="signal.v1"):
    """A trading signal derived from a prediction; ``signal_id`` is deterministic."""

    signal_id: str
    symbol: Symbol
    timeframe: str
    bar_start_ms: EpochMs
    direction: Direction
    strength: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
    confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
    model_id: str
    model_version: int
    created_at_ms: EpochMs
    # Added compatibly (older messages decode with the default): an ensemble's members
    # ("framework:weight"); their confidence score is ``confidence``.
    members: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Require strength and confidence within [0, 1] (also when constructed in code)."""
        for name in ("strength", "confidence"):
            value = getattr(self, name)
            if not (0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")

    @staticmethod
    def make_id(model_id: str, model_version: int, symbol: str, timeframe: str, bar_start_ms: int) -> str:
        """Return the deterministic id of the signal for one model and bar."""
        return stable_id("signal", model_id, model_version, symbol, timeframe, bar_start_ms)


# ---------------------------------------------------------------------------------------
# Orders, fills, risk and control
# ---------------------------------------------------------------------------------------


def client_order_id_for(signal_id: str) -> str:
    """Return the client order id of the (single) order a signal may produce.

    MT5 carries it in the order ``comment`` (31 characters at most), hence the length.
    """
    return "tw-" + stable_id("order", signal_id, length=24)


class OrderIntent(Message, frozen=True, tag="order_intent.v1"):
    """A sized order the execution process wants to place, before risk checks."""

    client_order_id: str
    signal_id: str
    symbol: Symbol
    side: Side
    quantity_lots: Positive
    order_type: Literal["market", "limit"]
    model_id: str
    model_version: int
    created_at_ms: EpochMs
    limit_price: Positive | None = None

    def __post_init__(self) -> None:
        """Require a positive finite quantity and a price for limit orders."""
        # One chained comparison for a market order, the decision path's case (NaN fails it): ~1 us saved.
        if self.order_type == "market" and self.limit_price is None and 0.0 < self.quantity_lots < math.inf:
            return
        _require_finite(self, "quantity_lots", "limit_price")
        _require_positive(self, "quantity_lots", "limit_price")
        if self.order_type == "limit" and self.limit_price is None:
            raise ValueError("a limit order needs limit_price")


class _OrderEvent(Message, frozen=True):
    """Fields every order event carries, so each is traceable to its signal and model."""

    client_order_id: str
    signal_id: str
    symbol: Symbol
    model_id: str
    model_version: int
    event_at_ms: EpochMs

    @property
    def event_id(self) -> str:
        """A deterministic id: one event of a kind per order and time."""
        return stable_id(type(self).__name__, self.client_order_id, self.event_at_ms)


class OrderSubmitted(_OrderEvent, frozen=True, tag="order_submitted.v1"):
    """The order was recorded in the journal and sent to the broker.

    ``venue`` names where it went (``paper``, ``mt5:<trade server>``). It is ``UNSET``, and
    then absent from the JSON, on events journaled before it existed: a default of ``""``
    would add ``"venue":""`` when such an event is encoded again (a republished journal
    tail, an audit replay), and the audit hash chain covers the exact bytes.
    """

    side: Side
    quantity_lots: Positive
    order_type: Literal["market", "limit"]
    limit_price: Positive | None = None
    venue: str | msgspec.UnsetType = msgspec.UNSET

    @property
    def venue_name(self) -> str:
        """Return the venue, ``""`` when the event predates it."""
        return self.venue or ""


class OrderAccepted(_OrderEvent, frozen=True, tag="order_accepted.v1"):
    """The broker accepted the order."""

    broker_order_id: str


class OrderRejected(_OrderEvent, frozen=True, tag="order_rejected.v1"):
    """The broker refused the order."""

    reason: str
    broker_code: int | None = None


class OrderFilled(_OrderEvent, frozen=True, tag="order_filled.v1"):
    """The order was filled, wholly (``is_final``) or in part."""

    fill_id: str
    fill_price: Positive
    fill_lots: Positive
    cumulative_lots: Positive
    is_final: bool

    def __post_init__(self) -> None:
        """Require positive finite price and quantities."""
        # One chained comparison on the fill path (NaN fails every comparison); the checks below name the field.
        if (
            0.0 < self.fill_price < math.inf
            and 0.0 < self.fill_lots < math.inf
            and 0.0 < self.cumulative_lots < math.inf
        ):
            return
        _require_finite(self, "fill_price", "fill_lots", "cumulative_lots")
        _require_positive(self, "fill_price", "fill_lots", "cumulative_lots")


class OrderCanceled(_OrderEvent, frozen=True, tag="order_canceled.v1"):
    """The order was canceled (by a halt, an expiry or the operator)."""

    reason: str


class OrderDenied(_OrderEvent, frozen=True, tag="order_denied.v1"):
    """The pre-trade risk gate refused the order before it reached a broker."""

    reason: str
    check: str


OrderEvent = OrderSubmitted | OrderAccepted | OrderRejected | OrderFilled | OrderCanceled | OrderDenied


class Fill(Message, frozen=True, tag="fill.v1"):
    """One execution of an order at the broker, and what the execution engine booked for it.

    The booking (added compatibly: ``UNSET``, and then absent from the JSON, on records
    written before it existed, so they decode and encode again to the same bytes) is the
    engine's one accounting rule (``execution.positions.Book.book``): the symbol's position
    before and after the fill in lots, the open lots' entry value (lots x entry price,
    first-in first-out) after it, the realised P&L in the quote currency and in the account
    currency (at the live mids when booked, to 18 decimals; ``None`` when no rate was known),
    the round trip the fill belongs to (for a flip: the one it closes) and the one it opens
    (its own id from flat or on a flip, else ``""``). Exact decimals, sent as JSON strings.
    """

    fill_id: str
    client_order_id: str
    signal_id: str
    symbol: Symbol
    side: Side
    price: Positive
    quantity_lots: Positive
    commission: float
    filled_at_ms: EpochMs
    model_id: str
    model_version: int
    broker_deal_id: str = ""
    position_before_lots: Decimal | msgspec.UnsetType = msgspec.UNSET
    position_after_lots: Decimal | msgspec.UnsetType = msgspec.UNSET
    entry_value_after: Decimal | msgspec.UnsetType = msgspec.UNSET
    realized_pnl_quote: Decimal | msgspec.UnsetType = msgspec.UNSET
    realized_pnl_account: Decimal | msgspec.UnsetType | None = msgspec.UNSET
    round_trip_id: str | msgspec.UnsetType = msgspec.UNSET
    opens_round_trip_id: str | msgspec.UnsetType = msgspec.UNSET

    @property
    def is_booked(self) -> bool:
        """Return whether the record carries the engine's booking (records written before it do not)."""
        return self.round_trip_id is not msgspec.UNSET

    def __post_init__(self) -> None:
        """Require positive finite price and quantity."""
        # One chained comparison on the fill path (NaN fails every comparison); the checks below name the field.
        if (
            0.0 < self.price < math.inf
            and 0.0 < self.quantity_lots < math.inf
            and -math.inf < self.commission < math.inf
        ):
            return
        _require_finite(self, "price", "quantity_lots", "commission")
        _require_positive(self, "price", "quantity_lots")


class RiskEvent(Message, frozen=True, tag="risk_event.v1"):
    """A risk limit breach, circuit breaker, halt or resume."""

    risk_event_id: str
    kind: str
    severity: Literal["info", "warning", "critical"]
    trading_state: TradingState
    detail: str
    occurred_at_ms: EpochMs
    symbol: str = ""
    check: str = ""


class ControlCommand(Message, frozen=True, tag="control_command.v1"):
    """An operator's command to the execution process (audited on the bus)."""

    command_id: str
    command: Literal["halt", "reduce", "resume", "status", "set_limit", "flatten"]
    issued_by: str
    issued_at_ms: EpochMs
    reason: str = ""
    symbol: str = ""
    params: dict[str, str] = msgspec.field(default_factory=dict)


AnyMessage = (
    Tick | DeadLetter | Bar | FeatureVector | Prediction | Signal | OrderIntent
    | OrderSubmitted | OrderAccepted | OrderRejected | OrderFilled | OrderCanceled | OrderDenied
    | Fill | RiskEvent | ControlCommand
)  # fmt: skip

MESSAGE_TYPES: tuple[type[Message], ...] = (
    Tick, DeadLetter, Bar, FeatureVector, Prediction, Signal, OrderIntent,
    OrderSubmitted, OrderAccepted, OrderRejected, OrderFilled, OrderCanceled, OrderDenied,
    Fill, RiskEvent, ControlCommand,
)  # fmt: skip

# ---------------------------------------------------------------------------------------
# The one serializer
# ---------------------------------------------------------------------------------------

M = TypeVar("M", bound=Message)

_encoder = msgspec.json.Encoder()
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def encode(message: Message) -> bytes:
    """Serialize a message to JSON bytes (the only wire format)."""
    return _encoder.encode(message)


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
