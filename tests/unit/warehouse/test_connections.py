from __future__ import annotations

from warehouse_server.security.budget import Connection, ConnectionBudget


class Tracked(Connection):
    def __init__(self, client: str, closed: list[Connection]) -> None:
        super().__init__(client, lambda: closed.append(self))


def admitted(budget: ConnectionBudget, client: str, count: int, closed: list[Connection]) -> list[Connection]:
    made: list[Connection] = []
    for _ in range(count):
        connection = Tracked(client, closed)
        assert budget.admit(connection)
        made.append(connection)
    return made


def test_budget_when_full_then_the_least_active_spare_connection_makes_room() -> None:
    budget, closed = ConnectionBudget(3, 3), list[Connection]()
    first, second, _ = admitted(budget, "127.0.0.2", 3, closed)
    budget.touch(first)

    admitted(budget, "127.0.0.3", 1, closed)

    assert closed == [second]
    assert len(budget) == 3


def test_budget_when_full_then_the_service_users_and_slot_holders_are_never_closed() -> None:
    budget, closed = ConnectionBudget(3, 3), list[Connection]()
    service, analyst, idle = admitted(budget, "127.0.0.1", 3, closed)
    service.authenticated(is_trusted=True)
    analyst.authenticated(is_trusted=False)
    analyst.engage()

    (newest,) = admitted(budget, "127.0.0.1", 1, closed)
    newest.authenticated(is_trusted=False)
    newest.engage()
    is_admitted = budget.admit(Connection("127.0.0.1", lambda: None))

    assert closed == [idle]
    assert not is_admitted  # room only by closing a slot holder or the service user's connection


def test_budget_when_a_read_only_request_authenticated_without_a_slot_then_its_connection_makes_room() -> None:
    budget, closed = ConnectionBudget(2, 2), list[Connection]()
    refused, _ = admitted(budget, "127.0.0.1", 2, closed)
    refused.authenticated(is_trusted=False)  # refused a slot: still sending its body, holding nothing

    admitted(budget, "127.0.0.1", 1, closed)

    assert closed == [refused]


def test_budget_when_an_address_has_nothing_spare_then_a_new_connection_is_kept_only_as_the_service_users() -> None:
    budget, closed = ConnectionBudget(10, 2), list[Connection]()
    for holder in admitted(budget, "127.0.0.1", 2, closed):
        holder.authenticated(is_trusted=False)
        holder.engage()
    service, analyst = Connection("127.0.0.1", lambda: None), Connection("127.0.0.1", lambda: None)

    service_admitted = budget.admit(service)  # the user is not known yet
    service_kept = service.authenticated(is_trusted=True)
    analyst_admitted = budget.admit(analyst)
    analyst_kept = analyst.authenticated(is_trusted=False)

    assert service_admitted and service_kept and not closed
    assert analyst_admitted and not analyst_kept  # past its address's share: closed once known


def test_budget_when_one_client_reaches_its_share_then_its_own_spare_connection_makes_room() -> None:
    budget, closed = ConnectionBudget(10, 2), list[Connection]()
    (other,) = admitted(budget, "127.0.0.9", 1, closed)
    mine = admitted(budget, "127.0.0.2", 2, closed)

    admitted(budget, "127.0.0.2", 1, closed)

    assert closed == [mine[0]]
    assert other not in closed
