"""A full disk during a live run: nothing is lost, nothing is doubled, everything comes back by itself.

The state dir (the execution journal and ledger, the warehouse's data) is on a 64 MiB
tmpfs of the test's own; Kafka stays on the test's disk. Ticks and signals stream while
the execution process, the audit loader and the streams loader run. Then the small disk
is filled to its last byte: execution halts with a critical event and decides nothing,
the warehouse refuses inserts with ``Code: 243`` (NOT_ENOUGH_SPACE) and stays up, the
loaders keep their offsets, ``tickwave status`` says "disk full". The filler is deleted:
trading resumes by itself, the signals sent meanwhile are decided, and the checks of the
chaos test hold: journal = broker = warehouse, one order per signal, every tick once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from clickhouse_connect.driver.exceptions import DatabaseError

from adapters.bus import make_producer, resolve_bootstrap
from adapters.endpoints import ready_marker
from adapters.signing import channel_key
from adapters.warehouse.client import connect
from adapters.warehouse.credentials import resolve_credentials
from adapters.warehouse.migrate import migrate
from app.cli.services import status
from execution.brokers.paper import LEDGER_NAME
from execution.journal import JOURNAL_NAME, Journal
from execution.journal_space import DISK_CHECK
from streams.loader import RecordLoader
from tests.integration.execution.conftest import Bus, Processes, make_signal, make_tick, now_ms
from tests.integration.small_disk import fill, free_bytes, small_disk
from tests.plugins.services import bus_section
from tests.plugins.warehouse import start_warehouse
from tickwave.config import Settings, load_settings
from tickwave.contracts import AnyMessage, OrderDenied, OrderFilled, OrderSubmitted, RiskEvent, Tick, encode
from tickwave.topics import STREAMS_RECORDS, TICKS, topic_name

SYMBOLS = (("EURUSD", 1.1), ("GBPUSD", 1.27), ("USDJPY", 150.0))
LIMITS = {
    "TICKWAVE_EXECUTION_RISK_SIGNAL_TTL_MS": "600000",
    "TICKWAVE_EXECUTION_RISK_MAX_TICK_AGE_MS": "600000",
    "TICKWAVE_EXECUTION_RISK_MAX_ORDERS_PER_SECOND": "1000",
}


class Market:
    """Streams ticks (to the execution's ``ticks`` and the loader's ``streams.records``) and signals."""

    def __init__(self, settings: Settings, bus: Bus) -> None:
        self.settings = settings
        self.bus = bus
        self.producer = make_producer(resolve_bootstrap(settings), "latency")
        self.ticks: list[Tick] = []
        self.signals: list[str] = []
        self.sent_at_ms: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="market", daemon=True)

    def _run(self) -> None:
        step = 0
        while not self.stop.is_set():
            for number, (symbol, mid) in enumerate(SYMBOLS):
                tick = make_tick(now_ms(), mid * (1 + 0.0001 * (step % 7)), symbol, seq=step * len(SYMBOLS) + number)
                for base in (TICKS, STREAMS_RECORDS):
                    self.producer.produce(topic_name(self.settings, base), key=symbol.encode(), value=encode(tick))
                self.ticks.append(tick)
            if step % 2 == 0:
                signal = make_signal(step, now_ms(), ("long", "short")[step // 2 % 2], 0.3, SYMBOLS[step % 3][0])
                self.bus.send(signal, flush=False)
                self.signals.append(signal.signal_id)
                self.sent_at_ms[signal.signal_id] = now_ms()
            self.producer.poll(0)
            self.bus.producer.poll(0)
            step += 1
            time.sleep(0.05)
        assert self.producer.flush(10) == 0 and self.bus.producer.flush(10) == 0


def _state_events(events: list[AnyMessage], state: str) -> list[RiskEvent]:
    return [e for e in events if isinstance(e, RiskEvent) and e.check == DISK_CHECK and e.trading_state == state]


def _journal(path: Path) -> list[AnyMessage]:
    with Journal(path, fsync=False) as journal:
        return list(journal.events())


def _wait(predicate: object, timeout_s: float, what: str, log: Processes | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{log.log_tail(60) if log else ''}")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk", size_mb=64) as mounted:
        yield mounted


def test_platform_when_the_disk_fills_and_is_freed_then_nothing_is_lost_or_doubled(
    disk: Path, topics: Settings, bus: Bus, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange: the state dir (journal, ledger, warehouse data) on the small disk
    began = time.monotonic()
    state = disk / "state"
    processes = Processes(topics, state, LIMITS)
    processes.log_path = disk.parent / "execution.log"  # off the small disk: a full disk must not hide the log
    bus.signing_key = channel_key(state, "signals")  # this state dir's dataflow key, which its execution reads
    execution = processes.start()  # starts while the warehouse does
    supervisor, warehouse_service, endpoint = start_warehouse(state)
    market = Market(topics, bus)
    stop_loading = threading.Event()
    loading: threading.Thread | None = None
    try:
        settings = load_settings(
            state_dir=state,
            kafka=bus_section(topics),
            clickhouse={"database": "full_disk"},
        )
        migrate(settings)
        print(f"{time.monotonic() - began:.1f} s: migrated")
        credentials = resolve_credentials(settings)
        warehouse_env = {
            "TICKWAVE_CLICKHOUSE_URL": f"http://{endpoint.address}",
            "TICKWAVE_CLICKHOUSE_DATABASE": "full_disk",
            "TICKWAVE_CLICKHOUSE_PASSWORD": credentials.password.get_secret_value(),
        }
        client = connect(settings)
        audit = processes.start("audit", extra_env=warehouse_env)
        marker = ready_marker(state, "audit")  # running before the disk fills (starting on a full disk fails)
        _wait(
            lambda: marker.exists() and marker.read_text().strip() == str(audit.process and audit.process.pid),
            120,
            "the audit loader to be ready",
            processes,
        )
        loader = RecordLoader(settings)  # the streams loader, in this process
        loading = threading.Thread(target=loader.run, args=(stop_loading,), name="streams-loader")
        loading.start()
        market.thread.start()
        print(f"{time.monotonic() - began:.1f} s: started")
        bus.wait_for(
            lambda events: len([e for e in events if isinstance(e, OrderFilled)]) >= 3, 60, "the first orders filled"
        )

        # Act 1: the disk fills
        filler = fill(disk)
        print(f"{time.monotonic() - began:.1f} s: orders filled; disk filled")
        assert free_bytes(disk) < 4096
        bus.wait_for(lambda events: _state_events(events, "HALTED"), 15, "execution to halt for the disk")
        halted_at = len(bus.events)
        print(f"{time.monotonic() - began:.1f} s: halted")
        with pytest.raises(DatabaseError) as refused:
            client.command(
                "INSERT INTO ticks (symbol, time_ms, seq, bid, ask) SELECT 'XAUUSD', now64(3), "
                "number, 1.1, 1.1001 FROM numbers(200000)"
            )
        monkeypatch.setenv("TICKWAVE_STATE_DIR", str(state))
        capsys.readouterr()
        with pytest.raises(typer.Exit) as status_exit:
            status()
        said = " ".join(capsys.readouterr().out.split())  # the volume's line, wrapped or not
        time.sleep(3)  # signals and ticks keep coming while the disk is full
        print(f"{time.monotonic() - began:.1f} s: status ran")
        bus.drain(0.5)
        while_full = bus.events[halted_at:]

        # Act 2: the space is freed
        filler.unlink()
        try:
            bus.wait_for(lambda events: _state_events(events, "ACTIVE"), 15, "execution to resume by itself")
        except AssertionError as exc:
            risk = [(e.kind, e.trading_state, e.check, e.detail[:120]) for e in bus.events if isinstance(e, RiskEvent)]
            raise AssertionError(f"{exc}\n{risk}\n{processes.log_tail(80)}") from None
        time.sleep(1)
        market.stop.set()
        market.thread.join(20)
        print(f"{time.monotonic() - began:.1f} s: resumed")
        journal_path = state / "execution" / "execution-1" / JOURNAL_NAME

        def all_decided() -> bool:
            decided = {e.signal_id for e in _journal(journal_path) if isinstance(e, OrderSubmitted | OrderDenied)}
            return set(market.signals) <= decided

        _wait(all_decided, 120, "every signal decided", processes)
        assert execution.alive and audit.alive and loading.is_alive(), (
            f"a process died on the full disk: execution {execution.process and execution.process.poll()}, "
            f"audit {audit.process and audit.process.poll()}, loader alive {loading.is_alive()}\n"
            f"{processes.log_tail(80)}"
        )
        assert execution.stop() == 0, processes.log_tail(60)

        # Assert: the full disk was seen and said
        assert refused.value.code == 243 or "NOT_ENOUGH_SPACE" in str(refused.value), str(refused.value)
        assert "disk full" in said and status_exit.value.exit_code == 3, said
        sent_while_full = [e for e in while_full if isinstance(e, OrderSubmitted)]
        assert not sent_while_full, "orders were decided while the journal's disk was full"
        # One order per signal; every signal decided; the broker holds journaled orders only
        journal = _journal(journal_path)
        orders = {e.client_order_id for e in journal if isinstance(e, OrderSubmitted)}
        fills = {e.fill_id for e in journal if isinstance(e, OrderFilled)}
        per_signal = Counter(e.signal_id for e in journal if isinstance(e, OrderSubmitted))
        assert per_signal and max(per_signal.values()) == 1
        ledger = _journal(state / "execution" / "execution-1" / LEDGER_NAME)
        at_broker = Counter(e.client_order_id for e in ledger if isinstance(e, OrderSubmitted))
        assert max(at_broker.values()) == 1, "an order reached the broker twice"
        assert set(at_broker) <= orders, "an order reached the broker without its journal line"

        # journal = warehouse: orders, fills; every tick once (once the loaders caught up)
        def warehouse_caught_up() -> bool:
            ticks = client.query("SELECT count() FROM ticks FINAL").result_rows[0][0]
            loaded_orders = client.query("SELECT count() FROM orders FINAL").result_rows[0][0]
            loaded_fills = client.query("SELECT count() FROM fills FINAL").result_rows[0][0]
            return bool(ticks >= len(market.ticks) and loaded_orders >= len(orders) and loaded_fills >= len(fills))

        _wait(warehouse_caught_up, 90, "the warehouse to catch up", processes)
        refused_ticks = loader.pool.writers["ticks"].stats  # the loader met the full disk and retried
        assert refused_ticks.retries > 0 and "243" in refused_ticks.last_error, refused_ticks
        assert audit.stop() == 0, processes.log_tail(60)
        stop_loading.set()
        loading.join(30)
        rows = client.query("SELECT client_order_id FROM orders FINAL").result_rows
        assert {cid for (cid,) in rows} == orders
        fill_rows = client.query("SELECT fill_id FROM fills FINAL").result_rows
        assert {fid for (fid,) in fill_rows} == fills
        tick_rows = client.query("SELECT symbol, seq, count() FROM ticks FINAL GROUP BY symbol, seq").result_rows
        assert {(symbol, seq) for symbol, seq, _ in tick_rows} == {(t.symbol, t.seq) for t in market.ticks}
        assert all(count == 1 for _, _, count in tick_rows)
        client.close()
    finally:
        market.stop.set()
        stop_loading.set()
        if loading is not None:
            loading.join(30)
        processes.stop_all()
        supervisor.stop(warehouse_service)
