"""The replay's pure parts: the timeline, the loop that drives a service through it, and what it did.

:func:`execution.backtest.replay_session` (the shell) builds the service as the live process
does, in memory or in a temporary state dir; this module orders the recorded ticks and signals
(:func:`timeline`, :func:`core_timeline`), runs the core's loop over them (:func:`replay_in_core`), and reads the result
back: each fill's realised P&L (:func:`fill_pnls`), the round trips (:func:`count_trades`) and
the engine's booked P&L (:func:`booked_pnl`), all by the engine's own rule
(:class:`~execution.core.positions.Book`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter
from typing import TYPE_CHECKING, Final, Protocol, TypeVar, cast, overload

import msgspec
import numpy as np
import numpy.typing as npt
from tickwave_core import ReplayJournal, ReplayTimeline, replay_engine

from execution.core.engine import Engine
from execution.core.paper import PaperBroker
from tickwave.clock import ManualClock
from tickwave.contracts import AnyMessage, ControlCommand, OrderDenied, OrderFilled, OrderSubmitted, Signal, Tick
from tickwave.instruments import Instrument
from tickwave.money import MONEY_CONTEXT
from tickwave.validation import QuoteBatch, SpikeFilter, ValidationRules, check_ticks

if TYPE_CHECKING:
    from tickwave_core import FillFigure

_M = TypeVar("_M", OrderSubmitted, OrderFilled, OrderDenied)
_ENCODER: Final = msgspec.json.Encoder()
_TICKS_DECODER: Final = msgspec.json.Decoder(list[Tick])
_TICK_DECODER: Final = msgspec.json.Decoder(Tick)
_TICK_TIME: Final = attrgetter("time_ms")
_SIGNAL_TIME: Final = attrgetter("created_at_ms")
_ONE_LOT: Final = Decimal(1)  # a fill's move is per lot already


class ReplayedService(Protocol):
    """What the replay through the live process's files calls on the execution service between items."""

    def poll_broker(self) -> None:
        """Collect late broker events; reconcile when due."""
        ...


@dataclass(frozen=True)
class CoreReplay:
    """What the replay loop in the core did: its journal, the audit chain's head, the venue's positions and mids."""

    journal: ReplayJournal
    chain_head: str
    positions: dict[str, Decimal]  # net lots by symbol, the flat ones left out
    mids: dict[str, float]  # the venue's latest mid by symbol
    now_ms: int  # the replay clock at the end


@dataclass(frozen=True)
class FillPnl:
    """The realised P&L one fill booked (first-in first-out), in its instrument's quote currency."""

    client_order_id: str
    fill_id: str
    symbol: str
    side: str
    lots: Decimal
    price: Decimal
    realized: Decimal
    currency: str


class CoreEvents(Sequence[AnyMessage]):
    """A journal the core holds (a replay's in the core), as a sequence of contract events built only when read.

    Converting a 200,000-row replay's ~900,000 events to Python costs more than the replay itself; what
    its result is read for (orders, fills, denials, the figures of :func:`fill_pnls`) the core reads or
    builds alone. Iterating builds every event once and keeps them.
    """

    __slots__ = ("_built", "_counts", "_figures", "journal")

    def __init__(self, journal: ReplayJournal) -> None:
        self.journal = journal
        self._built: tuple[AnyMessage, ...] | None = None
        self._figures: tuple[int, dict[str, int], list[FillFigure]] | None = None
        self._counts: tuple[int, dict[str, int]] | None = None

    def counts(self) -> tuple[int, dict[str, int]]:
        """Return the orders sent and the denials per check (the figures' first two), the fills not booked."""
        if self._figures is not None:
            return self._figures[0], self._figures[1]
        if self._counts is None:
            self._counts = self.journal.counts()
        return self._counts

    def figures(self) -> tuple[int, dict[str, int], list[FillFigure]]:
        """Return the journal's figures (``ReplayJournal.figures``: orders, denials per check, fills), read once."""
        if self._figures is None:
            self._figures = self.journal.figures()
        return self._figures

    @property
    def is_built(self) -> bool:
        """Whether every event was built (by iterating, slicing or comparing)."""
        return self._built is not None

    def built(self) -> tuple[AnyMessage, ...]:
        """Return every event, built once."""
        if self._built is None:
            self._built = cast(tuple[AnyMessage, ...], tuple(self.journal.to_py()))
        return self._built

    def of_types(self, *types: type[AnyMessage]) -> list[AnyMessage]:
        """Return the events of ``types`` in order: only those built (from every event when they are)."""
        if self._built is not None:
            return [event for event in self._built if type(event) in types]
        return cast(list[AnyMessage], self.journal.of_tags([str(kind.__struct_config__.tag) for kind in types]))

    def __len__(self) -> int:
        return len(self.journal)

    @overload
    def __getitem__(self, index: int) -> AnyMessage: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[AnyMessage, ...]: ...
    def __getitem__(self, index: int | slice) -> AnyMessage | tuple[AnyMessage, ...]:
        if isinstance(index, slice):
            return self.built()[index]
        return self.built()[index] if self._built is not None else cast(AnyMessage, self.journal[index])

    def __iter__(self) -> Iterator[AnyMessage]:
        return iter(self.built())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CoreEvents):
            return self.built() == other.built()
        return isinstance(other, tuple) and self.built() == other

    __hash__ = None  # type: ignore[assignment]  # mutable cache, compared by content


def fill_moves(events: Iterable[AnyMessage] | ReplayJournal) -> list[FillFigure]:
    """Return what each fill of ``events`` did to its symbol's book, by the core's walk (``figures``).

    Each as ``(client_order_id, fill_id, symbol, side, lots, price, moved, opens_round_trip)``,
    ``moved`` the realised P&L in price x lots (:func:`fill_pnls` gives it in money), for readers
    of many fills that need the money of a few.

    Only the orders and fills go to the core (one conversion each); a journal the core holds is read there.
    """
    if isinstance(events, CoreEvents):
        return events.figures()[2]
    if isinstance(events, ReplayJournal):
        return events.figures()[2]
    kept = [event for event in events if type(event) is OrderSubmitted or type(event) is OrderFilled]
    return ReplayJournal(kept).figures()[2]


def fill_pnls(events: Iterable[AnyMessage] | ReplayJournal, instruments: Mapping[str, Instrument]) -> list[FillPnl]:
    """Return the realised P&L of every fill in ``events`` (a journal, live or replayed), in order.

    The same first-in first-out books as the engine and the paper broker (the core's
    ``positions.rs``, walked over the journal by its ``figures``): a live journal and a replayed
    one give the same list exactly when they hold the same fills.
    """
    result: list[FillPnl] = []
    for client_order_id, fill_id, symbol, side, lots, price, moved, _ in fill_moves(events):
        spec = instruments[symbol]
        result.append(
            FillPnl(client_order_id, fill_id, symbol, side, lots, price, realized_of(spec, moved), spec.quote)
        )
    return result


def realized_of(spec: Instrument, moved: Decimal) -> Decimal:
    """Return a fill's realised P&L in its instrument's quote currency from its move (:func:`fill_moves`)."""
    return spec.price_pnl(_ONE_LOT, moved)


def count_trades(events: Iterable[AnyMessage] | ReplayJournal) -> int:
    """Return how many round trips were opened: from flat, or by a fill that flipped through zero.

    The engine's rule (:meth:`execution.core.positions.Book.book`): a fill that opens a round trip.
    """
    return sum(figure[7] for figure in fill_moves(events))


@dataclass(frozen=True)
class ReplayResult:
    """What a replayed session did: every journaled event, the positions left and the P&L.

    Money is exact per currency, as the engine booked it (its realised P&L and its open
    positions at the last mids; a live paper ledger books the same fills by the same rule,
    :class:`~execution.core.positions.Book`); the account-currency figures convert each currency's
    sum once, at the last mids (None when a rate is missing), as the paper broker values its
    account.
    """

    events: tuple[AnyMessage, ...] | CoreEvents  # the journal, in order (the core's: each event built when read)
    positions: dict[str, Decimal]
    realized_by_currency: dict[str, Decimal]
    unrealized_by_currency: dict[str, Decimal]
    realized_pnl: Decimal | None  # account currency
    total_pnl: Decimal | None  # realised + open positions at the last mids, account currency
    account_currency: str
    # The audit hash chain's head over the journal's order events (its genesis when none; None: not computed).
    chain_head: str | None = None
    is_fast: bool = False  # replayed with the journal and the paper ledger in memory (see replay_session)
    # The round trips the engine opened, from its own bookings (None: counted from the events).
    round_trips: int | None = None

    # Exact types (contract messages are never subclassed): an isinstance that misses costs ~65 ns, and a
    # replay of 200,000 rows journals ~900,000 events.

    def _of_type(self, kind: type[_M]) -> list[_M]:
        if type(self.events) is CoreEvents:
            return cast(list[_M], self.events.of_types(kind))
        return [event for event in self.events if type(event) is kind]

    @property
    def orders(self) -> list[OrderSubmitted]:
        """Return the orders sent, in order."""
        return self._of_type(OrderSubmitted)

    @property
    def fills(self) -> list[OrderFilled]:
        """Return the fills, in order."""
        return self._of_type(OrderFilled)

    @property
    def denials(self) -> list[OrderDenied]:
        """Return the signals the gate (or sizing) turned down."""
        return self._of_type(OrderDenied)

    def denial_counts(self) -> dict[str, int]:
        """Return the denials per check (``sizing``, ``price_collar``, ...)."""
        if type(self.events) is CoreEvents:
            return dict(self.events.counts()[1])
        return dict(sorted(Counter(denial.check for denial in self.denials).items()))

    @property
    def order_count(self) -> int:
        """Return how many orders were sent (read in the core when it holds the journal)."""
        return self.events.counts()[0] if type(self.events) is CoreEvents else len(self.orders)

    @property
    def trades(self) -> int:
        """Return how many positions were opened (see :func:`count_trades`; the engine's count when kept)."""
        return count_trades(self.events) if self.round_trips is None else self.round_trips


def replay_order(tick_times: npt.NDArray[np.int64], signal_times: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Return the replay order of ticks at ``tick_times`` and signals at ``signal_times``, each as it came.

    By time, a tick before a signal at the same ms, else as they came: below ``len(tick_times)``
    a tick's index, from there on ``len(tick_times)`` plus a signal's (one stable sort, no object
    per row).
    """
    times = np.concatenate([np.asarray(tick_times, dtype=np.int64), np.asarray(signal_times, dtype=np.int64)])
    is_signal = np.arange(len(times)) >= len(tick_times)
    return np.lexsort((is_signal, times)).astype(np.int64)


def timeline(ticks: Iterable[Tick], signals: Iterable[Signal]) -> list[Tick | Signal]:
    """Return ticks and signals in replay order (:func:`replay_order`'s)."""
    given_ticks, given_signals = list(ticks), list(signals)
    tick_times = np.fromiter(map(_TICK_TIME, given_ticks), np.int64, len(given_ticks))
    signal_times = np.fromiter(map(_SIGNAL_TIME, given_signals), np.int64, len(given_signals))
    items: list[Tick | Signal] = [*given_ticks, *given_signals]
    return [items[at] for at in replay_order(tick_times, signal_times).tolist()]


def start_ms(ticks: Sequence[Tick], signals: Sequence[Signal]) -> int:
    """Return the time a replay of ``ticks`` and ``signals`` starts at: its first item's (0: nothing to replay)."""
    firsts = [min(map(_SIGNAL_TIME, signals))] if signals else []
    if type(ticks) is QuoteBatch:
        firsts += [int(ticks.time_ms.min())] if len(ticks) else []
    else:
        firsts += [min(map(_TICK_TIME, ticks))] if ticks else []
    return min(firsts, default=0)


def batch_timeline(ticks: QuoteBatch, signals: Sequence[Signal], rules: ValidationRules) -> ReplayTimeline:
    """Return ``ticks`` and ``signals`` in replay order as the core's values, the ticks from their columns.

    As :func:`core_timeline` of the decoded ticks: each tick carries whether it keeps the stateless
    rules (:func:`tickwave.validation.check_ticks`, at its own time); the caller has checked that the
    batch decodes as sent (:meth:`~tickwave.validation.QuoteBatch.is_decodable`).
    """
    signal_times = np.fromiter(map(_SIGNAL_TIME, signals), np.int64, len(signals))
    order = replay_order(ticks.time_ms, signal_times)
    valid = check_ticks(ticks, rules).passed.astype(np.uint8)
    columns = (
        ticks.symbol_code.tobytes(),
        ticks.time_ms.tobytes(),
        ticks.seq.tobytes(),
        ticks.bid.tobytes(),
        ticks.ask.tobytes(),
        ticks.last.tobytes(),
        ticks.volume.tobytes(),
        ticks.flags.tobytes(),
    )
    return ReplayTimeline.of_columns(
        list(ticks.symbols),
        columns,
        ticks.source,
        valid.tobytes(),
        signals,
        order.tobytes(),
    )


def core_timeline(ordered: Sequence[Tick | Signal], rules: ValidationRules, is_decoded: bool = True) -> ReplayTimeline:
    """Return ``ordered`` (a :func:`timeline`) as the core's values, for its replay loop.

    Each tick carries whether it keeps the stateless rules (:func:`tickwave.validation.check_ticks`,
    one call for the timeline, each tick at its own time: the replay's clock as it reaches it, the
    timeline being in order); the spike filter runs in the loop on the ticks that keep them, as the
    service checks a tick (``handle_decoded_tick``). Not ``is_decoded`` (see :func:`decoded`): each
    tick goes through its own message first, and one that is not a valid ``Tick`` keeps none of
    them (``handle_tick_bytes`` rejects it alone), the rest as decoded.
    """
    if is_decoded:
        given = [item for item in ordered if type(item) is Tick]
        return ReplayTimeline(ordered, check_ticks(given, rules).passed.tolist())
    items: list[Tick | Signal] = []
    ticks: list[Tick] = []  # the valid messages' ticks
    at: list[int | None] = []  # each timeline tick's place among them (None: not a valid message)
    for item in ordered:
        if type(item) is Tick:
            try:
                item = _TICK_DECODER.decode(_ENCODER.encode(item))
            except (msgspec.DecodeError, ValueError, TypeError):
                at.append(None)
            else:
                at.append(len(ticks))
                ticks.append(item)
        items.append(item)
    passed = check_ticks(ticks, rules).passed.tolist() if ticks else []
    return ReplayTimeline(items, [False if place is None else passed[place] for place in at])


def time_of(item: Tick | Signal) -> int:
    """The time an item is replayed at: a tick's ``time_ms``, a signal's ``created_at_ms``."""
    return item.time_ms if type(item) is Tick else cast(Signal, item).created_at_ms


def decoded(ticks: Iterable[Tick]) -> tuple[list[Tick], bool]:
    """Return ``ticks`` as the live process decodes them from its messages, through one encode and one decode.

    The same ticks as each one's own round trip (``decode(encode(tick), Tick)``), for a
    fraction of the calls; True when so. When one is not a valid ``Tick``, the ticks as they
    were and False: each then goes through its own message (``handle_tick_bytes``), which
    rejects that one alone.
    """
    given = list(ticks)
    try:
        return _TICKS_DECODER.decode(_ENCODER.encode(given)), True
    except (msgspec.DecodeError, ValueError, TypeError):
        return given, False


def replay_in_core(
    timeline: ReplayTimeline,
    engine: Engine,
    clock: ManualClock,
    broker: PaperBroker,
    spike: SpikeFilter,
    journaled: Sequence[AnyMessage],
    flatten_at: Callable[[int], ControlCommand] | None,
) -> CoreReplay:
    """Replay ``timeline`` in the core's loop (``replay.rs``) through ``engine`` and a venue on ``broker``'s terms.

    The order of effects is the execution service's (``replay.rs`` lists it); ``journaled``: the
    events the service journaled before (its start); ``spike``: the limits of each symbol's spike
    filter; ``flatten_at(now_ms)``: the operator's command that closes the positions left (when
    there are). ``clock`` ends at the replay's last instant.
    """
    journal, (head, _), positions, mids, now_ms = replay_engine(
        timeline, engine, clock, broker.core, spike, ReplayJournal(journaled), clock.now_ms(), flatten_at
    )
    return CoreReplay(journal, head, positions, mids, now_ms)


def fill_due(service: ReplayedService, broker: PaperBroker, clock: ManualClock, before_ms: int | None) -> None:
    """Poll the paper broker at each due time before ``before_ms`` (None: all that are due)."""
    while (due_ms := broker.next_due_ms()) is not None and (before_ms is None or due_ms < before_ms):
        clock.set(max(clock.now_ms(), due_ms))
        service.poll_broker()


def booked_pnl(engine: Engine) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """Realised P&L and open P&L at the latest mids, per quote currency (exact), as the engine booked them."""
    realized: dict[str, Decimal] = {}
    for amounts in engine.state.realized_by_day.values():
        for currency, amount in amounts.items():
            realized[currency] = MONEY_CONTEXT.add(realized.get(currency, Decimal(0)), amount)
    unrealized: dict[str, Decimal] = {}
    for symbol, amount in sorted(engine.valuation.unrealized_now().items()):
        quote = engine.limits.instruments[symbol].quote
        unrealized[quote] = MONEY_CONTEXT.add(unrealized.get(quote, Decimal(0)), amount)
    return realized, unrealized
