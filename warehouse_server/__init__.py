"""The embedded ClickHouse server: the ClickHouse HTTP interface over the chdb engine, with its own security model."""
