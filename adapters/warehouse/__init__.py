"""The warehouse as every component reaches it: client, credentials, migration runner, batched writer.

Importing this package is cheap: it talks HTTP to whichever ClickHouse is configured
(the embedded one is ``warehouse_server``); the schema it applies is the kernel's
(:mod:`tickwave.warehouse`).
"""
