"""Every MT5 broker test runs on a netting and on a hedging account (the ``margin_mode`` fixture)."""

from __future__ import annotations

import pytest

from testkit.mt5 import HEDGING, NETTING
from tests.unit.execution.mt5.helpers import MARGIN_MODE


@pytest.fixture(autouse=True, params=[NETTING, HEDGING], ids=["netting", "hedging"])
def margin_mode(request: pytest.FixtureRequest) -> int:
    MARGIN_MODE["mode"] = request.param
    return int(request.param)
