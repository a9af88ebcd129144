"""``tickwave ingest`` as a user runs it: real subprocesses against the session's Kafka."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters.bus import resolve_bootstrap
from streams.ingest.sample import SAMPLE_DIR
from tests.integration.ingest.kafka_reading import message_count, read_ticks
from tests.plugins.services import bus_environment
from tickwave.config import Settings
from tickwave.topics import TICKS, TICKS_DLQ, topic_name

TICKWAVE = str(Path(sys.executable).with_name("tickwave"))


def cli_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith("TICKWAVE_")}
    env.update(
        {
            "COLUMNS": "200",
            "TICKWAVE_STATE_DIR": str(tmp_path / "state"),
            "TICKWAVE_INGEST_STATS_INTERVAL_S": "0.5",
            **bus_environment(settings),
        }
    )
    return env


def ingest(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [TICKWAVE, "ingest", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def reported_ticks(output: str) -> int:
    match = re.search(r"^(\d+) ticks, (\d+) dead letters", output, re.M)
    assert match, output
    return int(match.group(1))


def test_ingest_when_replaying_the_sample_then_all_ticks_sent_with_progress(settings: Settings, tmp_path: Path) -> None:
    result = ingest(
        cli_env(settings, tmp_path), tmp_path, "--source", "replay", "--file", str(SAMPLE_DIR), "--timezone", "UTC"
    )

    assert result.returncode == 0, result.stderr
    assert reported_ticks(result.stdout) == 4_600
    assert "100.0%" in result.stderr  # the progress bar reached the end
    assert message_count(resolve_bootstrap(settings), topic_name(settings, TICKS)) == 4_600


def test_ingest_when_window_given_then_only_ticks_inside_it(settings: Settings, tmp_path: Path) -> None:
    result = ingest(
        cli_env(settings, tmp_path),
        tmp_path,
        "--source",
        "replay",
        "--file",
        str(SAMPLE_DIR),
        "--from",
        "2024-03-04T08:02:00",
        "--to",
        "2024-03-04T08:03:00Z",
    )

    assert result.returncode == 0, result.stderr
    times = [tick.time_ms for _key, tick in read_ticks(resolve_bootstrap(settings), topic_name(settings, TICKS))]
    assert len(times) == reported_ticks(result.stdout) > 100
    assert min(times) >= 1_709_539_320_000 and max(times) < 1_709_539_380_000


def test_ingest_when_simulating_at_full_speed_then_duration_of_ticks_sent(settings: Settings, tmp_path: Path) -> None:
    # A fixed start: the simulated activity follows the UTC hour, and from "now" at 21:00 UTC (the rollover, a
    # third of the day's mean) ten minutes held ~9,500 ticks. 08:00 UTC is a liquid hour, and the same seed
    # and start give the same ticks.
    result = ingest(
        cli_env(settings, tmp_path),
        tmp_path,
        "--source",
        "sim",
        "--speed",
        "max",
        "--duration",
        "10m",
        "--rate",
        "50",
        "--symbols",
        "EURUSD,XAUUSD",
        "--from",
        "2024-03-04T08:00:00Z",
    )

    assert result.returncode == 0, result.stderr
    ticks = read_ticks(resolve_bootstrap(settings), topic_name(settings, TICKS))
    assert len(ticks) == reported_ticks(result.stdout) > 10_000
    assert {tick.symbol for _key, tick in ticks} == {"EURUSD", "XAUUSD"}
    assert "ingest finished source=sim" in result.stderr


def test_ingest_when_sigterm_then_stops_cleanly_with_everything_delivered(topics: Settings, tmp_path: Path) -> None:
    settings = topics
    env = cli_env(settings, tmp_path)
    command = [TICKWAVE, "ingest", "--source", "sim", "--rate", "2000"]  # real time, no end
    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while message_count(resolve_bootstrap(settings), topic_name(settings, TICKS)) < 500:
            assert time.monotonic() < deadline and process.poll() is None, "ingest produced nothing"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, stderr
    assert "SIGTERM: stopping" in stderr and "stopped" in stdout
    assert message_count(resolve_bootstrap(settings), topic_name(settings, TICKS)) == reported_ticks(stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "mt5"], "runs only on Windows"),
        (["--source", "replay", "--file", "missing.csv"], "not found"),
        (["--source", "sim", "--symbols", "BTCUSD"], "not in the symbol registry"),
    ],
)
def test_ingest_when_misconfigured_then_one_clear_line_and_exit_1(
    settings: Settings, tmp_path: Path, args: list[str], message: str
) -> None:
    result = ingest(cli_env(settings, tmp_path), tmp_path, *args)

    assert result.returncode == 1
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert message_count(resolve_bootstrap(settings), topic_name(settings, TICKS_DLQ)) == 0
