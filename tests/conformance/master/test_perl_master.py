"""The Perl master (conformance/examples/master-perl), written from the docs alone:
clean at every level it claims, also when its harness answers ``spawn`` late; each of
its faults caught on its check. Runs through the command line, as its author did."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HARNESS = ROOT / "conformance" / "examples" / "master-perl" / "harness.pl"
TIMEOUT_S = 300

pytestmark = pytest.mark.skipif(shutil.which("perl") is None, reason="needs perl")


def run(tmp_path: Path, *args: str, **env: str) -> dict[str, str]:
    report = tmp_path / "r.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "peepsy.conformance", "master", "--quiet",
            "--timeout-scale", "3", "--json", str(report), *args, "--", "perl", str(HARNESS),
        ],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
        timeout=TIMEOUT_S, check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    return {c["check"]: c["verdict"] for c in data["checks"]} | {
        f"level:{k}": v for k, v in data["summary"]["levels"].items()
    }


def test_it_reaches_every_level_it_claims_even_answering_spawn_late(tmp_path: Path) -> None:
    verdicts = run(tmp_path, PEEPSY_EXAMPLE_SPAWN_DELAY="300")
    assert {verdicts[f"level:{level}"] for level in ("wire", "core", "profile")} == {"reached"}
    bad = {c: v for c, v in verdicts.items() if v not in ("pass", "skip", "reached", "not-claimed")}
    assert bad == {}


@pytest.mark.parametrize(
    ("fault", "check", "verdict", "feeder"),
    [
        ("no-init", "m.init.first-once", "fail", "m.req.echo"),
        # Two REQUESTs out at once: the late answer of a timed-out call is still owed
        # (the same id then also hands that late answer to the next call).
        ("reuse-id", "m.id.unique-outstanding", "fail", "m.req.timeout-enforced"),
        ("cycle-ids", "m.id.not-reused", "warn", "m.req.echo"),
        ("no-timeout", "m.req.timeout-enforced", "fail", None),
        ("late-answer", "m.req.unmatched-ignored", "fail", None),
    ],
)
def test_each_fault_is_caught_on_its_check(
    tmp_path: Path, fault: str, check: str, verdict: str, feeder: str | None
) -> None:
    # A wire check is judged over the cases run with it: its feeder gives it traffic
    # (m.req.echo: four calls in a row, which must still pass).
    verdicts = run(tmp_path, "--check", check, *filter(None, [feeder]), PEEPSY_EXAMPLE_FAULT=fault)
    assert verdicts[check] == verdict
    if feeder == "m.req.echo":
        assert verdicts[feeder] == "pass"
