"""The order lifecycle: an explicit table of allowed ``(from_state, to_state)`` pairs, held by the execution core.

Anything not in the table raises :class:`IllegalTransition` (a defect: a broker or the
journal reported something impossible) and is logged by the caller. Terminal states
(filled, canceled, rejected, expired) have no way out.
"""

from __future__ import annotations

import enum
from typing import Final

import tickwave_core
from tickwave_core import CreationIndex as CreationIndex  # see the note at the end
from tickwave_core import Order as Order  # see the note before CreationIndex's
from tickwave_core import moved as moved

from tickwave.errors import TickwaveError


class OrderStatus(enum.StrEnum):
    """Where one order is in its life."""

    NEW = "new"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


# The table is the execution core's (``lifecycle.rs``): these are read from it, never written here.
TRANSITIONS: Final[frozenset[tuple[OrderStatus, OrderStatus]]] = frozenset(
    (OrderStatus(before), OrderStatus(after)) for before, after in tickwave_core.transitions()
)
TERMINAL: Final[frozenset[OrderStatus]] = frozenset(map(OrderStatus, tickwave_core.terminal_statuses()))
WORKING: Final[frozenset[OrderStatus]] = frozenset(map(OrderStatus, tickwave_core.working_statuses()))
_IS_ALLOWED: Final = tickwave_core.is_allowed


class IllegalTransition(TickwaveError):
    """An order was asked to move along a path the lifecycle table does not allow."""


def is_allowed(from_status: OrderStatus, to_status: OrderStatus) -> bool:
    """Return True when the table allows ``from_status -> to_status``."""
    return _IS_ALLOWED(from_status, to_status)


def transition(client_order_id: str, from_status: OrderStatus, to_status: OrderStatus) -> OrderStatus:
    """Return ``to_status`` when the move is allowed.

    Raises:
        IllegalTransition: for any pair outside :data:`TRANSITIONS`.
    """
    if not _IS_ALLOWED(from_status, to_status):
        raise IllegalTransition(f"order {client_order_id}: illegal transition {from_status} -> {to_status}")
    return to_status


# Order: what the execution process knows about one order (rebuilt from the journal on start), a frozen record
# of the core (``engine_state.rs``): client_order_id, signal_id, symbol, side, quantity_lots, model_id,
# model_version, created_at_ms, status (new), filled_lots (0.0), broker_order_id (""), fill_ids (());
# is_terminal and is_working. moved(order, to_status, filled_lots=None, broker_order_id=None, fill_id=None): a copy
# of the order in to_status (a fill may repeat partially_filled), or IllegalTransition when the table forbids it.


# CreationIndex: order ids by creation time (the core's ``lifecycle.rs``): those created at or after an instant,
# without a scan of every order (a periodic reconciliation reads a window of orders; scanning every order at each
# pass made a long replay quadratic). Used by the engine and the paper broker: add, remove, since, retire.
