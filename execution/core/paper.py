"""The paper broker: a simulated venue that fills market orders at the latest quote.

Buys fill at the ask and sells at the bid, each worsened by the configured slippage;
with a latency the order is accepted at once and filled at the first poll at or after
``submitted + latency``, at the quote in effect at that due time in market time (the
last tick stamped at or before it), not at whatever quote the venue has read by the
time it polls: so the live process, which polls and reads ticks on wall time, fills at
the price a replay of the same ticks gives. It keeps positions, cash and
realised P&L in exact decimals. Time comes from the injected clock, so a test clock
makes it deterministic.

Its own state lives in a ledger under the state dir (same line format as the journal),
written with a plain ``write`` before each answer: like a real venue, it outlives a
``kill -9`` of the execution process (the page cache keeps it); it is not fsynced,
because it simulates a remote system, not Tickwave's own durability. It is idempotent
per ``client_order_id``: a second submit of a known order places nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Final, TypeGuard, cast

from execution.core.broker import (
    BrokerEvent,
    BrokerFill,
    BrokerOrder,
    accepted,
    canceled,
    fill_events,
    fill_id_for,
    rejected,
)
from execution.core.memory_journal import JournalLike
from execution.core.positions import Book
from execution.core.state import TERMINAL, CreationIndex, Order, OrderStatus
from tickwave.clock import Clock
from tickwave.config import ExecutionSettings, default_symbols
from tickwave.contracts import (
    KindTest,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderSubmitted,
    Tick,
)
from tickwave.contracts.core import mid_price
from tickwave.instruments import Instrument, convert, registry
from tickwave.money import MONEY_CONTEXT, to_decimal

# MONEY_CONTEXT's operations, bound once: looking one up on the context costs ~60 ns (the exact sums run per fill).
_add: Final = MONEY_CONTEXT.add
_multiply: Final = MONEY_CONTEXT.multiply
_subtract: Final = MONEY_CONTEXT.subtract

LEDGER_MIN_FREE_BYTES: Final = 64 << 10  # less free: an order's ledger write may not fit, so the order is refused
# A symbol's quotes are kept this long behind its newest tick, beyond the latency (a poll that late still finds
# the quote of its order's due time), and never more than QUOTE_HISTORY_MAX of them.
QUOTE_HISTORY_MS: Final = 10_000
QUOTE_HISTORY_MAX: Final = 4_096
_BPS: Final = Decimal(10_000)
_ZERO: Final = Decimal(0)


_Ledgered = OrderSubmitted | OrderAccepted | OrderRejected | OrderFilled | OrderCanceled
_LEDGERED: Final = KindTest(OrderSubmitted, OrderAccepted, OrderRejected, OrderFilled, OrderCanceled)


def _is_ledgered(event: OrderSubmitted | BrokerEvent) -> TypeGuard[_Ledgered]:
    # The ledger keeps the order's lifecycle; a ``Fill`` record is rebuilt from its ``OrderFilled``.
    return _LEDGERED(event)


class _PaperOrder:
    """One order as the venue holds it: its status and fills change as it is worked.

    A plain class, not a dataclass: compiled (``app.native``), a dataclass's ``__init__`` is
    still generated in Python, and the venue makes one per order on the decision path.
    """

    def __init__(self, submitted: OrderSubmitted) -> None:
        self.submitted = submitted
        self.status = OrderStatus.SUBMITTED
        self.broker_order_id = ""
        self.due_at_ms = 0
        self.fills: list[BrokerFill] = []
        self.reason = ""


def _broker_order(cid: str, paper: _PaperOrder) -> BrokerOrder:
    """Return the order as the venue reports it."""
    return BrokerOrder(
        client_order_id=cid,
        broker_order_id=paper.broker_order_id,
        symbol=paper.submitted.symbol,
        side=paper.submitted.side,
        quantity_lots=paper.submitted.quantity_lots,
        status=paper.status,
        fills=tuple(paper.fills),
        reason=paper.reason,
    )


class PaperBroker:
    """Simulated fills, positions, cash and P&L; deterministic under a test clock."""

    name = "paper"
    lookback_ms = 0  # orders(since_ms) returns those created at or after it, and the working ones

    def __init__(
        self,
        settings: ExecutionSettings,
        clock: Clock,
        ledger: JournalLike,
        instruments: Mapping[str, Instrument] | None = None,
        account: bool = True,
    ) -> None:
        """Rebuild the account from ``ledger``, the journal the venue keeps its orders in.

        The live process's ledger is a file under the state dir (opened by the shell:
        :func:`execution.brokers.registry.open_paper_broker`); a replay's is kept in memory
        (:class:`~execution.core.memory_journal.MemoryJournal`).

        The account keeps cash and realised P&L per currency, exactly, as a multi-currency
        ledger does (a EURJPY trade settles in JPY); :meth:`account_value` converts them at
        the latest quotes. ``account`` False keeps only the net positions (``lots``): for a
        replay, whose P&L is what the engine booked (the same rule, :class:`Book`).
        """
        self.clock = clock
        self.slippage = to_decimal(settings.paper_broker.slippage_bps) / _BPS
        # The fill price's factors, worked out once (the same decimals as on each fill before).
        self._buy_factor, self._sell_factor = 1 + self.slippage, 1 - self.slippage
        self.latency_ms = settings.paper_broker.latency_ms
        self.instruments = instruments if instruments is not None else registry(default_symbols())
        self.account_currency = settings.account_currency
        self.cash: dict[str, Decimal] = {self.account_currency: to_decimal(settings.paper_broker.initial_cash)}
        self.realized: dict[str, Decimal] = {}
        self.books: dict[str, Book] = {}
        self.lots: dict[str, Decimal] = {}  # the net position per symbol
        self._keeps_account = account
        self._quote_keep_ms = self.latency_ms + QUOTE_HISTORY_MS
        self._quotes: dict[str, deque[Tick]] = {}  # per symbol, oldest first: the quote in effect at each instant
        self._orders: dict[str, _PaperOrder] = {}
        self._working: set[str] = set()  # accepted, not yet filled (poll looks only at these)
        self._created = CreationIndex()  # orders(since_ms) reads a window of it
        self._received = 0  # orders received, let go or not: the next one's broker id
        self._ledger: JournalLike = ledger
        for event in self._ledger.events():
            if isinstance(event, OrderSubmitted | OrderAccepted | OrderRejected | OrderFilled | OrderCanceled):
                self._apply(event)
        self._ledger.release_loaded()

    # -- the Broker interface -------------------------------------------------------------

    def venue(self) -> str:
        """Return ``paper``: the simulated venue."""
        return self.name

    def submit(self, intent: OrderIntent) -> list[BrokerEvent]:
        """Accept and (without latency) fill a market order at the latest quote.

        Every call is written to the ledger as it arrives, a repeated ``client_order_id``
        too (then it changes nothing: idempotent), so the ledger counts what the venue was
        sent, not only what it acted on.
        """
        now_ms = self.clock.now_ms()
        submitted = OrderSubmitted(
            client_order_id=intent.client_order_id,
            signal_id=intent.signal_id,
            symbol=intent.symbol,
            model_id=intent.model_id,
            model_version=intent.model_version,
            event_at_ms=now_ms,
            side=intent.side,
            quantity_lots=intent.quantity_lots,
            order_type=intent.order_type,
            limit_price=intent.limit_price,
        )
        if intent.client_order_id in self._orders:
            self._ledger.append(submitted)  # received again: recorded, not acted on
            return []
        # A venue that cannot keep its ledger takes no order: refused before acting, so the
        # account never holds a fill its ledger lacks (the refusal is the caller's to record).
        # Only when nearly nothing is left: the execution halts first, at "disk full".
        problem = self._ledger.space_problem_now(LEDGER_MIN_FREE_BYTES)
        if problem is not None:
            return [rejected(intent, f"the paper ledger is short of space: {problem}", now_ms)]
        self._apply(submitted)
        if intent.symbol not in self._quotes:
            answer: OrderAccepted | OrderRejected = rejected(intent, f"no quote for {intent.symbol}", now_ms)
        elif intent.order_type != "market":
            answer = rejected(intent, "the paper broker fills market orders only", now_ms)
        else:
            answer = accepted(intent, f"paper-{self._received}", now_ms)
        self._apply(answer)
        events: list[BrokerEvent] = [answer]
        if self.latency_ms == 0 and isinstance(answer, OrderAccepted):
            events += self._fill(self._orders[intent.client_order_id], now_ms)
        # One write for the call: a kill leaves the order wholly recorded or not at all (not
        # accepted without its immediate fill), and it is one syscall on the decision path.
        self._ledger.append_all([submitted, *[event for event in events if _is_ledgered(event)]])
        return events

    def cancel(self, order: Order, reason: str) -> list[BrokerEvent]:
        """Cancel an order still waiting for its fill."""
        paper = self._orders.get(order.client_order_id)
        if paper is None or paper.status not in (OrderStatus.SUBMITTED, OrderStatus.ACCEPTED):
            return []
        event = canceled(order, reason, self.clock.now_ms())
        self._record(event)
        return [event]

    def poll(self) -> list[BrokerEvent]:
        """Fill the orders whose latency has elapsed."""
        now_ms = self.clock.now_ms()
        events: list[BrokerEvent] = []
        for client_order_id in list(self._working):
            paper = self._orders[client_order_id]
            # After a restart the venue has no quote until the next tick: the order waits for one.
            if paper.due_at_ms <= now_ms and paper.submitted.symbol in self._quotes:
                filled = self._fill(paper, now_ms)
                self._ledger.append(filled[0])
                events += filled
        return events

    def next_due_ms(self) -> int | None:
        """Return when the earliest accepted order falls due for its fill (None: nothing is waiting).

        A replay (``execution.backtest``) moves its clock to this instant and polls, as the
        live loop's poll does within ``POLL_TIMEOUT_S`` of it.
        """
        if not self._working:  # without latency, always (a replay asks before and after every event)
            return None
        return min(self._orders[cid].due_at_ms for cid in self._working)

    def on_tick(self, tick: Tick) -> None:
        """Keep the symbol's quotes of the last moments (a tick older than its newest is ignored)."""
        history = self._quotes.get(tick.symbol)
        if history is None:
            history = self._quotes[tick.symbol] = deque()
        elif tick.time_ms < history[-1].time_ms:
            return
        history.append(tick)
        # The first kept quote stays the one in effect at the horizon: drop it only once the next is at or before it.
        horizon_ms = tick.time_ms - self._quote_keep_ms
        while len(history) > 1 and (history[1].time_ms <= horizon_ms or len(history) > QUOTE_HISTORY_MAX):
            history.popleft()

    def quote_at(self, symbol: str, at_ms: int) -> Tick | None:
        """Return ``symbol``'s quote in effect at ``at_ms``: its last tick stamped at or before it.

        None before the symbol's first tick; when every kept tick is later (the venue restarted
        after the order fell due, or the host's clock is behind the ticks' stamps), the earliest.
        """
        history = self._quotes.get(symbol)
        if history is None:
            return None
        for quote in reversed(history):  # mostly the newest: a poll runs within moments of the due time
            if quote.time_ms <= at_ms:
                return quote
        return history[0]

    def orders(self, since_ms: int | None = None) -> Mapping[str, BrokerOrder]:
        """Return the orders created at or after ``since_ms`` and every working one (all of them when None).

        The window matters even in memory: every order of the run, rebuilt at each periodic
        reconciliation, made a long replay quadratic (a fifth of a 200,000-row engine backtest).
        """
        chosen: Iterable[str] = self._orders
        if since_ms is not None:  # in time order, then the older working ones (a stable order: replays repeat)
            window = self._created.since(since_ms)
            chosen = window + sorted(self._working.difference(window))
        return {cid: _broker_order(cid, self._orders[cid]) for cid in chosen}

    def retire(self, before_ms: int) -> int:
        """Let go of the ended orders created before ``before_ms``; return how many (the ledger keeps them)."""
        retired = self._created.retire(before_ms, lambda cid: self._orders[cid].status in TERMINAL)
        for cid in retired:
            del self._orders[cid]
        return len(retired)

    def positions(self) -> Mapping[str, Decimal]:
        """Return the net position per symbol (lots)."""
        return {symbol: lots for symbol, lots in self.lots.items() if lots}

    @property
    def quotes(self) -> Mapping[str, Tick]:
        """Return the latest quote per symbol."""
        return {symbol: history[-1] for symbol, history in self._quotes.items()}

    def close(self) -> None:
        """Close the ledger."""
        self._ledger.close()

    # -- internals ------------------------------------------------------------------------

    def _fill(self, paper: _PaperOrder, now_ms: int) -> list[BrokerEvent]:
        # Filled now, at the quote in effect when the order fell due (the poll may come later).
        order = paper.submitted
        quote = self.quote_at(order.symbol, paper.due_at_ms)
        assert quote is not None  # the callers fill only a symbol that has quoted
        if order.side == "buy":
            price = to_decimal(quote.ask) * self._buy_factor
        else:
            price = to_decimal(quote.bid) * self._sell_factor
        fill = BrokerFill(
            fill_id=fill_id_for(order.client_order_id, len(paper.fills)),
            price=float(price),
            lots=order.quantity_lots,
            filled_at_ms=now_ms,
            deal_id=f"{paper.broker_order_id}-{len(paper.fills)}",
        )
        events = fill_events(order, fill, order.quantity_lots, is_final=True)
        self._apply(cast(OrderFilled, events[0]), fill)  # the caller writes it to the ledger
        return events

    def _record(self, event: OrderSubmitted | BrokerEvent) -> None:
        if _is_ledgered(event):
            self._ledger.append(event)
            self._apply(event)

    def _apply(self, event: _Ledgered, fill: BrokerFill | None = None) -> None:
        # ``fill``: the execution an ``OrderFilled`` was just built from (else rebuilt from the event).
        cid = event.client_order_id
        if type(event) is OrderSubmitted:  # exact types (never subclassed): an isinstance missing costs ~150 ns
            if cid not in self._orders:  # a repeat changes nothing
                self._orders[cid] = _PaperOrder(event)
                self._created.add(event.event_at_ms, cid)
                self._received += 1
            return
        paper = self._orders[cid]
        self._working.discard(cid)
        if type(event) is OrderAccepted:
            self._working.add(cid)
            paper.status = OrderStatus.ACCEPTED
            paper.broker_order_id = event.broker_order_id
            paper.due_at_ms = event.event_at_ms + self.latency_ms
        elif type(event) is OrderFilled:  # before the rarer answers
            paper.status = OrderStatus.FILLED if event.is_final else OrderStatus.PARTIALLY_FILLED
            paper.fills.append(
                fill
                or BrokerFill(
                    event.fill_id,
                    event.fill_price,
                    event.fill_lots,
                    event.event_at_ms,
                    f"{paper.broker_order_id}-{len(paper.fills)}",
                )
            )
            self._settle(paper.submitted, event)
        elif type(event) is OrderRejected:
            paper.status, paper.reason = OrderStatus.REJECTED, event.reason
        else:
            paper.status, paper.reason = OrderStatus.CANCELED, cast(OrderCanceled, event).reason

    def _settle(self, order: OrderSubmitted, fill: OrderFilled) -> None:
        symbol, quantity = order.symbol, to_decimal(fill.fill_lots)
        signed = quantity if order.side == "buy" else -quantity
        self.lots[symbol] = _add(self.lots.get(symbol, _ZERO), signed)
        if not self._keeps_account:
            return
        spec, price = self.instruments[symbol], to_decimal(fill.fill_price)
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = Book()
        contract = to_decimal(spec.contract_size)
        # Units (lots x contract size) first, then x price: Instrument.price_pnl's products, in its order.
        realized = _multiply(contract, book.fill(signed, price))
        self.realized[spec.quote] = _add(self.realized.get(spec.quote, _ZERO), realized)
        units = _multiply(signed, contract)
        paid = _multiply(units, price)
        self.cash[spec.quote] = _subtract(self.cash.get(spec.quote, _ZERO), paid)
        self.cash[spec.base] = _add(self.cash.get(spec.base, _ZERO), units)

    def account_value(self, amounts: Mapping[str, Decimal]) -> Decimal | None:
        """Sum per-currency ``amounts`` in the account currency at the latest mids (None without a rate)."""
        mids = {symbol: mid_price(history[-1].bid, history[-1].ask) for symbol, history in self._quotes.items()}
        total = Decimal(0)
        for currency, amount in sorted(amounts.items()):
            converted = convert(amount, currency, self.account_currency, self.instruments, mids)
            if converted is None:
                return None
            total = _add(total, converted)
        return total

    @property
    def realized_pnl(self) -> Decimal | None:
        """Realised P&L in the account currency at the latest mids."""
        return self.account_value(self.realized)
