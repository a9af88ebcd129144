"""The ClickHouse HTTP interface: HTTP requests in, plans handed to :mod:`warehouse_server.query`, responses out."""
