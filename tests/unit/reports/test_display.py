from __future__ import annotations

from reports.display import displayed_rows
from tickwave.config import default_symbols
from tickwave.instruments import registry

INSTRUMENTS = registry(default_symbols())


def test_displayed_rows_when_money_and_lots_then_minor_unit_and_lot_step_by_column_name() -> None:
    columns = ["symbol", "quantity_lots", "price", "notional_quote", "net_pnl_account", "detail"]
    rows = [
        ["EURUSD", "0.6000000001", "1.0850849999", "65105.123456", "-31.7692465", "a_lots"],
        ["USDJPY", "1.125", "151.123", "16875012.5", "-4.6336125", ""],
        ["US500", "0.25", "5000.1", "1250.025", "0.125", ""],
    ]

    shown = displayed_rows(columns, rows, INSTRUMENTS, "USD")

    assert shown == [
        ["EURUSD", "0.60", "1.0850849999", "65105.12", "-31.77", "a_lots"],  # prices and text as written
        ["USDJPY", "1.12", "151.123", "16875012", "-4.63", ""],  # JPY: no minor unit; lots half even
        ["US500", "0.2", "5000.1", "1250.02", "0.12", ""],  # its lot step is 0.1
    ]
    assert rows[0][4] == "-31.7692465"  # the exact rows are left as they are


def test_displayed_rows_when_a_quote_currency_column_then_it_decides_and_the_account_currency_is_the_settings() -> None:
    columns = ["symbol", "quote_currency", "notional_quote", "commission_account"]
    rows = [["EURJPY", "JPY", "1500.5", "2.5"], ["EURUSD", "USD", "1500.555", "2.5"]]

    assert displayed_rows(columns, rows, INSTRUMENTS, "JPY") == [
        ["EURJPY", "JPY", "1500", "2"],
        ["EURUSD", "USD", "1500.56", "2"],
    ]


def test_displayed_rows_when_unknown_symbol_null_or_not_a_number_then_as_the_csv_has_it() -> None:
    columns = ["symbol", "position_lots", "notional_quote", "unrealized_pnl_account"]
    rows = [["XYZ123", "0.123456", "1.23456", ""], ["EURUSD", "nan", "inf", "-0.004"]]

    assert displayed_rows(columns, rows, INSTRUMENTS, "USD") == [
        ["XYZ123", "0.123456", "1.23456", ""],
        ["EURUSD", "nan", "inf", "0.00"],
    ]
