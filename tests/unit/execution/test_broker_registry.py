"""The broker registry: one entry per venue the settings accept, chosen by name, and the account each one trades."""

import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from execution.brokers.paper import LEDGER_NAME
from execution.brokers.registry import BROKERS, broker_kind, open_broker
from execution.core.paper import PaperBroker
from execution.fence import fence_account
from tickwave.clock import ManualClock
from tickwave.config import ExecutionSettings, Settings
from tickwave.errors import ConfigurationError


def _choosing(broker: str, **mt5: object) -> Settings:
    settings = Settings(mt5=mt5) if mt5 else Settings()
    # model_copy does not validate: a name the settings' own check would refuse reaches the registry.
    return settings.model_copy(update={"execution": settings.execution.model_copy(update={"broker": broker})})


def test_registry_when_compared_with_the_settings_then_it_holds_exactly_the_brokers_they_accept() -> None:
    accepted = get_args(ExecutionSettings.model_fields["broker"].annotation)
    assert sorted(BROKERS) == sorted(accepted)


def test_open_broker_when_paper_is_chosen_then_its_ledger_is_in_the_instance_folder(tmp_path: Path) -> None:
    # Act
    broker = open_broker(_choosing("paper"), ManualClock(0), tmp_path)
    # Assert
    assert isinstance(broker, PaperBroker) and broker.venue() == "paper"
    assert (tmp_path / LEDGER_NAME).is_file()


def test_open_broker_when_paper_is_chosen_then_the_mt5_modules_are_not_imported(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom pathlib import Path\nfrom execution.brokers.registry import open_broker\n"
        "from tickwave.clock import ManualClock\nfrom tickwave.config import Settings\n"
        f"open_broker(Settings(), ManualClock(0), Path({str(tmp_path)!r}))\n"
        "print(sorted(name for name in sys.modules if name.startswith('execution.brokers.mt5')))"
    )
    imported = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert imported.strip() == "[]"


def test_broker_kind_when_the_name_is_unknown_then_a_configuration_error_names_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"'ib' names no broker \(known: mt5, paper\)"):
        broker_kind(_choosing("ib"))


@pytest.mark.parametrize(
    ("broker", "mt5", "account"),
    [
        ("paper", {}, "execution-1"),
        ("paper", {"login": 5551, "server": "Demo-Server"}, "execution-1"),
        ("mt5", {}, "execution-1"),
        ("mt5", {"login": 5551, "server": "Demo-Server"}, "mt5-Demo-Server-5551"),
        ("mt5", {"login": 5551}, "mt5-default-5551"),
    ],
)
def test_fence_account_when_a_broker_is_chosen_then_the_account_is_the_brokers_own_or_the_instance(
    broker: str, mt5: dict[str, object], account: str
) -> None:
    assert fence_account(_choosing(broker, **mt5)) == account
