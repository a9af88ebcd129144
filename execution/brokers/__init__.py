"""Brokers behind one interface: paper (simulated, deterministic) and MetaTrader 5."""
