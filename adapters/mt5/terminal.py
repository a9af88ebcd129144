"""One connection to a MetaTrader 5 terminal: connect, call, reconnect with backoff.

The adapter is deliberately thin: it turns the package's "``None`` plus
``last_error()``" convention into exceptions, logs ``last_error()`` with every failure,
and reconnects when the IPC link breaks (``RES_E_INTERNAL_FAIL_*``, codes -10000 to
-10005: the terminal closed, restarted, or is still starting). Both the ingest source
and the execution process use it; neither touches the package directly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from adapters.mt5.api import (
    COPY_TICKS_ALL,
    IPC_ERRORS,
    RES_E_AUTH_FAILED,
    RES_S_OK,
    TICK_DTYPE,
    Constants,
    MetaTrader5Api,
    load_metatrader5,
)
from tickwave.config import MT5Settings
from tickwave.errors import ConfigurationError, RetryableError, TickwaveError
from tickwave.timezones import WallClock

logger = logging.getLogger(__name__)

# A tick copy that finds nothing may answer None with one of these instead of an empty array.
_EMPTY_RESULT_CODES = frozenset({RES_S_OK, Constants.RES_E_NOT_FOUND})


class TerminalError(TickwaveError):
    """A terminal call failed; ``code`` and ``description`` are its ``last_error()``."""

    def __init__(self, call: str, code: int, description: str) -> None:
        super().__init__(f"MT5 {call} failed: last_error=({code}, {description!r})")
        self.call = call
        self.code = code
        self.description = description


class TerminalDisconnected(TerminalError, RetryableError):
    """The IPC link to the terminal is down (closed, restarting, or not started yet)."""


def error_for(call: str, code: int, description: str) -> TerminalError:
    """Return the exception for a failed call: retryable for IPC failures, plain otherwise."""
    kind = TerminalDisconnected if code in IPC_ERRORS else TerminalError
    return kind(call, code, description)


@dataclass(frozen=True)
class Backoff:
    """Pauses between reconnect attempts: ``initial_s``, doubling, capped at ``max_s``."""

    initial_s: float
    max_s: float

    def delays(self) -> Iterator[float]:
        """Yield the pause before each successive attempt."""
        delay = self.initial_s
        while True:
            yield delay
            delay = min(delay * 2, self.max_s)


class Terminal:
    """A MetaTrader 5 terminal reached through the ``MetaTrader5`` package (or its fake).

    Args:
        settings: the ``mt5`` section (account, server clock, reconnect pauses).
        api: the module to call; by default the real package, imported on first use
            (which fails with a clear ConfigurationError off Windows).
    """

    def __init__(self, settings: MT5Settings, api: MetaTrader5Api | None = None) -> None:
        self.settings = settings
        self._api = api
        self.clock = WallClock(settings.server_timezone)
        self.backoff = Backoff(settings.reconnect_initial_s, settings.reconnect_max_s)
        self.is_connected = False
        self.reconnects = 0

    @property
    def api(self) -> MetaTrader5Api:
        """The package (loaded on first use)."""
        if self._api is None:
            self._api = load_metatrader5()
        return self._api

    def _last_error(self) -> tuple[int, str]:
        code, description = self.api.last_error()
        return int(code), str(description)

    def connect(self) -> None:
        """Attach to the terminal (starting it when ``path`` is set) and log in if configured.

        Raises:
            TerminalDisconnected: the terminal did not answer (retry later).
            ConfigurationError: the account, password or server was refused.
            TerminalError: any other failure.
        """
        settings = self.settings
        args: tuple[str, ...] = (str(settings.path),) if settings.path else ()
        kwargs: dict[str, Any] = {"timeout": settings.timeout_ms, "portable": settings.portable}
        if settings.login is not None:
            kwargs["login"] = settings.login
            if settings.password is not None:
                kwargs["password"] = settings.password.get_secret_value()
            if settings.server:
                kwargs["server"] = settings.server
        if not self.api.initialize(*args, **kwargs):
            code, description = self._last_error()
            self.api.shutdown()
            self.is_connected = False
            if code == RES_E_AUTH_FAILED:
                raise ConfigurationError(
                    f"MT5 refused login {settings.login} on server {settings.server!r}: "
                    f"last_error=({code}, {description!r}); check mt5.login, mt5.password and mt5.server"
                )
            raise error_for("initialize", code, description)
        self.is_connected = True
        terminal = self.api.terminal_info()
        account = self.api.account_info()
        logger.info(
            "mt5 connected: terminal build=%s connected_to_server=%s account=%s server=%s server_timezone=%s",
            getattr(terminal, "build", "?"),
            getattr(terminal, "connected", "?"),
            getattr(account, "login", "?"),
            getattr(account, "server", "?"),
            settings.server_timezone,
        )

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``name`` on the package; turn a ``None``/``False`` answer into an exception.

        Raises:
            TerminalDisconnected: for IPC failures (the caller should :meth:`reconnect`).
            TerminalError: for any other failure, with ``last_error()`` attached.
        """
        result = getattr(self.api, name)(*args, **kwargs)
        if result is None or result is False:
            raise self._failure(name, *self._last_error())
        return result

    def _failure(self, name: str, code: int, description: str) -> TerminalError:
        error = error_for(name, code, description)
        if isinstance(error, TerminalDisconnected):
            self.is_connected = False
        logger.warning("mt5 call=%s failed: last_error=(%d, %r)", name, code, description)
        return error

    def reconnect(self, stop: threading.Event) -> bool:
        """Reconnect with backoff until it works or ``stop`` is set.

        Returns:
            True once connected; False if ``stop`` was set first.

        Raises:
            ConfigurationError: when the terminal refuses the account (retrying cannot help).
        """
        for attempt, delay in enumerate(self.backoff.delays(), start=1):
            if stop.is_set():
                return False
            self.api.shutdown()
            try:
                self.connect()
            except TerminalDisconnected as exc:
                logger.warning("mt5 reconnect attempt %d failed: %s; next attempt in %.1f s", attempt, exc, delay)
            else:
                self.reconnects += 1
                logger.info("mt5 reconnected after %d attempt(s) (reconnects so far: %d)", attempt, self.reconnects)
                return True
            if stop.wait(delay):
                return False
        return False  # pragma: no cover - delays() never ends

    def select_symbols(self, symbols: list[str]) -> dict[str, Any]:
        """Add ``symbols`` to Market Watch (needed for live ticks); return their SymbolInfo.

        Raises:
            TerminalError: naming the symbol the terminal does not know.
        """
        infos: dict[str, Any] = {}
        for symbol in symbols:
            self.call("symbol_select", symbol, True)
            infos[symbol] = self.call("symbol_info", symbol)
        return infos

    def last_tick_msc(self, symbol: str) -> int:
        """Return the server-clock time (ms) of the symbol's latest tick."""
        return int(self.call("symbol_info_tick", symbol).time_msc)

    def ticks_range(self, symbol: str, from_server_ms: int, to_server_ms: int) -> npt.NDArray[np.void]:
        """Return every tick (``COPY_TICKS_ALL``) within a server-clock range, both ends included.

        The range is passed in whole seconds (the package's integer form, free of any
        local-time-zone reading); callers overlap successive windows and deduplicate.

        Raises:
            TerminalDisconnected / TerminalError: as :meth:`call`.
        """
        name = "copy_ticks_range"
        result = self.api.copy_ticks_range(symbol, from_server_ms // 1000, to_server_ms // 1000, COPY_TICKS_ALL)
        if result is None:
            code, description = self._last_error()
            if code in _EMPTY_RESULT_CODES:
                return np.empty(0, dtype=TICK_DTYPE)
            raise self._failure(name, code, description)
        return np.asarray(result)

    def close(self) -> None:
        """Close the IPC connection (the terminal keeps running)."""
        if self._api is not None:
            self._api.shutdown()
        self.is_connected = False
