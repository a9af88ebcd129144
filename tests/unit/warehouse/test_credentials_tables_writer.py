from __future__ import annotations

import stat
from pathlib import Path

import pyarrow as pa
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError, ProgrammingError

from adapters.warehouse.credentials import resolve_credentials, secrets_path
from adapters.warehouse.writer import RetryPolicy, batch_token, is_transient
from tickwave.config import load_settings
from tickwave.contracts import ControlCommand, DeadLetter, OrderAccepted, Tick
from tickwave.errors import ServiceError
from tickwave.warehouse.tables import BARS_1M, ORDER_EVENTS, QUARANTINE, TICKS, row_for, table_for, to_arrow


def test_credentials_when_none_configured_then_generated_once_into_a_private_file(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path)

    first = resolve_credentials(settings, create=True)
    again = resolve_credentials(settings, create=True)
    read_only = resolve_credentials(settings)
    path = secrets_path(settings)

    assert first == again == read_only
    assert len(first.password.get_secret_value()) >= 24
    assert first.password != first.analyst_password
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_credentials_when_configured_then_they_win_and_only_the_missing_one_is_generated(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, clickhouse={"password": "configured"})

    credentials = resolve_credentials(settings, create=True)

    assert credentials.password.get_secret_value() == "configured"
    assert credentials.analyst_password.get_secret_value()
    assert "configured" not in secrets_path(settings).read_text()


def test_credentials_when_nothing_generated_yet_then_clients_are_told_to_run_up(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="tickwave up"):
        resolve_credentials(load_settings(state_dir=tmp_path))


def test_credentials_when_external_or_passwordless_dev_then_nothing_is_generated(tmp_path: Path) -> None:
    external = load_settings(state_dir=tmp_path, clickhouse={"url": "http://ch:8123"})
    local_dev = load_settings(state_dir=tmp_path, clickhouse={"allow_no_password": True})

    assert resolve_credentials(external, create=True).password.get_secret_value() == ""
    assert resolve_credentials(local_dev, create=True).analyst_password.get_secret_value() == ""
    assert not secrets_path(external).exists()


def test_rows_when_mapping_contracts_then_columns_and_derived_ids_are_filled() -> None:
    tick = Tick(symbol="EURUSD", time_ms=1, seq=2, bid=1.0, ask=1.1)
    accepted = OrderAccepted(
        client_order_id="tw-1",
        signal_id="s",
        symbol="EURUSD",
        model_id="m",
        model_version=1,
        event_at_ms=5,
        broker_order_id="b-9",
    )
    dead = DeadLetter(source="mt5", reason="bad", raw="{}", received_at_ms=3)

    assert table_for(tick) is TICKS and list(row_for(tick)) == TICKS.column_names
    event = row_for(accepted)
    assert table_for(accepted) is ORDER_EVENTS
    assert (event["event_type"], event["broker_order_id"], event["side"], event["fill_price"]) == (
        "order_accepted.v1",
        "b-9",
        "",
        None,
    )
    assert event["event_id"] == accepted.event_id and '"broker_order_id":"b-9"' in event["payload"]
    assert table_for(dead) is QUARANTINE and row_for(dead)["dead_letter_id"] == dead.dead_letter_id


def test_rows_when_message_has_no_table_then_key_error() -> None:
    command = ControlCommand(command_id="c", command="halt", issued_by="me", issued_at_ms=1)

    with pytest.raises(KeyError):
        table_for(command)


def test_to_arrow_when_columns_are_missing_then_nulls_in_the_table_schema() -> None:
    table = to_arrow(BARS_1M, {"symbol": ["EURUSD"], "start_ms": [60_000]})

    assert table.schema == BARS_1M.schema
    assert table.column("start_ms")[0].value == 60_000
    assert table.column("bid_open")[0].as_py() is None


def test_batch_token_when_content_is_equal_then_equal_and_otherwise_different() -> None:
    first = pa.table({"a": [1, 2, 3]})
    same = pa.table({"a": [1, 2, 3]})
    other = pa.table({"a": [1, 2, 4]})

    assert batch_token("ticks", first) == batch_token("ticks", same)
    assert batch_token("ticks", first) != batch_token("ticks", other)
    assert batch_token("ticks", first) != batch_token("bars_1s", first)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (OperationalError("connection refused"), True),
        (DatabaseError("too many parts", code=252), True),
        (DatabaseError("memory limit", code=241), True),
        (DatabaseError("Cannot reserve 11.06 MiB, not enough space", code=243), True),
        (DatabaseError("syntax", code=62), False),
        (DatabaseError("no such column", code=16), False),
        (ProgrammingError("bad call"), False),
        (ConnectionResetError(), True),
    ],
)
def test_is_transient_when_classifying_errors_then_only_retryable_ones_are(
    error: BaseException, transient: bool
) -> None:
    assert is_transient(error) is transient


def test_retry_policy_when_attempts_grow_then_delay_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_s=0.1, max_s=1.0)

    assert [policy.delay(attempt) for attempt in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
