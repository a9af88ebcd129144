"""``make bench`` runs every benchmark as a module from the root and ends with one summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.summary import MARKERS, benchmarks, markdown_table, merged, run_all, update_readme

ROOT = Path(__file__).resolve().parents[3]


def test_make_bench_when_dry_run_then_runs_the_summary_module_not_files() -> None:
    recipe = subprocess.run(["make", "-n", "-s", "bench"], cwd=ROOT, capture_output=True, text=True, check=True)

    assert "-m bench.summary" in recipe.stdout
    assert "bench/*.py" not in recipe.stdout


@pytest.mark.parametrize("module", ["bench.streams_latency", "bench.streams_relay", "bench.ingest"])
def test_benchmark_when_imported_as_its_make_bench_command_does_then_no_shadowed_package(module: str) -> None:
    # runpy with another run name executes the module's imports but not its main().
    code = f"import runpy; runpy.run_module({module!r}, run_name='imported')"

    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr[-2000:]


def test_benchmarks_when_listed_then_every_bench_file_but_the_runner() -> None:
    names = benchmarks()

    assert "bench.streams" in names and "bench.models" in names
    # the runner, and the two parts of bench.streams
    assert not {"bench.summary", "bench.streams_latency", "bench.streams_relay"} & set(names)


def test_run_all_when_one_benchmark_fails_then_the_rest_run_and_the_summary_has_every_figure(tmp_path: Path) -> None:
    modules = ["tests.unit.bench.sample_ok", "tests.unit.bench.sample_failing", "tests.unit.bench.sample_ok"]

    summary = run_all(modules, tmp_path)

    written = json.loads((tmp_path / "summary.json").read_text())
    assert written == summary
    assert [run["exit_code"] for run in summary["runs"]] == [0, 3, 0]
    assert [figure["figure"] for figure in summary["figures"]] == ["decode", "decode"]
    assert summary["figures"][0] | {"benchmark": "sample_ok"} == {
        "benchmark": "sample_ok",
        "figure": "decode",
        "value": 1.5,
        "unit": "us",
        "baseline": "json 6 us",
        "target": "< 2 us",
        "is_met": True,
    }


def test_update_readme_when_summary_given_then_table_between_markers(tmp_path: Path) -> None:
    summary = {
        "generated_at": "now",
        "machine": "m",
        "runs": [
            {
                "benchmark": "a",
                "command": "python -m bench.a",
                "exit_code": 0,
                "duration_s": 1,
                "load_before": 1.0,
                "load_after": 2.0,
            },
            {
                "benchmark": "b",
                "command": "python -m bench.b",
                "exit_code": 1,
                "duration_s": 1,
                "load_before": 1.0,
                "load_after": 2.0,
            },
        ],
        "figures": [
            {
                "benchmark": "a",
                "figure": "rate",
                "value": 123456.0,
                "unit": "ticks/s",
                "baseline": "loop",
                "target": ">= 1e5",
                "is_met": True,
            }
        ],
    }
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{MARKERS[0]}\nold\n{MARKERS[1]}\nafter\n")

    update_readme(readme, markdown_table(summary))

    text = readme.read_text()
    assert "old" not in text and text.endswith(f"{MARKERS[1]}\nafter\n")
    assert "| a | rate | 1.235e+05 ticks/s | loop | >= 1e5 **met** | 1.0 -> 2.0 | `python -m bench.a` |" in text
    assert "| b | **failed** (exit 1) |" in text


def test_bench_readme_when_checked_out_then_holds_the_summary_markers_once() -> None:
    text = (ROOT / "bench" / "README.md").read_text()

    assert [text.count(marker) for marker in MARKERS] == [1, 1], "make bench writes its table between these"


def _run(name: str, finished_at: str) -> dict[str, object]:
    return {
        "benchmark": name,
        "command": f"python -m bench.{name}",
        "exit_code": 0,
        "duration_s": 1,
        "load_before": 1.0,
        "load_after": 1.0,
        "finished_at": finished_at,
    }


def _figure(name: str, value: float) -> dict[str, object]:
    return {"benchmark": name, "figure": "f", "value": value, "unit": "s", "baseline": "", "target": "", "is_met": None}


def test_merged_when_one_benchmark_rerun_then_it_replaces_its_runs_and_figures_and_is_named() -> None:
    previous = {
        "generated_at": "t0",
        "machine": "m",
        "runs": [_run("a", "t0"), {**_run("b", "t0"), "exit_code": 1}],
        "figures": [_figure("a", 1.0)],
    }
    fresh = {"generated_at": "t1", "machine": "m", "runs": [_run("b", "t1")], "figures": [_figure("b", 2.0)]}

    summary = merged(previous, fresh)

    assert [(run["benchmark"], run["exit_code"], run.get("rerun", False)) for run in summary["runs"]] == [
        ("a", 0, False),
        ("b", 0, True),
    ]
    assert [(figure["benchmark"], figure["value"]) for figure in summary["figures"]] == [("a", 1.0), ("b", 2.0)]
    header = markdown_table(summary).splitlines()[0]
    assert header == "Last `make bench`: t0 on m. Re-run alone since (`python -m bench.summary <name>`): b (t1)."
    assert "**failed**" not in markdown_table(summary)
