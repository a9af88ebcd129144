"""A scrape target that is down raises its alert in a real Prometheus; one held by silent connections does not.

Debian's Prometheus reads the rule file ``tickwave up`` writes (``prometheus/rules.yml``)
and scrapes three targets recorded as the processes record theirs: a live metrics server,
one that 8 local connections hold silently (reopened as they are cut), and a port where
nothing listens.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from adapters.endpoints import free_port
from adapters.metrics import metrics_served, record_metrics_port, write_rules
from dashboards.provisioning import prometheus_rules_document
from tests.integration.platform.prometheus import prometheus_for
from tests.sockets import SilentHolders
from tickwave.config import Settings

DOWN_FOR_S = 2


def firing(answer: bytes) -> dict[str, str]:
    """The firing alerts' names by their target's job."""
    alerts = json.loads(answer)["data"]["alerts"]
    return {alert["labels"]["job"]: alert["labels"]["alertname"] for alert in alerts if alert["state"] == "firing"}


def test_prometheus_when_a_target_is_down_then_its_alert_fires_and_a_held_one_stays_up(tmp_path: Path) -> None:
    state = tmp_path / "state"
    settings = Settings(state_dir=state, dashboards={"target_down_s": DOWN_FOR_S})
    write_rules(settings, prometheus_rules_document(settings))
    record_metrics_port(state, "execution", free_port())  # recorded, nothing serves it: down

    with metrics_served(settings, "ingest"), metrics_served(settings, "audit") as held_port:
        assert held_port is not None
        holders = SilentHolders(held_port, 8)
        try:
            with prometheus_for(state, tmp_path) as prometheus:
                up = prometheus.wait_for("up", lambda found: len(found) == 3, 30)
                deadline = time.monotonic() + 30
                alerts = firing(prometheus.get("/api/v1/alerts"))
                while "execution" not in alerts and time.monotonic() < deadline:
                    time.sleep(0.5)
                    alerts = firing(prometheus.get("/api/v1/alerts"))
                time.sleep(2 * DOWN_FOR_S)  # long enough for a held target to fire too, were it blinded
                alerts = firing(prometheus.get("/api/v1/alerts"))
                held_up = prometheus.query(f'min_over_time(up{{job="audit"}}[{2 * DOWN_FOR_S}s])')
        finally:
            holders.close()

    assert alerts == {"execution": "tickwave-target-down"}
    assert up["ingest"] == 1 and held_up == {"audit": 1.0}  # every scrape answered while held
