"""A real Prometheus (Debian's `prometheus`) on a free loopback port, scraping what `tickwave up` wrote."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from adapters.endpoints import free_port
from adapters.metrics import RULES, prometheus_dir, scrape_config

SCRAPE_S = 1.0


class Prometheus:
    """Debian's prometheus on a free loopback port, with its own storage, scraping every second."""

    def __init__(self, config: Path, storage: Path) -> None:
        self.port = free_port()
        binary = shutil.which("prometheus")
        assert binary, "Debian's prometheus is needed (make prereqs installs it)"
        self.log = (storage.parent / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={storage}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
            return bytes(response.read())

    def wait_ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self.get("/-/ready")
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("prometheus did not become ready")

    def query(self, expression: str) -> dict[str, float]:
        """Return each series' value of an instant query, keyed by its job label."""
        answer = json.loads(self.get(f"/api/v1/query?query={urllib.parse.quote(expression)}"))
        assert answer["status"] == "success", answer
        return {item["metric"].get("job", ""): float(item["value"][1]) for item in answer["data"]["result"]}

    def query_labels(self, expression: str, label: str) -> dict[str, float]:
        """Return each series' value of an instant query, keyed by ``label``."""
        answer = json.loads(self.get(f"/api/v1/query?query={urllib.parse.quote(expression)}"))
        return {item["metric"].get(label, ""): float(item["value"][1]) for item in answer["data"]["result"]}

    def wait_for(
        self, expression: str, accept: Callable[[dict[str, float]], bool], timeout_s: float
    ) -> dict[str, float]:
        deadline = time.monotonic() + timeout_s
        found = self.query(expression)
        while not accept(found) and time.monotonic() < deadline:
            time.sleep(0.5)
            found = self.query(expression)
        assert accept(found), f"{expression}: {found} after {timeout_s} s"
        return found

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@contextmanager
def prometheus_for(state: Path, tmp_path: Path) -> Iterator[Prometheus]:
    """Prometheus on the targets and the rule file `tickwave up` wrote, scraping every second."""
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps(scrape_config(state, SCRAPE_S, [prometheus_dir(state) / RULES])))
    started = Prometheus(config, tmp_path / "tsdb")
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()
