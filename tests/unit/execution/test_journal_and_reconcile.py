"""The journal's durability rules, the paper broker, and reconciliation after a crash."""

from __future__ import annotations

import contextlib
import tempfile
from decimal import Decimal
from pathlib import Path
from unittest import mock

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution import journal as journal_module
from execution.brokers.paper import LEDGER_NAME, open_paper_broker
from execution.core.broker import (
    IDENTITY_FIELDS,
    accepted,
    canceled,
    fill_id_for,
    rejected,
)
from execution.core.engine import replay
from execution.core.memory_journal import MemoryJournal
from execution.core.paper import QUOTE_HISTORY_MAX, PaperBroker
from execution.core.state import OrderStatus
from execution.journal import JOURNAL_NAME, Journal
from tests.unit.execution.helpers import (
    WEDNESDAY_NOON_MS,
    BrokerWith,
    ListPublisher,
    execution_settings,
    make_service,
    signal,
    tick,
)
from tickwave.clock import ManualClock
from tickwave.config import ExecutionSettings, PaperBrokerSettings
from tickwave.contracts import (
    Fill,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderSubmitted,
    RiskEvent,
    Tick,
    stable_id,
)
from tickwave.errors import DataQualityError

INSTANCE = Path("execution") / "execution-1"


def _denied(index: int) -> OrderDenied:
    return OrderDenied(
        client_order_id=f"tw-{index}",
        signal_id=f"s-{index}",
        symbol="EURUSD",
        model_id="m",
        model_version=1,
        event_at_ms=index,
        reason="r",
        check="c",
    )


def test_journal_when_reopened_then_events_come_back_in_order(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.jsonl") as journal:
        for index in range(3):
            journal.append(_denied(index), sync=index == 2)
    with Journal(tmp_path / "j.jsonl") as journal:
        assert [event.signal_id for event in journal.events()] == ["s-0", "s-1", "s-2"]  # type: ignore[union-attr]


def test_journal_when_last_line_is_torn_then_it_is_cut_and_appends_continue(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal(path) as journal:
        journal.append(_denied(0))
        journal.append(_denied(1))
    data = _contents(path)
    path.write_bytes(data[:-7])  # a crash in the middle of the last write
    with Journal(path) as journal:
        assert [event.signal_id for event in journal.events()] == ["s-0"]  # type: ignore[union-attr]
        journal.append(_denied(2))
    with Journal(path) as journal:
        assert [event.signal_id for event in journal.events()] == ["s-0", "s-2"]  # type: ignore[union-attr]


def test_journal_when_a_middle_line_is_corrupt_then_opening_fails(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal(path) as journal:
        for index in range(3):
            journal.append(_denied(index))
    lines = _contents(path).splitlines(keepends=True)
    lines[1] = lines[1].replace(b"s-1", b"s-X")  # checksum no longer matches
    path.write_bytes(b"".join(lines))
    with pytest.raises(DataQualityError, match="line 2 of 3"):
        Journal(path)


def test_journal_when_a_group_lost_its_last_line_then_the_whole_group_is_cut(tmp_path: Path) -> None:
    # A power cut can keep part of a group's one write: an OrderFilled without its Fill.
    path = tmp_path / "j.jsonl"
    with Journal(path) as journal:
        journal.append(_denied(0))
        journal.append_all([_denied(1), _denied(2)])
    lines = _contents(path).splitlines(keepends=True)
    assert [line[8:9] for line in lines] == [b" ", b"+", b" "]
    path.write_bytes(b"".join(lines[:2]))  # the group's first line is whole, its last is gone
    with Journal(path) as journal:
        assert [event.signal_id for event in journal.events()] == ["s-0"]  # type: ignore[union-attr]
        assert journal.count == 1
        journal.append(_denied(3))
    with Journal(path) as journal:
        assert [event.signal_id for event in journal.events()] == ["s-0", "s-3"]  # type: ignore[union-attr]


@pytest.mark.parametrize(("line", "separator"), [(0, b" "), (1, b"+")])
def test_journal_when_a_separator_is_flipped_then_the_line_is_corrupt(
    tmp_path: Path, line: int, separator: bytes
) -> None:
    path = tmp_path / "j.jsonl"
    with Journal(path) as journal:
        journal.append_all([_denied(0), _denied(1)])  # "+" then " "
        journal.append(_denied(2))
    lines = _contents(path).splitlines(keepends=True)
    lines[line] = lines[line][:8] + separator + lines[line][9:]
    path.write_bytes(b"".join(lines))
    with pytest.raises(DataQualityError, match=f"line {line + 1} of 3"):
        Journal(path)


def _contents(path: Path) -> bytes:
    """The journal's lines, without the preallocated zero tail."""
    return path.read_bytes().rstrip(b"\0")


def test_journal_when_fsync_on_then_space_is_preallocated_and_writes_go_in_place_at_the_contents_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "PREALLOCATE_BYTES", 4096)
    monkeypatch.setattr(journal_module, "PREALLOCATE_HEADROOM", 1024)
    path = tmp_path / "j.jsonl"
    with Journal(path) as journal:
        journal.append(_denied(0), sync=True)
        first_size, first = path.stat().st_size, _contents(path)
        for index in range(1, 30):  # past the first 4 KiB: the space is extended
            journal.append(_denied(index), sync=True)
    with Journal(path) as journal:
        assert [event.signal_id for event in journal.events()] == [f"s-{n}" for n in range(30)]  # type: ignore[union-attr]
        journal.append(_denied(30))

    assert first_size == 4096 and first.endswith(b"\n") and len(first) < first_size  # zeros after the contents
    size, contents = path.stat().st_size, _contents(path)
    assert size % 4096 == 0 and size - len(contents) >= 1024  # extended, headroom kept
    assert contents.count(b"\n") == 31 and b"\0" not in contents  # in place, nothing written twice or skipped
    with Journal(path, fsync=False) as unsynced:
        assert unsynced.count == 31


@settings(max_examples=150, deadline=None)
@given(
    group_sizes=st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=6),
    cut=st.floats(min_value=0.0, max_value=1.0),
    zero_tail=st.booleans(),
)
def test_journal_when_cut_anywhere_then_exactly_the_whole_groups_before_the_cut_remain(
    group_sizes: list[int], cut: float, zero_tail: bool
) -> None:
    # A 4 KiB preallocation (1 KiB headroom), so the groups also cross an extension: with the
    # 4 MiB of production, reading and rewriting the file made this test 18 s of the unit tests.
    small = mock.patch.multiple(journal_module, PREALLOCATE_BYTES=4096, PREALLOCATE_HEADROOM=1024)
    with tempfile.TemporaryDirectory() as directory, small:
        path = Path(directory) / "j.jsonl"
        ends, index = [], 0  # each group's end in bytes, and the events up to it
        with Journal(path) as journal:
            for size in group_sizes:
                journal.append_all([_denied(index + offset) for offset in range(size)])
                index += size
                ends.append((len(_contents(path)), index))
        data = _contents(path)
        kept = int(len(data) * cut)
        # the cut leaves the preallocated zeros after it (a torn in-place write), or none (a shorter file)
        path.write_bytes(data[:kept] + (bytes(path.stat().st_size - kept) if zero_tail else b""))
        expected = max((count for end, count in ends if end <= kept), default=0)
        with Journal(path) as journal:
            assert [event.signal_id for event in journal.events()] == [  # type: ignore[union-attr]
                f"s-{number}" for number in range(expected)
            ]
            journal.append(_denied(index))
        with Journal(path) as journal:
            assert journal.count == expected + 1, "appending after the cut must leave a readable journal"


def test_paper_when_buy_and_sell_then_fill_at_ask_and_bid_with_slippage(tmp_path: Path) -> None:
    clock = ManualClock(WEDNESDAY_NOON_MS)
    broker = open_paper_broker(
        ExecutionSettings(paper_broker=PaperBrokerSettings(slippage_bps=10)), clock, tmp_path / LEDGER_NAME
    )
    broker.on_tick(tick(clock.now_ms(), 1.1, spread=0.0002))
    service = make_service(tmp_path / "s", clock, market_hours="always")
    service.handle_tick(tick(clock.now_ms(), 1.1, spread=0.0002))
    intent = service.engine.on_signal(signal(1, clock.now_ms())).intent
    assert intent is not None and intent.side == "buy"
    events = broker.submit(intent)
    fill = next(event for event in events if isinstance(event, OrderFilled))
    assert fill.fill_price == pytest.approx(1.1001 * 1.001)
    assert broker.submit(intent) == [], "a second submit of the same order must place nothing"
    assert broker.positions() == {"EURUSD": 1}
    service.close()
    broker.close()


def test_paper_when_an_order_fills_at_once_then_the_ledger_has_it_in_one_group(tmp_path: Path) -> None:
    # Submitted, accepted and filled in one group (one write): a kill leaves all three or none,
    # never an order accepted at the venue without its immediate fill.
    clock = ManualClock(WEDNESDAY_NOON_MS)
    broker = open_paper_broker(execution_settings(), clock, tmp_path / LEDGER_NAME)
    broker.on_tick(tick(clock.now_ms(), 1.1))
    service = make_service(tmp_path / "s", clock, market_hours="always")
    service.handle_tick(tick(clock.now_ms(), 1.1))
    intent = service.engine.on_signal(signal(1, clock.now_ms())).intent
    assert intent is not None
    broker.submit(intent)
    lines = _contents(tmp_path / LEDGER_NAME).splitlines()
    assert [line[8:9] for line in lines] == [b"+", b"+", b" "]  # two lines with more of the group, then its last
    assert [line.split(b'"type":"')[1].split(b'"')[0] for line in lines] == [
        b"order_submitted.v1",
        b"order_accepted.v1",
        b"order_filled.v1",
    ]
    service.close()
    broker.close()


def test_paper_when_latency_then_fills_at_first_poll_after_it(tmp_path: Path) -> None:
    clock = ManualClock(WEDNESDAY_NOON_MS)
    service = make_service(tmp_path, clock, market_hours="always", paper_broker={"latency_ms": 50})
    service.handle_tick(tick(clock.now_ms(), 1.1))
    service.handle_signal(signal(1, clock.now_ms()))
    assert service.engine.working_orders()
    clock.advance(49)
    service.poll_broker()
    assert service.engine.working_orders()
    clock.advance(1)
    service.handle_tick(tick(clock.now_ms(), 1.101))
    service.poll_broker()
    order = next(iter(service.engine.orders.values()))
    assert order.status == OrderStatus.FILLED
    assert service.broker.orders()[order.client_order_id].fills[0].price > 1.101
    service.close()


def test_paper_when_polled_late_then_fills_at_the_quote_in_effect_at_the_due_time(tmp_path: Path) -> None:
    # The live loop reads ticks and polls on wall time: a late poll has read quotes stamped after the
    # order fell due. The fill is at the one in effect at its due time, as a replay of those ticks gives.
    clock = ManualClock(WEDNESDAY_NOON_MS)
    start = clock.now_ms()
    broker = open_paper_broker(
        ExecutionSettings(paper_broker=PaperBrokerSettings(latency_ms=1_000, slippage_bps=0)),
        clock,
        tmp_path / LEDGER_NAME,
    )
    broker.on_tick(tick(start, 1.1))
    broker.submit(_market("late", start))
    broker.on_tick(tick(start + 400, 1.2))  # in effect at the due time (start + 1,000)
    broker.on_tick(tick(start + 1_000, 1.3))  # stamped at the due time itself: in effect too
    broker.on_tick(tick(start + 1_001, 1.4))  # after it: read before the poll, yet not the due time's price
    clock.advance(1_300)

    filled = [event for event in broker.poll() if isinstance(event, OrderFilled)]

    assert [event.fill_price for event in filled] == [1.3 + 0.0001 / 2]
    assert filled[0].event_at_ms == start + 1_300, "filled when polled"
    broker.close()


@settings(max_examples=300, deadline=None)
@given(
    bid=st.floats(min_value=1e-5, max_value=1e6),
    spread=st.floats(min_value=0.0, max_value=1.0),
    slippage_bps=st.one_of(st.just(0.0), st.floats(min_value=1e-3, max_value=1_000.0)),
    side=st.sampled_from(["buy", "sell"]),
)
def test_paper_fill_price_when_any_quote_and_slippage_then_as_python_decimals_give(
    bid: float, spread: float, slippage_bps: float, side: str
) -> None:
    # The oracle: the rule as Python's decimals state it (the quote's repr, its default 28-digit context).
    ask = bid * (1 + spread)
    slippage = Decimal(repr(slippage_bps)) / Decimal(10_000)
    expected = float(Decimal(repr(ask)) * (1 + slippage) if side == "buy" else Decimal(repr(bid)) * (1 - slippage))
    clock = ManualClock(WEDNESDAY_NOON_MS)
    broker = PaperBroker(
        ExecutionSettings(paper_broker=PaperBrokerSettings(slippage_bps=slippage_bps)), clock, MemoryJournal()
    )
    broker.on_tick(Tick(symbol="EURUSD", time_ms=clock.now_ms(), seq=0, bid=bid, ask=ask))

    events = broker.submit(msgspec.structs.replace(_market("c", clock.now_ms()), side=side))

    assert [event.fill_price for event in events if isinstance(event, OrderFilled)] == [expected]


def test_paper_when_the_slippage_needs_more_digits_than_the_price_carries_then_the_venue_refuses_it() -> None:
    # Python's context would round 1 + 1e-34 to 28 digits; the venue refuses such a setting instead.
    with pytest.raises(ValueError, match="28 digits"):
        PaperBroker(
            ExecutionSettings(paper_broker=PaperBrokerSettings(slippage_bps=1e-30)),
            ManualClock(WEDNESDAY_NOON_MS),
            MemoryJournal(),
        )


def test_paper_when_ticks_run_on_then_the_quote_history_stays_bounded_and_its_start_holds(tmp_path: Path) -> None:
    clock = ManualClock(WEDNESDAY_NOON_MS)
    start = clock.now_ms()
    broker = open_paper_broker(
        ExecutionSettings(paper_broker=PaperBrokerSettings(latency_ms=1_000)), clock, tmp_path / LEDGER_NAME
    )
    for n in range(QUOTE_HISTORY_MAX * 3):  # one tick a millisecond: the count bounds the history first
        broker.on_tick(tick(start + n, 1.0 + n / 1e6))
    assert broker.quote_at("EURUSD", start) == tick(start + QUOTE_HISTORY_MAX * 2, 1.0 + QUOTE_HISTORY_MAX * 2 / 1e6)
    last_ms = start + QUOTE_HISTORY_MAX * 3 - 1
    for n in range(1, 5):  # a tick every 10 s: time bounds it, keeping the quote in effect at the horizon
        broker.on_tick(tick(last_ms + n * 10_000, 2.0 + n))
    assert broker.quote_at("EURUSD", last_ms + 40_000 - 11_000) == tick(last_ms + 20_000, 4.0)
    assert broker.quote_at("EURUSD", last_ms) == tick(last_ms + 20_000, 4.0), "nothing older is kept"
    assert broker.quote_at("EURUSD", last_ms + 39_999) == tick(last_ms + 30_000, 5.0)
    assert broker.quote_at("GBPUSD", last_ms) is None
    assert broker.quotes["EURUSD"] == tick(last_ms + 40_000, 6.0)
    broker.close()


def _market(client_order_id: str, now_ms: int) -> OrderIntent:
    return OrderIntent(
        client_order_id=client_order_id,
        signal_id=f"s-{client_order_id}",
        symbol="EURUSD",
        side="buy",
        quantity_lots=0.1,
        order_type="market",
        model_id="m",
        model_version=1,
        created_at_ms=now_ms,
    )


def test_paper_orders_when_a_window_is_asked_then_its_orders_and_every_working_one(tmp_path: Path) -> None:
    # The window keeps a long replay's periodic reconciliation linear (it rebuilt every order each time).
    clock = ManualClock(WEDNESDAY_NOON_MS)
    start = clock.now_ms()
    broker = open_paper_broker(
        ExecutionSettings(paper_broker=PaperBrokerSettings(latency_ms=1_000)), clock, tmp_path / LEDGER_NAME
    )
    broker.on_tick(tick(start, 1.1))
    broker.submit(_market("old-working", start))
    clock.advance(5_000)
    broker.submit(_market("new", clock.now_ms()))

    assert list(broker.orders(start + 4_000)) == ["new", "old-working"], "a working order counts, however old"
    broker.poll()  # old-working falls due and fills; new is not due yet
    assert set(broker.orders(start + 4_000)) == {"new"}
    assert set(broker.orders(start + 5_001)) == {"new"}, "still working"
    clock.advance(1_000)
    broker.poll()
    assert set(broker.orders(start + 5_001)) == set()
    assert set(broker.orders(start + 5_000)) == {"new"}, "filled, and created at since_ms: inside the window"
    assert set(broker.orders()) == {"old-working", "new"}
    assert broker.orders()["old-working"].status == OrderStatus.FILLED
    broker.close()
    reopened = open_paper_broker(
        ExecutionSettings(paper_broker=PaperBrokerSettings(latency_ms=1_000)), clock, tmp_path / LEDGER_NAME
    )
    assert set(reopened.orders(start + 1)) == {"new"}, "the window is rebuilt from the ledger"
    reopened.close()


def test_halt_when_orders_are_working_then_they_are_canceled_and_halt_survives_restart(tmp_path: Path) -> None:
    clock = ManualClock(WEDNESDAY_NOON_MS)
    publisher = ListPublisher()
    service = make_service(tmp_path, clock, publisher, market_hours="always", paper_broker={"latency_ms": 1_000})
    service.handle_tick(tick(clock.now_ms(), 1.1))
    service.handle_signal(signal(1, clock.now_ms()))
    from tickwave.contracts import ControlCommand

    service.handle_control(ControlCommand(command_id="c1", command="halt", issued_by="t", issued_at_ms=clock.now_ms()))
    assert [event.client_order_id for event in publisher.of_type(OrderCanceled)] == list(service.engine.orders)
    service.handle_signal(signal(2, clock.now_ms(), "short"))
    assert len(service.engine.orders) == 1
    service.close()
    restarted = make_service(tmp_path, clock, market_hours="always", paper_broker={"latency_ms": 1_000})
    assert restarted.engine.trading_state == "HALTED"
    restarted.close()


class _Killed(BaseException):
    """A kill -9 right after a journal write returned (nothing after it runs)."""


@pytest.mark.parametrize("writes_before_kill", range(1, 12))
def test_journal_when_killed_after_any_write_then_every_booked_fill_has_its_fill_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writes_before_kill: int
) -> None:
    # A broker reports an execution as an OrderFilled (booked) and a Fill record (the
    # audit row); a restart cannot re-create a lost record, so both land in one write.
    clock = ManualClock(WEDNESDAY_NOON_MS)
    service = make_service(tmp_path, clock, market_hours="always")
    service.handle_tick(tick(clock.now_ms(), 1.1))
    real_write, writes = journal_module.os.write, [0]

    def write_then_maybe_die(fd: int, data: bytes) -> int:
        written = real_write(fd, data)
        writes[0] += 1
        if writes[0] == writes_before_kill:
            raise _Killed
        return written

    monkeypatch.setattr(journal_module.os, "write", write_then_maybe_die)
    with contextlib.suppress(_Killed):
        for index in range(1, 4):
            service.handle_signal(signal(index, clock.now_ms(), "long" if index % 2 else "short"))
    monkeypatch.undo()
    service.broker.close()
    service.journal.close()

    with Journal(tmp_path / INSTANCE / JOURNAL_NAME) as journal:
        recorded = list(journal.events())
    booked = {event.fill_id for event in recorded if isinstance(event, OrderFilled)}
    records = {event.fill_id for event in recorded if isinstance(event, Fill)}
    assert booked == records


def _crash_after_journal_write(tmp_path: Path, clock: ManualClock, *, broker_call: bool) -> str:
    """Simulate a kill between the journal fsync and (or right after) the broker call."""
    service = make_service(tmp_path, clock, market_hours="always")
    service.handle_tick(tick(clock.now_ms(), 1.1))
    intent = service.engine.on_signal(signal(1, clock.now_ms())).intent
    assert intent is not None
    service.journal.append(service.engine.submission(intent), sync=True)
    if broker_call:
        service.broker.submit(intent)  # the answers never reach the journal
    service.journal.close()
    service.broker.close()
    return intent.client_order_id


def test_reconcile_when_order_never_reached_broker_then_expired_and_reported(tmp_path: Path) -> None:
    clock = ManualClock(WEDNESDAY_NOON_MS)
    client_order_id = _crash_after_journal_write(tmp_path, clock, broker_call=False)
    publisher = ListPublisher()
    service = make_service(tmp_path, clock, publisher, market_hours="always")
    assert service.engine.orders[client_order_id].status == OrderStatus.EXPIRED
    assert any("unknown to the broker" in event.detail for event in publisher.of_type(RiskEvent))
    service.handle_signal(signal(1, clock.now_ms()))  # redelivered: still no second order
    assert len(service.broker.orders()) == 0
    service.close()


def test_reconcile_when_broker_filled_but_journal_missed_it_then_journal_catches_up(tmp_path: Path) -> None:
    clock = ManualClock(WEDNESDAY_NOON_MS)
    client_order_id = _crash_after_journal_write(tmp_path, clock, broker_call=True)
    service = make_service(tmp_path, clock, market_hours="always")
    assert service.engine.orders[client_order_id].status == OrderStatus.FILLED
    assert service.engine.view.positions == {"EURUSD": 1}
    service.close()
    with Journal(tmp_path / INSTANCE / JOURNAL_NAME) as journal:
        events = list(journal.events())
    assert sum(isinstance(event, OrderSubmitted) for event in events) == 1
    fresh = make_service(tmp_path / "replay", clock, market_hours="always")
    replay(fresh.engine, events)
    assert fresh.engine.orders[client_order_id].status == OrderStatus.FILLED
    fresh.close()


def test_flatten_when_halted_then_paper_positions_close_through_the_journal_once(tmp_path: Path) -> None:
    from tickwave.contracts import ControlCommand

    clock = ManualClock(WEDNESDAY_NOON_MS)
    service = make_service(tmp_path, clock, market_hours="always")
    service.handle_tick(tick(clock.now_ms(), 1.1, spread=0.0002))
    service.handle_signal(signal(1, clock.now_ms(), "long", 1.0))
    assert service.broker.positions() == {"EURUSD": 1}

    for command in ("halt", "flatten", "flatten"):  # the second flatten repeats the first's command id
        number = 1 if command == "halt" else 2
        service.handle_control(
            ControlCommand(
                command_id=f"c{number}",
                command=command,
                issued_by="ops",  # type: ignore[arg-type]
                issued_at_ms=clock.now_ms(),
            )
        )

    assert dict(service.broker.positions()) == {} and service.engine.trading_state == "HALTED"
    with Journal(tmp_path / "execution" / "execution-1" / JOURNAL_NAME, fsync=False) as journal:
        flattening = [
            e for e in journal.events() if isinstance(e, OrderSubmitted) and e.signal_id.startswith("flatten")
        ]
    assert [(e.side, e.quantity_lots, e.model_id) for e in flattening] == [("sell", 1.0, "operator:ops")]
    service.close()


def test_ticks_when_one_bad_print_arrives_then_execution_neither_halts_nor_fills_at_it(tmp_path: Path) -> None:
    from tickwave.contracts import encode

    clock = ManualClock(WEDNESDAY_NOON_MS)
    service = make_service(tmp_path, clock, market_hours="always", flash_crash_pct=2.0)
    service.handle_tick(tick(clock.now_ms(), 1.1, spread=0.0002))
    clock.advance(100)
    service.handle_tick_bytes(encode(tick(clock.now_ms(), 1.21, spread=0.0002)))  # +10%: one bad print
    clock.advance(100)
    service.handle_signal(signal(1, clock.now_ms(), "long", 1.0))

    assert service.engine.view.halted_symbols == set() and service.tick_checks.rejected == 1
    fills = [e for e in service.broker.orders()[next(iter(service.broker.orders()))].fills]
    assert fills and fills[0].price < 1.11  # filled at the good quote, not at the spike
    assert service.engine.view.last_ticks["EURUSD"].mid == pytest.approx(1.1)
    service.close()


@pytest.mark.parametrize(
    ("absurd_mid", "step_ms"),
    [
        (1e300, 1),  # six ticks at 1e300, stamped just ahead of now, sent at once
        (50_000.0, 1000),  # 25x within the bounds, held for a minute: beyond the largest believable shift
    ],
)
def test_ticks_when_an_absurd_level_shift_arrives_then_execution_keeps_its_price(
    tmp_path: Path, absurd_mid: float, step_ms: int
) -> None:
    from tickwave.contracts import encode

    clock = ManualClock(WEDNESDAY_NOON_MS)
    service = make_service(tmp_path, clock, market_hours="always")
    for _ in range(10):  # a settled XAUUSD price
        service.handle_tick_bytes(encode(tick(clock.now_ms(), 2000.0, "XAUUSD", spread=0.5)))
        clock.advance(1000)
    count = 6 if step_ms == 1 else 60
    ahead_ms = 1000 if step_ms == 1 else 0  # the burst is stamped just ahead of now
    for _ in range(count):
        service.handle_tick_bytes(encode(tick(clock.now_ms() + ahead_ms, absurd_mid, "XAUUSD", 0.5)))
        clock.advance(step_ms)

    assert service.engine.view.last_ticks["XAUUSD"].mid == pytest.approx(2000.0)
    assert service.tick_checks.rejected == count
    service.close()


def test_reconcile_when_running_then_broker_orders_are_adopted_and_a_lasting_mismatch_reduces(tmp_path: Path) -> None:

    clock = ManualClock(WEDNESDAY_NOON_MS)
    service = make_service(tmp_path, clock, market_hours="always", reconciliation={"interval_s": 5})
    service.handle_tick(tick(clock.now_ms(), 1.1, spread=0.0002))
    stray = service.engine.on_signal(signal(7, clock.now_ms(), "long", 0.5)).intent
    assert stray is not None
    service.broker.submit(stray)  # reached the venue outside this journal (another session, a lost answer)
    service.poll_broker()
    assert stray.client_order_id not in service.engine.orders  # not due yet

    clock.advance(5_000)
    service.poll_broker()

    assert service.engine.orders[stray.client_order_id].status == OrderStatus.FILLED
    assert service.engine.view.positions["EURUSD"] == service.broker.positions()["EURUSD"]
    assert service.engine.trading_state == "ACTIVE"

    # The venue's position vanished: a real mismatch.
    service.broker = BrokerWith(service.broker, positions=dict)  # type: ignore[assignment]
    clock.advance(5_000)
    service.poll_broker()
    assert service.engine.trading_state == "ACTIVE"  # once could be a deal in flight
    clock.advance(5_000)
    service.poll_broker()
    assert service.engine.trading_state == "REDUCING"
    critical = [e for e in service.publisher.of_type(RiskEvent) if e.kind == "reconcile_mismatch"]
    assert critical and critical[0].severity == "critical" and "EURUSD" in critical[0].detail
    service.close()


def test_reconcile_when_filled_orders_left_the_window_then_they_are_not_adopted_again(tmp_path: Path) -> None:
    clock = ManualClock(WEDNESDAY_NOON_MS)
    publisher = ListPublisher()
    service = make_service(tmp_path, clock, publisher, market_hours="always", reconciliation={"window_s": 3600.0})
    service.handle_tick(tick(clock.now_ms()))
    service.handle_signal(signal(1, clock.now_ms(), "long", 0.5))
    # Two hours on: the filled order is older than the window, which the paper broker ignores.
    clock.advance(2 * 3_600_000)
    service.handle_tick(tick(clock.now_ms()))

    service.poll_broker()

    differences = [e.detail for e in publisher.of_type(RiskEvent) if e.kind.startswith("reconcile")]
    assert differences == [], "a settled order was adopted again"
    assert len(publisher.of_type(OrderSubmitted)) == len(publisher.of_type(OrderFilled)) == 1
    assert service.engine.view.positions == {"EURUSD": Decimal("0.5")} == service.broker.positions()


def test_service_when_an_order_is_sent_then_its_submission_names_the_paper_venue(tmp_path: Path) -> None:
    clock = ManualClock(WEDNESDAY_NOON_MS)
    publisher = ListPublisher()
    service = make_service(tmp_path, clock, publisher, market_hours="always")
    service.handle_tick(tick(clock.now_ms()))

    service.handle_signal(signal(1, clock.now_ms()))
    service.close()

    submitted = publisher.of_type(OrderSubmitted)
    assert [event.venue for event in submitted] == ["paper"]
    with Journal(tmp_path / INSTANCE / JOURNAL_NAME, fsync=False) as journal:
        journaled = [event for event in journal.events() if isinstance(event, OrderSubmitted)]
    assert journaled == submitted, "journaled with its venue: a replay sees the same event"


@settings(max_examples=200, deadline=None)
@given(client_order_id=st.text(), sequence=st.integers(min_value=0, max_value=10**6))
def test_fill_id_for_when_spelled_out_then_the_stable_id_it_always_was(client_order_id: str, sequence: int) -> None:
    # Fill ids are persisted (journal, ledger, warehouse): the fast spelling must never change one.
    assert fill_id_for(client_order_id, sequence) == stable_id("fill", client_order_id, sequence)
    assert fill_id_for("tw-abc", 0) == "a6664928ce70cc4d1d554cf7511c18f4"


def test_broker_event_builders_when_given_an_order_then_each_event_carries_its_identity_by_name() -> None:
    # The builders fill the identity positionally: the contracts' field order is what they rely on
    # (fill_events too: test_fill_booking.py spells its events out by name).
    intent = _market("c-1", WEDNESDAY_NOON_MS)
    identity = {field: getattr(intent, field) for field in IDENTITY_FIELDS}
    built = [
        accepted(intent, "b-1", WEDNESDAY_NOON_MS + 1),
        rejected(intent, "no", WEDNESDAY_NOON_MS + 2, 7),
        canceled(intent, "halt", WEDNESDAY_NOON_MS + 4),
    ]
    assert built == [
        OrderAccepted(**identity, event_at_ms=WEDNESDAY_NOON_MS + 1, broker_order_id="b-1"),
        OrderRejected(**identity, event_at_ms=WEDNESDAY_NOON_MS + 2, reason="no", broker_code=7),
        OrderCanceled(**identity, event_at_ms=WEDNESDAY_NOON_MS + 4, reason="halt"),
    ]
