"""The ClickHouse warehouse as every component sees it: the client, the tables, the migrations and the credentials.

Importing this package is cheap: it talks HTTP to whichever ClickHouse is configured
(the embedded one is ``warehouse_server``). Producers batch rows through
:mod:`adapters.warehouse_writer`.
"""
