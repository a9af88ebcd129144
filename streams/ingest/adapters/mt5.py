"""Live ticks from a MetaTrader 5 terminal, polled with ``copy_ticks_range``.

Per symbol, each poll asks for every tick (``COPY_TICKS_ALL``) from the start of the
second holding the newest tick already sent, in windows of ``mt5.window_s`` seconds, until
the window reaches the symbol's latest tick (``symbol_info_tick``). Ranges include both
ends and overlap, so the same ticks come back more than once;
:func:`~streams.ingest.logic.select_new` drops those already sent and keeps distinct
ticks that share a millisecond.

When the terminal goes away (IPC errors -10000..-10005: closed, restarting), the source
reconnects with backoff and resumes from the same cursor, so the ticks of the gap are
fetched ("back-filled") before new ones. Other failures are logged with ``last_error()``
and retried at the next poll.

Times are the broker's server clock; they become UTC through ``mt5.server_timezone``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping

import numpy as np
import numpy.typing as npt

from adapters.mt5.terminal import Terminal, TerminalDisconnected, TerminalError
from streams.ingest.batches import Candidates, SourceBatch
from streams.ingest.logic import PollCursor, TickValidator, select_new
from tickwave.clock import Clock
from tickwave.config import SymbolSpec
from tickwave.errors import ConfigurationError

logger = logging.getLogger(__name__)


class Mt5Source:
    """Polls a terminal for the ticks of ``symbols``.

    Args:
        terminal: the terminal adapter (real package or fake).
        symbols: the symbols to poll; each must be in ``registry``.
        registry: the known symbols (digits are compared with the terminal's).
        validator: checks and numbers the ticks.
        stop: set to end polling (SIGTERM).
        clock: the wall clock (where the backfill starts; the lag is measured against it).
    """

    name = "mt5"

    def __init__(
        self,
        terminal: Terminal,
        symbols: list[str],
        registry: Mapping[str, SymbolSpec],
        validator: TickValidator,
        stop: threading.Event,
        clock: Clock,
    ) -> None:
        unknown = [symbol for symbol in symbols if symbol not in registry]
        if unknown:
            raise ConfigurationError(f"symbols {unknown} are not in the symbol registry; add [symbols.NAME] tables")
        self.terminal = terminal
        self.symbols = symbols
        self.registry = registry
        self.validator = validator
        self.stop = stop
        self.clock = clock
        self.settings = terminal.settings
        self.cursors = {symbol: PollCursor() for symbol in symbols}
        self.poll_errors = 0
        self._start_server_ms = 0
        self._needs_setup = True

    def batches(self) -> Iterator[SourceBatch]:
        """Poll until stopped, yielding new ticks as they appear."""
        if not self._connect():
            return
        self._start_server_ms = self.terminal.clock.local_ms(self.clock.now_ms() - self.settings.backfill_s * 1000)
        while not self.stop.is_set():
            try:
                if self._needs_setup:
                    self._setup_symbols()
                for symbol in self.symbols:
                    yield from self._poll(symbol)
            except TerminalDisconnected as exc:
                logger.warning("mt5 lost the terminal (%s); reconnecting, then back-filling the gap", exc)
                self._needs_setup = True
                if not self.terminal.reconnect(self.stop):
                    return
                continue
            except TerminalError as exc:
                self.poll_errors += 1
                if self.poll_errors <= 10 or self.poll_errors % 100 == 0:  # polls run 10x a second: no log flood
                    logger.warning(
                        "mt5 poll failed (%s); retrying at the next poll (failures: %d)", exc, self.poll_errors
                    )
            if self.stop.wait(self.settings.poll_interval_ms / 1000):
                return

    def _connect(self) -> bool:
        try:
            self.terminal.connect()
        except TerminalDisconnected as exc:
            logger.warning("mt5 terminal not reachable yet (%s); retrying with backoff", exc)
            return self.terminal.reconnect(self.stop)
        return True

    def _setup_symbols(self) -> None:
        infos = self.terminal.select_symbols(self.symbols)
        for symbol, info in infos.items():
            expected = self.registry[symbol].digits
            if getattr(info, "digits", expected) != expected:
                logger.warning(
                    "mt5 symbol=%s has %s digits at the broker but %s in the registry; ticks are sent as quoted",
                    symbol,
                    info.digits,
                    expected,
                )
        self._needs_setup = False

    def _poll(self, symbol: str) -> Iterator[SourceBatch]:
        cursor = self.cursors[symbol]
        latest = self.terminal.last_tick_msc(symbol)
        window_ms = self.settings.window_s * 1000
        scan_from = cursor.last_time_msc // 1000 * 1000 if cursor.last_time_msc >= 0 else self._start_server_ms
        while True:
            scan_to = scan_from + window_ms
            ticks = self.terminal.ticks_range(symbol, scan_from, scan_to)
            fresh = ticks[select_new(ticks["time_msc"], cursor)] if len(ticks) else ticks
            if len(fresh):
                yield self.validator.validate(self._candidates(symbol, fresh))
            if scan_to >= latest or self.stop.is_set():
                return
            scan_from = scan_to

    def _candidates(self, symbol: str, ticks: npt.NDArray[np.void]) -> Candidates:
        count = len(ticks)
        volume = np.where(ticks["volume_real"] > 0, ticks["volume_real"], ticks["volume"].astype(np.float64))

        def raw(row: int) -> str:
            record = dict(zip(ticks.dtype.names or (), ticks[row].tolist(), strict=True))
            return json.dumps({"symbol": symbol, **record})

        time_ms = self.terminal.clock.to_utc_ms(ticks["time_msc"].astype(np.int64))
        return Candidates(
            (symbol,),
            np.zeros(count, dtype=np.int32),
            time_ms,
            ticks["bid"].astype(np.float64),
            ticks["ask"].astype(np.float64),
            ticks["last"].astype(np.float64),
            volume,
            ticks["flags"].astype(np.int64),
            raw,
        )

    def clock_ms(self) -> int | None:
        """Return the UTC wall clock (lag = how far the newest sent tick is behind it)."""
        return self.clock.now_ms()

    def progress(self) -> float | None:
        """Return None: a live source has no end."""
        return None

    def close(self) -> None:
        """Detach from the terminal."""
        self.terminal.close()
