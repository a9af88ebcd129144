"""The engine backtest (execution.backtest): the live service replayed under a clock driven by the events."""

from __future__ import annotations

import dataclasses
import gc
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tickwave_core import ReplayJournal, ReplayTimeline

from bench.backtest import replay_settings
from execution import backtest
from execution.backtest import count_trades, fill_pnls, replay_session
from execution.core.engine import Engine
from execution.core.engine_state import EngineState
from execution.core.limits import RiskLimits
from execution.core.replay import CoreEvents, CoreReplay, batch_timeline, core_timeline, replay_in_core, timeline
from execution.core.valuation import Valuation
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, holdout_timeline, make_service, signal, tick
from tickwave.clock import ManualClock
from tickwave.config import Settings, load_settings
from tickwave.contracts import RiskEvent, Signal, Tick
from tickwave.instruments import registry
from tickwave.money import to_decimal
from tickwave.validation import MIN_TIME_MS, QuoteBatch, SpikeFilter


def _settings(tmp_path: Path, paper_broker: dict[str, object] | None = None, **risk: object) -> Settings:
    execution = {"risk": risk, "paper_broker": paper_broker or {}}
    return load_settings(state_dir=tmp_path, market={"hours": "always"}, execution=execution)


def _quote_at(ticks: list[Tick], symbol: str, at_ms: int) -> Tick:
    """The latest tick of ``symbol`` at or before ``at_ms`` (ties: the later one in the list)."""
    return [t for t in sorted(ticks, key=lambda t: t.time_ms) if t.symbol == symbol and t.time_ms <= at_ms][-1]


def test_replay_when_a_signal_then_one_order_filled_at_the_quote_with_slippage(tmp_path: Path) -> None:
    ticks = [tick(WEDNESDAY_NOON_MS, 1.1), tick(WEDNESDAY_NOON_MS + 500, 1.102)]
    signals = [signal(1, WEDNESDAY_NOON_MS + 100, "long", 1.0)]

    result = replay_session(_settings(tmp_path, {"slippage_bps": 1.0}), ticks, signals)

    assert [order.signal_id for order in result.orders] == [signals[0].signal_id]
    (fill,) = result.fills
    assert fill.fill_price == float(to_decimal(ticks[0].ask) * (1 + Decimal("0.0001")))
    assert result.positions == {"EURUSD": Decimal(1)}
    # Marked at the last mid: (mid - fill price) x 100,000.
    assert result.total_pnl == (to_decimal(ticks[1].mid) - to_decimal(fill.fill_price)) * 100_000
    assert result.realized_pnl == 0


def test_replay_when_latency_then_the_fill_is_at_the_quote_of_its_due_time(tmp_path: Path) -> None:
    ticks = [tick(WEDNESDAY_NOON_MS, 1.1), tick(WEDNESDAY_NOON_MS + 150, 1.101), tick(WEDNESDAY_NOON_MS + 400, 1.102)]
    signals = [signal(1, WEDNESDAY_NOON_MS + 100, "long", 1.0)]

    result = replay_session(_settings(tmp_path, {"slippage_bps": 0.0, "latency_ms": 200}), ticks, signals)

    (fill,) = result.fills
    assert fill.fill_price == ticks[1].ask, "due at +300 ms: the quote of +150, not of +100 or +400"
    assert fill.event_at_ms == WEDNESDAY_NOON_MS + 300


def test_replay_when_flatten_at_end_then_no_position_is_left_and_the_exit_pays_the_spread(tmp_path: Path) -> None:
    ticks = [tick(WEDNESDAY_NOON_MS, 1.1), tick(WEDNESDAY_NOON_MS + 500, 1.102)]
    signals = [signal(1, WEDNESDAY_NOON_MS + 100, "short", 0.5)]

    result = replay_session(_settings(tmp_path, {"slippage_bps": 0.0}), ticks, signals, flatten_at_end=True)

    assert result.positions == {}
    entry, close = result.fills
    assert (entry.fill_price, close.fill_price) == (ticks[0].bid, ticks[1].ask)
    assert result.realized_pnl == result.total_pnl == (to_decimal(ticks[0].bid) - to_decimal(ticks[1].ask)) * 50_000


def test_replay_when_a_fill_takes_the_day_past_its_loss_limit_then_its_follow_up_trips_the_breaker_as_live(
    tmp_path: Path,
) -> None:
    # The spread alone costs 100 USD at the fill (1 lot, 0.002 wide) and no tick comes after it: only the
    # fill's follow-up (the loss breaker on the day just after it) can see the day past its 50 USD limit.
    ticks = [tick(WEDNESDAY_NOON_MS, 1.1, spread=0.002)]
    signals = [signal(1, WEDNESDAY_NOON_MS + 100, "long", 1.0)]
    settings = _settings(tmp_path, {"slippage_bps": 0.0}, daily_loss_limit=50.0)

    fast = replay_session(settings, ticks, signals)
    live = replay_session(settings, ticks, signals, fast=False)

    (fill,) = fast.fills
    trips = [event for event in fast.events if type(event) is RiskEvent and event.kind == "trading_state"]
    assert [(trip.occurred_at_ms, trip.trading_state) for trip in trips] == [(fill.event_at_ms, "REDUCING")]
    assert fast.events == live.events
    assert fast.chain_head == live.chain_head


def test_replay_when_signals_break_the_limits_then_the_gate_denies_them_as_live(tmp_path: Path) -> None:
    ticks = [tick(WEDNESDAY_NOON_MS, 1.1)]
    signals = [
        signal(1, WEDNESDAY_NOON_MS - 10_000, "long"),  # created before the first tick: no price yet
        signal(2, WEDNESDAY_NOON_MS + 10, "long", symbol="NZDUSD"),  # not an allowed symbol
        signal(3, WEDNESDAY_NOON_MS + 20, "long"),
        signal(4, WEDNESDAY_NOON_MS + 30, "long"),  # already at the target
    ]

    result = replay_session(_settings(tmp_path), ticks, signals)

    assert result.denial_counts() == {"no_price": 1, "sizing": 1, "symbol_allowed": 1}
    assert [order.signal_id for order in result.orders] == [signals[2].signal_id]


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("broken", [{"flags": 2**33}, {"seq": -1}])  # a rule checked after decoding; the contract
def test_replay_when_a_tick_breaks_a_rule_then_it_is_not_a_price_and_the_others_are_used(
    tmp_path: Path, fast: bool, broken: dict[str, int]
) -> None:
    bad = msgspec.structs.replace(tick(WEDNESDAY_NOON_MS + 50, 1.101), **broken)
    ticks = [tick(WEDNESDAY_NOON_MS, 1.1), bad, tick(WEDNESDAY_NOON_MS + 120, 1.0995)]
    signals = [signal(1, WEDNESDAY_NOON_MS + 100, "long", 1.0), signal(2, WEDNESDAY_NOON_MS + 200, "short", 1.0)]

    result = replay_session(_settings(tmp_path, {"slippage_bps": 0.0}), ticks, signals, fast=fast)

    assert [fill.fill_price for fill in result.fills] == [ticks[0].ask, ticks[2].bid]  # never at the bad one


# Within the spike filter of 1.1 (300 bps).
_MIDS = st.floats(min_value=1.09, max_value=1.11, allow_nan=False).map(lambda mid: round(mid, 5))
_SESSION = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=900),  # ms after the previous event
        st.one_of(
            _MIDS.map(lambda mid: ("tick", mid)),
            st.tuples(st.sampled_from(["long", "short", "flat"]), st.sampled_from([0.3, 0.5, 1.0])),
        ),
    ),
    min_size=1,
    max_size=40,
)


def _session(steps: list[tuple[int, tuple[str, float]]]) -> tuple[list[Tick], list[Signal]]:
    ticks, signals, now_ms = [tick(WEDNESDAY_NOON_MS, 1.1)], [], WEDNESDAY_NOON_MS
    for gap_ms, (what, value) in steps:
        now_ms += gap_ms
        if what == "tick":
            ticks.append(tick(now_ms, value, seq=len(ticks)))
        else:
            signals.append(signal(len(signals), now_ms, what, value))
    return ticks, signals


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_SESSION, latency_ms=st.sampled_from([0, 250]), slippage_bps=st.sampled_from([0.0, 0.5]))
def test_replay_when_any_session_then_cash_flows_add_up_to_the_pnl_and_fills_are_at_their_quotes(
    tmp_path_factory: pytest.TempPathFactory,
    steps: list[tuple[int, tuple[str, float]]],
    latency_ms: int,
    slippage_bps: float,
) -> None:
    ticks, signals = _session(steps)
    config = _settings(
        tmp_path_factory.mktemp("replay"),
        {"latency_ms": latency_ms, "slippage_bps": slippage_bps},
        flash_crash_pct=50.0,
    )

    result = replay_session(config, ticks, signals)

    slip = to_decimal(slippage_bps) / 10_000
    cash, position = Decimal(0), Decimal(0)
    for order, fill in zip(result.orders, result.fills, strict=True):
        # One fill per order, at the quote of the moment it fell due, worsened by the slippage.
        assert fill.client_order_id == order.client_order_id
        assert fill.event_at_ms == order.event_at_ms + latency_ms
        quote = _quote_at(ticks, "EURUSD", fill.event_at_ms)
        expected = to_decimal(quote.ask) * (1 + slip) if order.side == "buy" else to_decimal(quote.bid) * (1 - slip)
        assert to_decimal(fill.fill_price) == to_decimal(float(expected))
        signed = to_decimal(fill.fill_lots) * (1 if order.side == "buy" else -1)
        cash -= signed * to_decimal(fill.fill_price) * 100_000
        position += signed
        assert abs(position) <= 1, "never beyond max_position_lots"
    assert len({order.signal_id for order in result.orders}) == len(result.orders), "one order per signal"
    assert result.positions.get("EURUSD", Decimal(0)) == position
    last_mid = to_decimal(max(ticks, key=lambda t: t.time_ms).mid)
    # Cash flows plus the open position at the last mid: the P&L, whichever lots closed which.
    assert result.total_pnl == cash + position * last_mid * 100_000
    realized = sum((pnl.realized for pnl in fill_pnls(result.events, registry(config.symbols))), Decimal(0))
    assert result.realized_pnl == realized
    assert count_trades(result.events) == result.trades <= len(result.orders)


@pytest.mark.parametrize("fast", [True, False])
def test_replay_when_longer_than_the_reconciliation_window_then_every_round_trip_is_counted(
    tmp_path: Path, fast: bool
) -> None:
    # The live process lets ended orders go a day after they end; a replay keeps them all (it counts from them).
    hour_ms = 3_600_000
    signals = [signal(n, WEDNESDAY_NOON_MS + n * hour_ms + 100, "long" if n % 2 else "short") for n in range(72)]
    ticks = [tick(WEDNESDAY_NOON_MS + n * hour_ms, 1.1 + n / 10_000, seq=n) for n in range(72)]

    result = replay_session(_settings(tmp_path, {"slippage_bps": 0.0}), ticks, signals, fast=fast)

    assert len(result.orders) == 72 and result.trades == count_trades(result.events) == 36  # open, close, ...


@pytest.mark.parametrize("fast", [True, False])
def test_replay_when_its_daily_reconciliations_run_then_they_record_nothing(tmp_path: Path, fast: bool) -> None:
    # A replay compares its journal with its own paper venue, fed the same answers in the same calls: a replay
    # that leaves the passes out (the core's loop, replay.rs) must journal the same. Each daily pass comes at a
    # signal whose order is then working (latency), with positions open and days rolled over.
    hour_ms = 3_600_000
    signals = [signal(n, WEDNESDAY_NOON_MS + n * hour_ms + 100, "long" if n % 3 else "short") for n in range(80)]
    ticks = [tick(WEDNESDAY_NOON_MS - 50)]  # the replay's start: each pass is due 50 ms before a signal
    ticks += [tick(WEDNESDAY_NOON_MS + n * hour_ms + 200, 1.1 + n / 10_000, seq=n) for n in range(80)]
    execution = {"paper_broker": {"slippage_bps": 0.5, "latency_ms": 500}}
    daily = load_settings(state_dir=tmp_path, market={"hours": "always"}, execution=execution)
    never = daily.execution.reconciliation.model_copy(update={"interval_s": 10.0**9})
    without = daily.model_copy(update={"execution": daily.execution.model_copy(update={"reconciliation": never})})

    with_passes = replay_session(daily, ticks, signals, fast=fast)
    without_passes = replay_session(without, ticks, signals, fast=fast)

    assert (ticks[-1].time_ms - ticks[0].time_ms) // 86_400_000 >= 3  # three daily passes at least
    assert with_passes.events == without_passes.events
    assert with_passes.chain_head == without_passes.chain_head
    kinds = {getattr(e, "kind", type(e).__name__) for e in with_passes.events}
    assert {"OrderFilled", "day_rollover"} <= kinds and not [kind for kind in kinds if kind.startswith("reconcile")]


@given(tick_times=st.lists(st.integers(0, 6), max_size=25), signal_times=st.lists(st.integers(0, 6), max_size=25))
def test_timeline_when_times_repeat_and_arrive_out_of_order_then_by_time_ticks_first_then_as_they_came(
    tick_times: list[int], signal_times: list[int]
) -> None:
    # The documented order: (time, a tick before a signal, arrival index); items told apart by identity.
    ticks = [tick(WEDNESDAY_NOON_MS + at, seq=n) for n, at in enumerate(tick_times)]
    signals = [signal(n, WEDNESDAY_NOON_MS + at) for n, at in enumerate(signal_times)]
    keyed = [((item.time_ms, 0, n), item) for n, item in enumerate(ticks)]
    keyed += [((item.created_at_ms, 1, n), item) for n, item in enumerate(signals)]
    expected = [item for _, item in sorted(keyed, key=lambda pair: pair[0])]

    assert [id(item) for item in timeline(ticks, signals)] == [id(item) for item in expected]


def _busy_session() -> tuple[list[Tick], list[Signal]]:
    ticks = [tick(WEDNESDAY_NOON_MS + 60_000 * n, 1.1 + 0.0001 * (n % 7)) for n in range(400)]
    signals = [signal(n, WEDNESDAY_NOON_MS + 60_000 * n + 1, "long" if n % 2 else "short") for n in range(400)]
    return ticks, signals


def test_replay_when_the_collector_runs_then_what_it_built_is_handed_over_old_and_collection_is_back_on(
    tmp_path: Path,
) -> None:
    ticks, signals = _busy_session()
    gc.unfreeze()  # a process that froze nothing (another test's freeze would make the replay leave it as it is)
    gc.collect()
    old_before = len(gc.get_objects(generation=2))

    result = replay_session(_settings(tmp_path), ticks, signals)

    assert gc.isenabled()
    assert len(result.orders) > 100
    # Its orders and books are old objects now: the young generations hold nearly nothing to scan.
    assert len(gc.get_objects(generation=0)) + len(gc.get_objects(generation=1)) < 100
    assert len(gc.get_objects(generation=2)) > old_before + 400


def test_replay_when_the_process_froze_objects_then_they_stay_frozen(tmp_path: Path) -> None:
    ticks, signals = _busy_session()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()

        replay_session(_settings(tmp_path), ticks, signals)

        assert gc.get_freeze_count() >= frozen > 0
        assert gc.isenabled()
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("fast", [True, False])
def test_replay_when_round_trips_on_several_days_then_the_pnl_sums_every_day(tmp_path: Path, fast: bool) -> None:
    # A long, then flat, on each of three trading days (a day apart), at a different profit each day; a long
    # left open at the end. The result's P&L is what the engine booked, summed over the days.
    day_ms = 86_400_000
    ticks, signals = [], []
    for day in range(3):
        start = WEDNESDAY_NOON_MS + day * day_ms
        ticks += [tick(start, 1.1, seq=0), tick(start + 1_000, 1.1 + 0.001 * (day + 1), seq=1)]
        signals += [signal(2 * day, start + 500, "long", 1.0), signal(2 * day + 1, start + 1_500, "flat", 1.0)]
    end = WEDNESDAY_NOON_MS + 3 * day_ms
    ticks += [tick(end, 1.1, seq=0), tick(end + 1_000, 1.104, seq=1)]
    signals.append(signal(6, end + 500, "long", 1.0))

    result = replay_session(_settings(tmp_path), ticks, signals, fast=fast)

    pnls = fill_pnls(result.events, registry(_settings(tmp_path).symbols))
    assert len({fill.event_at_ms // day_ms for fill, pnl in zip(result.fills, pnls, strict=True) if pnl.realized}) == 3
    realized = sum((pnl.realized for pnl in pnls), Decimal(0))
    assert result.realized_by_currency == {"USD": realized} and realized > 0
    (last,) = [fill for fill in result.fills if fill.event_at_ms > end]
    open_pnl = (to_decimal(tick(end + 1_000, 1.104).mid) - to_decimal(last.fill_price)) * to_decimal(last.fill_lots)
    assert result.unrealized_by_currency == {"USD": open_pnl * 100_000}
    assert result.positions == {"EURUSD": to_decimal(last.fill_lots)}


def test_core_timeline_when_ticks_break_a_rule_or_spike_then_the_core_accepts_what_the_service_prices(
    tmp_path: Path,
) -> None:
    start = WEDNESDAY_NOON_MS
    ticks = [
        msgspec.structs.replace(tick(start, 9.9), flags=2**33),  # broken first: it must not set the reference
        tick(start + 10, 1.1),
        tick(start + 20, 1.2),  # a spike against 1.1
        tick(start + 30, 1.1001),
        tick(start + 40, 1.1002, symbol="EURSEK"),  # a symbol the settings do not list
        tick(start + 50, 1.3, symbol="GBPUSD"),  # another symbol's first: its own filter
        tick(start + 60, 1.31, symbol="GBPUSD"),
        tick(start + 70, 0.5, symbol="GBPUSD"),  # a spike there
        tick(start + 80, 1.1003),
    ]
    clock = ManualClock(start)
    service = make_service(tmp_path, clock)
    priced = []
    for item in ticks:  # the service's own checks, one tick at a time
        clock.set(item.time_ms)
        before = service.tick_checks.rejected
        service.handle_decoded_tick(item)
        priced.append(service.tick_checks.rejected == before)
    service.close()

    ordered = timeline(ticks, [])
    accepted = core_timeline(ordered, service.tick_checks.rules).accepted(
        SpikeFilter.from_settings(service.tick_checks.streams)
    )

    assert accepted == priced == [False, True, False, True, False, True, True, False, True]


def test_replay_result_when_its_journal_is_the_core_s_then_it_reads_the_same_without_building_the_events(
    tmp_path: Path,
) -> None:
    ticks, signals = _busy_session()
    signals.append(signal(len(signals), ticks[-1].time_ms + 1, symbol="GBPUSD"))  # no price: denied
    config = _settings(tmp_path, {"latency_ms": 250})
    kept = replay_session(config, ticks, signals)
    assert kept.orders and kept.fills and kept.denials, "a session with each kind"
    instruments = registry(config.symbols)

    core = dataclasses.replace(kept, events=CoreEvents(ReplayJournal(kept.events)), round_trips=None)

    assert (core.orders, core.fills, core.denials) == (kept.orders, kept.fills, kept.denials)
    assert core.denial_counts() == kept.denial_counts()
    assert core.order_count == kept.order_count == len(kept.orders)
    assert core.trades == kept.trades == count_trades(kept.events)
    assert fill_pnls(core.events, instruments) == fill_pnls(kept.events, instruments)
    assert isinstance(core.events, CoreEvents) and not core.events.is_built, "no event built but those read"
    assert core.events[3] == kept.events[3] and len(core.events) == len(kept.events)
    assert core.events == kept.events and core.events.is_built
    assert core.denial_counts() == kept.denial_counts() and core.trades == kept.trades


def test_fast_replay_when_days_roll_over_then_each_trading_day_comes_from_the_calendars_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    day_ms = 86_400_000
    ticks = [
        tick(WEDNESDAY_NOON_MS + day * day_ms + offset, 1.1 + offset / 1e6) for day in range(3) for offset in (0, 500)
    ]
    signals = [
        signal(day, WEDNESDAY_NOON_MS + day * day_ms + 100, "long" if day % 2 else "short", 0.5) for day in range(3)
    ]
    asked: list[int] = []
    python_day = Valuation.trading_day

    def counted(valuation: Valuation, limits: RiskLimits, now_ms: int) -> str:
        asked.append(now_ms)
        return python_day(valuation, limits, now_ms)

    monkeypatch.setattr(Valuation, "trading_day", counted)

    result = replay_session(_settings(tmp_path, {"slippage_bps": 0.0}), ticks, signals, fast=True)

    rollovers = [event for event in result.events if isinstance(event, RiskEvent) and event.kind == "day_rollover"]
    assert [msgspec.json.decode(event.detail)["trading_day"] for event in rollovers] == [
        "2023-11-15",
        "2023-11-16",
        "2023-11-17",
    ]
    assert len(result.fills) == 3
    assert asked == []


@pytest.mark.parametrize(
    "odd",
    [
        [],
        [tick(WEDNESDAY_NOON_MS + 130, 1.2)],  # a spike: never a price
        [tick(WEDNESDAY_NOON_MS + 130, 1.1, symbol="EURSEK")],  # a symbol the settings do not list
        [tick(MIN_TIME_MS - 1, 1.2)],  # the first, too early: no price, nor the spike filter's reference
        [tick(WEDNESDAY_NOON_MS + 130, 1.1, symbol="EUR USD")],  # not a symbol the contract holds: as its message
    ],
)
@pytest.mark.parametrize("latency_ms", [0, 250])
def test_replay_when_ticks_come_as_columns_then_the_same_replay_as_the_ticks_they_hold(
    tmp_path: Path, odd: list[Tick], latency_ms: int
) -> None:
    ticks, signals = _busy_session()
    ticks = [*ticks[:3], *odd, *ticks[3:]]  # out of time order too
    config = _settings(tmp_path, {"latency_ms": latency_ms})
    batch = QuoteBatch.of_quotes(ticks, "recorded")

    from_columns = replay_session(config, batch, signals, flatten_at_end=True)
    from_ticks = replay_session(config, list(batch), signals, flatten_at_end=True)

    assert from_columns.events == from_ticks.events and from_columns.chain_head == from_ticks.chain_head
    assert (from_columns.total_pnl, from_columns.positions) == (from_ticks.total_pnl, from_ticks.positions)
    assert from_columns.denial_counts() == from_ticks.denial_counts()
    assert from_columns.order_count == from_ticks.order_count > 0


def test_batch_timeline_when_ticks_break_a_rule_or_spike_then_the_core_accepts_what_the_service_prices(
    tmp_path: Path,
) -> None:
    start = WEDNESDAY_NOON_MS
    ticks = [
        tick(start, 1.1),
        tick(start + 10, 1.2),  # a spike against 1.1
        tick(start + 20, 1.1001, symbol="EURSEK"),  # a symbol the settings do not list
        tick(start - 1, 1.1002),  # out of order
        tick(start + 30, 1.1002),
    ]
    service = make_service(tmp_path, ManualClock(start))
    rules, spike = service.tick_checks.rules, SpikeFilter.from_settings(service.tick_checks.streams)
    service.close()

    accepted = batch_timeline(QuoteBatch.of_quotes(ticks, "recorded"), [], rules).accepted(spike)

    assert accepted == core_timeline(timeline(ticks, []), rules).accepted(spike) == [True, True, False, False, True]


@pytest.mark.parametrize(
    ("order", "valid", "code"),
    [
        ([0, 0, 2], [1, 1], 0),  # a tick twice, the other never
        ([0, 1, 2, 2], [1, 1], 0),  # a signal twice
        ([0, 1], [1, 1], 0),  # the signal never
        ([0, 1, 3], [1, 1], 0),  # past the items
        ([0, -1, 2], [1, 1], 0),  # a negative place
        ([0, 1, 2], [1], 0),  # a flag short
        ([0, 1, 2], [1, 1], 1),  # a symbol code outside the symbols
    ],
)
def test_replay_timeline_of_columns_when_the_columns_do_not_name_each_item_once_then_refused(
    order: list[int], valid: list[int], code: int
) -> None:
    batch = QuoteBatch.of_quotes([tick(WEDNESDAY_NOON_MS), tick(WEDNESDAY_NOON_MS + 1)])
    codes = np.array([0, code], dtype=np.int32)
    columns = (codes, batch.time_ms, batch.seq, batch.bid, batch.ask, batch.last, batch.volume, batch.flags)

    with pytest.raises(ValueError):
        ReplayTimeline.of_columns(
            list(batch.symbols),
            tuple(column.tobytes() for column in columns),  # type: ignore[arg-type]
            "",
            bytes(valid),
            [signal(0, WEDNESDAY_NOON_MS)],
            np.array(order, dtype=np.int64).tobytes(),
        )


def _containers(state: EngineState) -> dict[str, object]:
    """What a reader of an engine state's containers gets, in their orders."""
    view = state.view
    return {
        "orders": list(state.orders.items()),
        "bookings": list(state.bookings.items()),
        "decided_signals": list(state.decided_signals.items()),
        "applied_commands": sorted(state.applied_commands),
        "realized_by_day": [(day, list(amounts.items())) for day, amounts in state.realized_by_day.items()],
        "books": [(symbol, book.lots) for symbol, book in state.books.items()],
        "day_marks": list(state.day_marks.items()),
        "marked_day": state.marked_day,
        "defects": list(state.defects),
        "positions": list(view.positions.items()),
        "pending": list(view.pending.items()),
        "halted_symbols": sorted(view.halted_symbols),
        "order_times_ms": list(view.order_times_ms),
        "consecutive_rejects": view.consecutive_rejects,
        "trading_state": view.trading_state,
        "revisions": (state.pnl_revision, state.books_revision),
    }


def test_fast_replay_when_it_ends_then_the_engines_containers_hold_what_its_journal_applied_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The core's replay keeps the state's Python containers back until its end: they then read as event by event."""
    ticks, signals = holdout_timeline(3_000, "containers")
    engines: list[Engine] = []

    def kept(*args: Any) -> CoreReplay:
        engines.append(args[1])
        return replay_in_core(*args)

    monkeypatch.setattr(backtest, "replay_in_core", kept)
    result = replay_session(replay_settings(tmp_path), ticks, signals, fast=True, flatten_at_end=True)
    (engine,) = engines
    rebuilt = EngineState(engine.state.limits)
    for event in result.events:
        rebuilt.apply(event)

    replayed, applied = _containers(engine.state), _containers(rebuilt)
    assert len(replayed["orders"]) > 50 and len(replayed["bookings"]) > 50  # type: ignore[arg-type]
    assert {key: value for key, value in replayed.items() if key != "revisions"} == {
        key: value for key, value in applied.items() if key != "revisions"
    }
    assert engine.state.books_revision == rebuilt.books_revision
