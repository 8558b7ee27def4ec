"""The fan-out benchmark runs every lane and writes JSON of the documented shape.

A tiny run (50 calls, one round) serves the test: nothing here asserts a speed; the
numbers come from a real run, recorded in docs/performance.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.fanout import BASELINE, LANES, light
from benchmarks.lanes import ROOT


def test_every_lane_reports_seconds_and_a_ratio_to_the_baseline(tmp_path: Path) -> None:
    out = tmp_path / "fanout.json"
    env = {k: v for k, v in os.environ.items() if k != "COVERAGE_PROCESS_CONFIG"}
    argv = ["--calls", "50", "--rounds", "1", "--json", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.fanout", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert set(result["medians"]) == set(LANES)
    assert result["medians"][BASELINE]["ratio"] == 1.0
    for name in LANES:
        assert name in done.stdout
        assert result["medians"][name]["seconds"] > 0
    assert result["meta"]["calls"] == 50


def test_the_light_function_is_what_every_lane_maps() -> None:
    assert light(41) == 42
