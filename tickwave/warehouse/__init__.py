"""The warehouse's schema as every component sees it: the tables and the numbered migrations.

Definitions only: the client, the credentials and the migration runner, which talk to
whichever ClickHouse is configured (the embedded one is ``warehouse_server``), are in
:mod:`adapters.warehouse`.
"""
