"""The brokers the execution process trades through, by the name ``execution.broker`` gives.

Each entry opens its venue from the settings (the paper venue its ledger file in the instance's
folder, MT5 its terminal) and names the account it trades, which the single-writer fence keys on.
A new venue is one entry here and one name in ``ExecutionSettings.broker`` (a test holds the two
equal); nothing else chooses between brokers. The MT5 modules are imported only when chosen: the
terminal's package ships for Windows only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

from execution.brokers.paper import LEDGER_NAME, open_paper_broker
from execution.core.broker import Broker
from tickwave.clock import Clock
from tickwave.config import Settings
from tickwave.errors import ConfigurationError
from tickwave.instruments import registry


@dataclass(frozen=True)
class BrokerKind:
    """One venue: how to open it and which account it trades."""

    # Open the venue for the process whose journal, ledger and lock are in the instance folder given.
    open: Callable[[Settings, Clock, Path], Broker]
    # The account it trades, when the settings name one (None: the instance is the account).
    account: Callable[[Settings], str | None]


def _open_paper(settings: Settings, clock: Clock, instance: Path) -> Broker:
    return open_paper_broker(settings.execution, clock, instance / LEDGER_NAME, registry(settings.symbols))


def _open_mt5(settings: Settings, clock: Clock, instance: Path) -> Broker:
    from execution.brokers.mt5 import Mt5Broker, load_terminal  # Windows only: imported when chosen

    return Mt5Broker(settings.execution, clock, load_terminal(settings))


def _mt5_account(settings: Settings) -> str | None:
    # Two processes given different instance ids for one MT5 account are still one account.
    mt5 = settings.mt5
    return None if mt5.login is None else f"mt5-{mt5.server or 'default'}-{mt5.login}"


BROKERS: Final[Mapping[str, BrokerKind]] = MappingProxyType(
    {
        "paper": BrokerKind(_open_paper, lambda _settings: None),
        "mt5": BrokerKind(_open_mt5, _mt5_account),
    }
)


def broker_kind(settings: Settings) -> BrokerKind:
    """Return the entry of the broker ``settings`` choose.

    Raises:
        ConfigurationError: no broker has that name.
    """
    name = settings.execution.broker
    try:
        return BROKERS[name]
    except KeyError:
        known = ", ".join(sorted(BROKERS))
        raise ConfigurationError(f"execution.broker {name!r} names no broker (known: {known})") from None


def open_broker(settings: Settings, clock: Clock, instance: Path) -> Broker:
    """Open the broker ``settings`` choose, for the instance whose folder is ``instance``."""
    return broker_kind(settings).open(settings, clock, instance)
