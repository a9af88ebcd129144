"""Protective stops at the MT5 trade server: a backstop for the engine's own stops.

The engine closes a position whose price crosses its ``stop_loss_pips`` /
``take_profit_pips`` (engine-managed, so they hold for paper and MT5 alike), which
protects only while the process runs. With ``mt5_server_stops`` on, after every fill the
broker also sets each of Tickwave's positions' ``sl``/``tp`` at the trade server
(``TRADE_ACTION_SLTP``), ``mt5_server_stop_extra_pips`` beyond the engine's levels, so the
engine closes first while it runs and the server closes if it does not. Known limit: a
price gapping through both levels in one tick can close at the server and, on a netting
account, let the engine's own close open a small opposite position; reconciliation then
reports the mismatch and moves trading to REDUCING.
"""

from __future__ import annotations

import logging

from adapters.mt5.api import Constants
from adapters.mt5.terminal import Terminal, TerminalError
from tickwave.config import ExecutionSettings
from tickwave.instruments import from_mt5_symbol_info

logger = logging.getLogger(__name__)

C = Constants


class ServerStops:
    """Sets the server-side sl/tp of Tickwave's positions (failures are logged, never raised)."""

    def __init__(self, settings: ExecutionSettings, terminal: Terminal) -> None:
        self.settings = settings
        self.terminal = terminal

    def protect(self, symbol: str) -> None:
        """Set the server-side sl/tp of Tickwave's positions in ``symbol`` (a backstop; failures are logged)."""
        settings = self.settings
        stop_loss_pips, take_profit_pips = settings.risk.stop_pips(symbol)
        if not settings.mt5_broker.server_stops or not (stop_loss_pips or take_profit_pips):
            return
        try:
            info = self.terminal.call("symbol_info", symbol)
            positions = self.terminal.call("positions_get", symbol=symbol)
        except TerminalError as exc:
            logger.warning("symbol=%s server stops not set: the terminal did not answer (%s)", symbol, exc)
            return
        pip, digits = from_mt5_symbol_info(info).pip_size, int(info.digits)
        for position in positions:
            if position.magic != settings.mt5_broker.magic:
                continue
            is_long = position.type == C.POSITION_TYPE_BUY
            sl, tp = server_stop_levels(
                is_long,
                position.price_open,
                pip,
                digits,
                stop_loss_pips,
                take_profit_pips,
                settings.mt5_broker.server_stop_extra_pips,
            )
            if (round(position.sl, digits), round(position.tp, digits)) == (sl, tp):
                continue
            request = {
                "action": C.TRADE_ACTION_SLTP,
                "symbol": symbol,
                "position": position.ticket,
                "sl": sl,
                "tp": tp,
                "magic": settings.mt5_broker.magic,
            }
            try:
                result = self.terminal.call("order_send", request)
            except TerminalError as exc:
                logger.warning("position=%d server stops not set (%s)", position.ticket, exc)
                continue
            if result.retcode not in (C.TRADE_RETCODE_DONE, C.TRADE_RETCODE_NO_CHANGES):
                logger.warning(
                    "position=%d server stops sl=%s tp=%s refused: %d %s",
                    position.ticket,
                    sl,
                    tp,
                    result.retcode,
                    result.comment,
                )


def server_stop_levels(
    is_long: bool,
    price_open: float,
    pip: float,
    digits: int,
    stop_loss_pips: float,
    take_profit_pips: float,
    extra_pips: float,
) -> tuple[float, float]:
    """Return the server's (sl, tp) around a position's open price, ``extra_pips`` beyond the engine's; 0 = none."""
    direction = 1 if is_long else -1
    sl = round(price_open - direction * (stop_loss_pips + extra_pips) * pip, digits) if stop_loss_pips else 0.0
    tp = round(price_open + direction * (take_profit_pips + extra_pips) * pip, digits) if take_profit_pips else 0.0
    return sl, tp
