"""The execution journal on a disk that fills up between two space checks: a write refused.

The journal lives on a small tmpfs of its own (a link from the instance directory), the
paper broker's ledger stays on the test's disk, as a remote venue would: so an order sent
without its journal line would show at the broker. The disk fills right after a space
check, so the next decisions meet a refused write (``ENOSPC``, sometimes after a short
write) instead of the check.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from execution.brokers.paper import LEDGER_NAME
from execution.journal import JOURNAL_NAME, Journal, journal_dir
from execution.journal_space import DISK_CHECK, SPACE_CHECK_EVERY_MS
from tests.integration.small_disk import fill, small_disk
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, ListPublisher, make_service, signal, tick
from tickwave.clock import ManualClock
from tickwave.contracts import OrderDenied, OrderSubmitted, RiskEvent


def _recorded(path: Path) -> list[object]:
    with Journal(path, fsync=False) as journal:  # opening fails loudly on a corrupt line
        return list(journal.events())


def test_journal_when_the_disk_fills_between_checks_then_nothing_unjournaled_is_sent_and_no_signal_is_lost(
    tmp_path: Path,
) -> None:
    with small_disk(tmp_path / "disk", size_mb=8) as disk:
        # Arrange: the journal on the small disk, the venue's ledger off it
        state = tmp_path / "state"
        instance = journal_dir(state, "execution-1")
        (instance / JOURNAL_NAME).symlink_to(disk / JOURNAL_NAME)
        clock = ManualClock(WEDNESDAY_NOON_MS)
        publisher = ListPublisher()
        service = make_service(state, clock, publisher, market_hours="always", max_orders_per_second=1000)
        service.handle_tick(tick(clock.now_ms()))
        signals = [signal(index, clock.now_ms(), ("long", "short")[index % 2]) for index in range(40)]
        assert service.handle_signals(signals[:5]) == 5

        # Act: the disk fills just after a space check; decisions meet refused writes
        assert service.space.check(force=True)
        filler = fill(disk)
        clock.advance(SPACE_CHECK_EVERY_MS // 2)
        decided = 5 + service.handle_signals(signals[5:])
        halted_state = service.engine.trading_state
        clock.advance(SPACE_CHECK_EVERY_MS * 2)
        service.poll_broker()
        assert service.handle_signals(signals[decided:]) == 0, "a signal was decided on a full disk"
        filler.unlink()
        clock.advance(SPACE_CHECK_EVERY_MS * 2)
        service.poll_broker()
        resumed_state = service.engine.trading_state
        while decided < len(signals):
            done = service.handle_signals(signals[decided:])
            assert done, "the journal takes no decisions after the space came back"
            decided += done
        service.close()

        # Assert: halted, then back by itself; every signal decided once; the venue holds only journaled orders
        assert halted_state == "HALTED", "a refused journal write did not halt trading"
        assert resumed_state == "ACTIVE", "trading did not come back once space was freed"
        events = _recorded(instance / JOURNAL_NAME)
        submitted = Counter(e.signal_id for e in events if isinstance(e, OrderSubmitted))
        denied = {e.signal_id for e in events if isinstance(e, OrderDenied)}
        assert max(submitted.values()) == 1, "a signal was journaled with two orders"
        assert {s.signal_id for s in signals} == set(submitted) | denied, "a signal was lost"
        ledger = _recorded(instance / LEDGER_NAME)
        at_venue = Counter(e.client_order_id for e in ledger if isinstance(e, OrderSubmitted))
        journaled = {e.client_order_id for e in events if isinstance(e, OrderSubmitted)}
        assert set(at_venue) <= journaled, "an order reached the venue without its journal line"
        assert max(at_venue.values()) == 1
        resumes = [e for e in events if isinstance(e, RiskEvent) and e.check == DISK_CHECK]
        assert [e.trading_state for e in resumes][-1:] == ["ACTIVE"], "the way back is not journaled"
