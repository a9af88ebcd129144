"""Tickwave: streaming analytics and AI trading platform for MetaTrader 5 markets."""
