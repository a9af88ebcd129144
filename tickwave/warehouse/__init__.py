"""The ClickHouse warehouse: schema, migrations, clients, the batched writer and the embedded HTTP service.

Importing this package is cheap: the engine (chdb) and the HTTP server load only in the
process that serves (``tickwave warehouse serve``); producers use
:mod:`tickwave.warehouse.client` and :mod:`tickwave.warehouse.writer` over HTTP.
"""
