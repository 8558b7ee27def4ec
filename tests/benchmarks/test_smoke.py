"""The benchmark runs every lane and writes JSON of the documented shape.

One short run (``--quick``, a few hundredths of a second per measurement) serves all the
tests. Nothing here asserts a speed: timing claims come from a real run, recorded in
docs/performance.md, never from tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.lanes import LANES, ROOT
from benchmarks.report import TARGETS
from benchmarks.run import QUICK_SWEEP

POINT_KEYS = {"rate", "p50_us", "p99_us", "count", "seconds", "mb_per_s"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench")
    argv = ["--quick", "--seconds", "0.02", "--memory", "300"]
    argv += ["--json", str(out / "bench.json"), "--plot", str(out / "bench.png")]
    # Without coverage in the lanes (pytest's coverage follows subprocesses through this
    # variable): traced, a lane runs several times slower and adds nothing to the report.
    env = {k: v for k, v in os.environ.items() if k != "COVERAGE_PROCESS_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Targets (issue 9)" in done.stdout
    return json.loads((out / "bench.json").read_text()), out / "bench.png"


@pytest.mark.parametrize("lane", LANES, ids=[lane.name for lane in LANES])
def test_every_lane_reports_each_window_and_payload(
    run: tuple[dict[str, Any], Path], lane: Any
) -> None:
    if (why := lane.missing()) is not None:
        pytest.skip(why)
    result, _ = run
    for layout in result["layouts"]:
        got = result["rounds"][0]["layouts"][layout["id"]][lane.name]
        assert "error" not in got
        windows = {"1", "64", "512"} if lane.windows else set()
        payloads = {str(size) for size in QUICK_SWEEP} if lane.sweep else set()
        assert set(got["windows"]) == windows
        assert set(got["payloads"]) == payloads
        for point in [*got["windows"].values(), *got["payloads"].values()]:
            assert set(point) >= POINT_KEYS
            assert point["count"] >= 1  # it ran; how fast is not a test's business
        median = result["median"]["layouts"][layout["id"]][lane.name]
        assert set(median["windows"]) == windows
        assert set(median["payloads"]) == payloads
    assert lane.name in result["lanes"]
    if lane.memory:
        held = result["rounds"][0]["memory"][lane.name]
        assert held["in_flight"] == 300
        assert isinstance(held["kb_per_request"], float)


def test_every_target_is_reported_met_or_not(run: tuple[dict[str, Any], Path]) -> None:
    result, _ = run
    reported = {t["id"] for t in result["targets"]}
    assert reported == {t.id for t in TARGETS}
    for target in result["targets"]:
        assert target["met"] in (True, False, None)
        assert len(target["rounds"]) == result["meta"]["rounds"] == 1


def test_the_run_records_its_conditions(run: tuple[dict[str, Any], Path]) -> None:
    meta = run[0]["meta"]
    assert len(meta["load_before"]) == len(meta["load_after"]) == 3
    assert meta["pinning"].startswith("taskset")
    assert "json" in meta["codec_us_per_round_trip"]


def test_the_plot_is_a_png(run: tuple[dict[str, Any], Path]) -> None:
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("needs matplotlib (the bench extra)")
    assert run[1].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_the_soak_samples_memory_and_judges_its_growth() -> None:
    """A small soak: ten samples, a growth line, and the exit status the limit gives
    (a limit below zero cannot be met, so the same run must then fail)."""
    env = {k: v for k, v in os.environ.items() if k != "COVERAGE_PROCESS_CONFIG"}
    argv = [sys.executable, "-m", "benchmarks.soak", "--requests", "2000", "--window", "16"]
    argv += ["--timeouts", "300000"]
    ok = subprocess.run(
        argv, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert lines[0] == "timeout 300000 ms, 16 in flight"
    assert sum("answered   master RSS" in line for line in lines) == 10
    assert "growth from the first sample to the last" in lines[-1]
    strict = subprocess.run(
        [*argv, "--limit-mb", "-1"],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert strict.returncode == 1
