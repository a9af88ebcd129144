"""The thin MetaTrader 5 adapter shared by ingest and the execution process.

- :mod:`adapters.mt5.api`: the package's constants, tick dtype, the calls used, and the
  lazy, Windows-only loader.
- :mod:`adapters.mt5.terminal`: connect/login, calls that raise with ``last_error()``,
  reconnect with backoff, the server clock (:mod:`tickwave.timezones`).
- :mod:`testkit.mt5_fake`: a stand-in for the package with the same calls, constants and
  return shapes, plus fault injection, for tests and demos on any OS.

Nothing here imports ``MetaTrader5`` at module import time.
"""
