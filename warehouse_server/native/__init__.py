"""ClickHouse's native TCP interface: the protocol's packets, connections served through ``query/``."""
