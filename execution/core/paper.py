"""The paper broker: a simulated venue that fills market orders at the quote of their due time.

Buys fill at the ask and sells at the bid, each worsened by the configured slippage;
with a latency the order is accepted at once and filled at the first poll at or after
``submitted + latency``, at the quote in effect at that due time in market time (the
last tick stamped at or before it), not at whatever quote the venue has read by the
time it polls: so the live process, which polls and reads ticks on wall time, fills at
the price a replay of the same ticks gives. It keeps positions, cash and
realised P&L in exact decimals. Time comes from the injected clock, so a test clock
makes it deterministic.

The venue's rules and state (its orders, each symbol's quotes, the fill price, the settlement
into FIFO books) are the execution core's (``paper.rs``, :class:`tickwave_core.PaperVenue`);
this facade reads the clock and the ledger's free space, hands the core the contract structs and writes
the ledger; the events it answers with are built by the core (``paper.rs``, ``broker.rs``).

Its own state lives in a ledger under the state dir (same line format as the journal),
written with a plain ``write`` before each answer: like a real venue, it outlives a
``kill -9`` of the execution process (the page cache keeps it); it is not fsynced,
because it simulates a remote system, not Tickwave's own durability. It is idempotent
per ``client_order_id``: a second submit of a known order places nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Final, cast

from tickwave_core import PaperVenue

from execution.core.broker import BrokerEvent, BrokerFill, BrokerOrder
from execution.core.memory_journal import JournalLike
from execution.core.state import Order, OrderStatus
from tickwave.clock import Clock
from tickwave.config import ExecutionSettings, default_symbols
from tickwave.contracts import (
    Message,
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

LEDGER_MIN_FREE_BYTES: Final = 64 << 10  # less free: an order's ledger write may not fit, so the order is refused
# A symbol's quotes are kept this long behind its newest tick, beyond the latency (a poll that late still finds
# the quote of its order's due time), and never more than QUOTE_HISTORY_MAX of them (the core's ``paper.rs``).
QUOTE_HISTORY_MS: Final = 10_000
QUOTE_HISTORY_MAX: Final = 4_096

_Ledgered = OrderSubmitted | OrderAccepted | OrderRejected | OrderFilled | OrderCanceled


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
        replay, whose P&L is what the engine booked (the same rule, ``positions.rs``).

        Raises:
            ValueError: for a slippage whose fill price factor needs more than 28 digits.
        """
        self.clock = clock
        self.latency_ms = settings.paper_broker.latency_ms
        self.instruments = instruments if instruments is not None else registry(default_symbols())
        self.account_currency = settings.account_currency
        facts = {
            symbol: (to_decimal(spec.contract_size), spec.base, spec.quote) for symbol, spec in self.instruments.items()
        }
        self._venue = PaperVenue(
            self.latency_ms,
            settings.paper_broker.slippage_bps,
            account,
            self.account_currency,
            to_decimal(settings.paper_broker.initial_cash),
            facts,
        )
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
        venue = self._venue
        # A venue that cannot keep its ledger takes no order: refused before acting, so the
        # account never holds a fill its ledger lacks (the refusal is the caller's to record).
        # Only when nearly nothing is left: the execution halts first, at "disk full".
        problem = None if venue.knows(intent.client_order_id) else self._ledger.space_problem_now(LEDGER_MIN_FREE_BYTES)
        ledgered, answers = venue.submit(intent, self.clock.now_ms(), problem)
        # One write for the call: a kill leaves the order wholly recorded or not at all (not
        # accepted without its immediate fill), and it is one syscall on the decision path.
        if ledgered:
            self._ledger.append_all(cast(list[Message], ledgered))
        return cast(list[BrokerEvent], answers)

    def cancel(self, order: Order, reason: str) -> list[BrokerEvent]:
        """Cancel an order still waiting for its fill (written to the ledger before the venue acts on it)."""
        event = self._venue.cancellation(order.client_order_id, reason, self.clock.now_ms())
        if event is None:
            return []
        self._ledger.append(cast(OrderCanceled, event))
        self._venue.canceled(order.client_order_id, reason)
        return [cast(OrderCanceled, event)]

    def poll(self) -> list[BrokerEvent]:
        """Fill the orders whose latency has elapsed (after a restart, once their symbol has quoted again)."""
        events = cast(list[BrokerEvent], self._venue.poll(self.clock.now_ms()))
        for event in events:
            if type(event) is OrderFilled:  # the ledger rebuilds the Fill record from it
                self._ledger.append(event)
        return events

    def next_due_ms(self) -> int | None:
        """Return when the earliest accepted order falls due for its fill (None: nothing is waiting).

        A replay (``execution.backtest``) moves its clock to this instant and polls, as the
        live loop's poll does within ``POLL_TIMEOUT_S`` of it.
        """
        return self._venue.next_due_ms()

    def on_tick(self, tick: Tick) -> None:
        """Keep the symbol's quotes of the last moments (a tick older than its newest is ignored)."""
        self._venue.on_tick(tick)

    def quote_at(self, symbol: str, at_ms: int) -> Tick | None:
        """Return ``symbol``'s quote in effect at ``at_ms``: its last tick stamped at or before it.

        None before the symbol's first tick; when every kept tick is later (the venue restarted
        after the order fell due, or the host's clock is behind the ticks' stamps), the earliest.
        """
        return cast(Tick | None, self._venue.quote_at(symbol, at_ms))

    def orders(self, since_ms: int | None = None) -> Mapping[str, BrokerOrder]:
        """Return the orders created at or after ``since_ms`` and every working one (all of them when None).

        The window matters even in memory: every order of the run, rebuilt at each periodic
        reconciliation, made a long replay quadratic (a fifth of a 200,000-row engine backtest).
        """
        return {cid: self._broker_order(cid) for cid in self._venue.ids_since(since_ms)}

    def retire(self, before_ms: int) -> int:
        """Let go of the ended orders created before ``before_ms``; return how many (the ledger keeps them)."""
        return self._venue.retire(before_ms)

    def positions(self) -> Mapping[str, Decimal]:
        """Return the net position per symbol (lots)."""
        return self._venue.positions()

    @property
    def quotes(self) -> Mapping[str, Tick]:
        """Return the latest quote per symbol."""
        return cast(Mapping[str, Tick], self._venue.latest_quotes())

    @property
    def lots(self) -> Mapping[str, Decimal]:
        """Return the net position per symbol, flat ones too (a copy)."""
        return self._venue.lots

    @property
    def cash(self) -> Mapping[str, Decimal]:
        """Return the cash per currency (a copy)."""
        return self._venue.cash

    @property
    def realized(self) -> Mapping[str, Decimal]:
        """Return the realised P&L per currency in it (a copy)."""
        return self._venue.realized

    def close(self) -> None:
        """Close the ledger."""
        self._ledger.close()

    # -- internals ------------------------------------------------------------------------

    def _broker_order(self, cid: str) -> BrokerOrder:
        known = self._venue.order(cid)
        assert known is not None  # the venue listed it
        submitted, status, broker_order_id, fills, reason = known
        order = cast(OrderSubmitted, submitted)
        return BrokerOrder(
            cid,
            broker_order_id,
            order.symbol,
            order.side,
            order.quantity_lots,
            OrderStatus(status),
            tuple(BrokerFill(*fill) for fill in fills),
            reason,
        )

    def _apply(self, event: _Ledgered) -> None:
        # Rebuilds the venue from its ledger.
        cid, venue = event.client_order_id, self._venue
        if type(event) is OrderSubmitted:  # exact types (never subclassed): an isinstance missing costs ~150 ns
            venue.submitted(event)
        elif type(event) is OrderAccepted:
            venue.accepted(cid, event.broker_order_id, event.event_at_ms)
        elif type(event) is OrderFilled:
            venue.filled(cid, event.fill_id, event.fill_lots, event.fill_price, event.event_at_ms, event.is_final)
        elif type(event) is OrderRejected:
            venue.rejected(cid, event.reason)
        else:
            venue.canceled(cid, cast(OrderCanceled, event).reason)

    def account_value(self, amounts: Mapping[str, Decimal]) -> Decimal | None:
        """Sum per-currency ``amounts`` in the account currency at the latest mids (None without a rate)."""
        mids = {symbol: mid_price(tick.bid, tick.ask) for symbol, tick in self.quotes.items()}
        return account_value(amounts, self.account_currency, self.instruments, mids)

    @property
    def core(self) -> PaperVenue:
        """The core's venue (``paper.rs``): a replay in the core runs a venue on its terms."""
        return self._venue

    @property
    def realized_pnl(self) -> Decimal | None:
        """Realised P&L in the account currency at the latest mids."""
        return self.account_value(self.realized)


def account_value(
    amounts: Mapping[str, Decimal],
    account_currency: str,
    instruments: Mapping[str, Instrument],
    mids: Mapping[str, float],
) -> Decimal | None:
    """Sum per-currency ``amounts`` in ``account_currency`` at ``mids`` (None without a rate), each converted once."""
    total = Decimal(0)
    for currency, amount in sorted(amounts.items()):
        converted = convert(amount, currency, account_currency, instruments, mids)
        if converted is None:
            return None
        total = MONEY_CONTEXT.add(total, converted)
    return total
