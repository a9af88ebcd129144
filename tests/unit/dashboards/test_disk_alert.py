"""The "disk low" rule has one home (``adapters.disk``): the ops board's alert, run by the engine, agrees with it.

chdb in process holds a few ``disk_free`` samples (the columns the alert reads); the alert's
count of low volumes equals the volumes the Python rule calls low, at the threshold's edge too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chdb
import pytest

from adapters.disk import DISK_FREE_EVENT, Volume, is_disk_low, volumes
from dashboards.alerts import alert_rules, disk_low_alert_sql
from tickwave.config import load_settings

TOTAL = 250_000_000_000
# (volume, free bytes of its latest sample): at 10 %, the edge is 25,000,000,000 bytes free
LATEST = {"/": 25_000_000_000, "/data": 24_999_999_999, "/kafka": 80_000_000_000, "/tiny": 0}


@pytest.fixture(scope="module")
def connection() -> Iterator[Any]:
    connection = chdb.connect(":memory:")
    connection.query(
        "CREATE TABLE service_events (event_at_ms DateTime64(3, 'UTC'), event String, detail String) ENGINE = Memory"
    )
    rows = []
    for volume, free in LATEST.items():
        older = {"volume": volume, "free_bytes": 1, "total_bytes": TOTAL}  # low once, recovered since
        latest = {"volume": volume, "free_bytes": free, "total_bytes": TOTAL}
        rows.append(f"(now64(3) - INTERVAL 2 MINUTE, '{DISK_FREE_EVENT}', '{json.dumps(older)}')")
        rows.append(f"(now64(3) - INTERVAL 1 MINUTE, '{DISK_FREE_EVENT}', '{json.dumps(latest)}')")
    stale = {"volume": "/old", "free_bytes": 0, "total_bytes": TOTAL}  # older than 10 minutes: not counted
    rows.append(f"(now64(3) - INTERVAL 1 HOUR, '{DISK_FREE_EVENT}', '{json.dumps(stale)}')")
    rows.append(f"(now64(3), 'crashed', '{json.dumps({'volume': '/x', 'free_bytes': 0, 'total_bytes': TOTAL})}')")
    connection.query(f"INSERT INTO service_events VALUES {', '.join(rows)}")
    yield connection
    connection.close()


@pytest.mark.parametrize("alert_pct", [0.0, 9.9999999996, 10.0, 10.0000000004, 32.0, 100.0])
def test_disk_alert_when_run_by_the_engine_then_counts_the_volumes_the_python_rule_calls_low(
    connection: Any, alert_pct: float
) -> None:
    expected = sum(is_disk_low(free, TOTAL, alert_pct) for free in LATEST.values())

    value = int(connection.query(disk_low_alert_sql(alert_pct), "TabSeparated").bytes().decode())

    assert value == expected


def test_disk_rule_when_at_the_threshold_then_not_low_and_one_byte_under_then_low() -> None:
    assert not is_disk_low(25_000_000_000, TOTAL, 10.0)
    assert is_disk_low(24_999_999_999, TOTAL, 10.0)
    assert not is_disk_low(0, TOTAL, 0.0)


def test_disk_alert_when_provisioned_then_its_threshold_comes_from_the_supervision_setting() -> None:
    settings = load_settings(supervision={"disk_free_alert_pct": 7.5})

    [rule] = [rule for rule in alert_rules(settings) if rule.uid == "tickwave-disk-low"]

    assert rule.sql == disk_low_alert_sql(7.5) and "* 7.5)" in rule.sql
    assert rule.threshold == 0 and "7.5 %" in rule.summary


def test_volumes_when_data_directories_share_a_mount_then_one_volume_holding_them_all(tmp_path: Path) -> None:
    paths = {"kafka": tmp_path / "kafka", "warehouse": tmp_path / "warehouse", "journal": tmp_path / "not" / "yet"}
    (tmp_path / "kafka").mkdir()

    [volume] = volumes(paths)

    assert isinstance(volume, Volume) and volume.holds == ("kafka", "warehouse", "journal")
    assert 0 < volume.free_bytes <= volume.total_bytes and 0 < volume.free_pct <= 100
    assert volumes({"root": Path("/"), "proc": Path("/proc")})[0].mount == "/"
    assert len(volumes({"root": Path("/"), "proc": Path("/proc")})) == 2
