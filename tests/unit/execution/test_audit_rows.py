"""The audit loader's order state rows: newest event wins, replays never step back."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from execution.audit import _STAGE, order_row
from tickwave.contracts import OrderAccepted, OrderCanceled, OrderFilled, OrderSubmitted
from tickwave.warehouse.tables import row_for

IDS: dict[str, Any] = {
    "client_order_id": "tw-1",
    "signal_id": "s-1",
    "symbol": "EURUSD",
    "model_id": "m",
    "model_version": 1,
}
SUBMITTED = OrderSubmitted(**IDS, event_at_ms=1_000, side="buy", quantity_lots=1.0, order_type="market")
ACCEPTED = OrderAccepted(**IDS, event_at_ms=1_000, broker_order_id="b-1")


def _filled(at_ms: int, lots: float, price: float, cumulative: float, final: bool) -> OrderFilled:
    return OrderFilled(
        **IDS,
        event_at_ms=at_ms,
        fill_id=f"f{at_ms}",
        fill_price=price,
        fill_lots=lots,
        cumulative_lots=cumulative,
        is_final=final,
    )


def test_order_row_when_events_in_order_then_status_fills_and_average_price_follow() -> None:
    row = order_row(None, SUBMITTED)
    row = order_row(row, ACCEPTED)
    row = order_row(row, _filled(1_001, 0.4, 1.10, 0.4, False))
    row = order_row(row, _filled(1_002, 0.6, 1.20, 1.0, True))
    assert row is not None
    assert (row["status"], row["broker_order_id"], row["filled_lots"]) == ("filled", "b-1", 1.0)
    assert abs(row["average_fill_price"] - 1.16) < 1e-12


def test_order_row_when_replayed_or_unknown_then_nothing_changes() -> None:
    filled = order_row(order_row(order_row(None, SUBMITTED), ACCEPTED), _filled(1_001, 1.0, 1.1, 1.0, True))
    assert order_row(filled, SUBMITTED) is None
    assert order_row(filled, ACCEPTED) is None, "an older stage in the same or an earlier ms never steps back"
    assert order_row(None, ACCEPTED) is None, "without its submission the order's details are unknown"


def test_order_row_when_canceled_as_expired_then_status_expired() -> None:
    expired = OrderCanceled(**IDS, event_at_ms=2_000, reason="expired: not found at the broker after restart")
    row = order_row(order_row(None, SUBMITTED), expired)
    assert row is not None and row["status"] == "expired"


def test_order_row_when_accepted_and_filled_in_one_ms_then_versions_grow() -> None:
    submitted = order_row(None, SUBMITTED)
    accepted = order_row(submitted, ACCEPTED)
    filled = order_row(accepted, _filled(1_000, 1.0, 1.1, 1.0, True))
    assert submitted is not None and accepted is not None and filled is not None
    versions = [row["updated_at_ms"] for row in (submitted, accepted, filled)]
    assert versions == sorted(set(versions)), "ReplacingMergeTree(updated_at_ms) keeps the last stage only if it grows"
    assert filled["status"] == "filled"


_LIFECYCLE = st.lists(
    st.tuples(st.sampled_from(["accepted", "partial", "filled", "canceled"]), st.integers(1_000, 1_003)),
    min_size=1,
    max_size=8,
)


@given(_LIFECYCLE)
def test_order_row_when_any_event_order_then_versions_strictly_grow(events: list[tuple[str, int]]) -> None:
    row = order_row(None, SUBMITTED)
    assert row is not None
    stored = [row]
    for kind, at_ms in events:
        if kind == "accepted":
            event: Any = OrderAccepted(**IDS, event_at_ms=at_ms, broker_order_id="b-1")
        elif kind == "canceled":
            event = OrderCanceled(**IDS, event_at_ms=at_ms, reason="user")
        else:
            event = _filled(at_ms, 0.5, 1.1, 1.0 if kind == "filled" else 0.5, kind == "filled")
        changed = order_row(stored[-1], event)
        if changed is not None:
            stored.append(changed)
    versions = [row["updated_at_ms"] for row in stored]
    assert all(later > earlier for earlier, later in pairwise(versions))
    stages = [_STAGE[row["status"]] for row in stored]
    assert stages == sorted(stages), "an order's state never steps back a stage"


def test_order_row_when_submitted_then_the_venue_stays_on_every_later_row() -> None:
    submitted = msgspec.structs.replace(SUBMITTED, venue="mt5:Broker-Live")

    first = order_row(None, submitted)
    later = order_row(first, ACCEPTED)

    assert first is not None and later is not None
    assert (first["venue"], later["venue"]) == ("mt5:Broker-Live", "mt5:Broker-Live")
    assert order_row(None, SUBMITTED)["venue"] == ""  # type: ignore[index]  # journaled before venues: ''


def test_order_event_row_when_submitted_then_venue_column_and_empty_for_other_events() -> None:
    submitted = msgspec.structs.replace(SUBMITTED, venue="paper")

    rows = [row_for(event) for event in (submitted, SUBMITTED, ACCEPTED)]

    assert [row["venue"] for row in rows] == ["paper", "", ""]
