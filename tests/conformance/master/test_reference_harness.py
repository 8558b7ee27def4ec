"""The reference master harness (conformance/masters/peepsy_harness.py): peepsy's own
Master passes every level it claims, through the suite's command line as a user runs it;
and the harness keeps the MHP contract on the commands no case sends it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conformance._cli import ROOT, run_cli

HARNESS = ROOT / "conformance" / "masters" / "peepsy_harness.py"
CASES = ROOT / "conformance" / "master"
CLAIMED = ["profile", "supervision", "groups", "retry", "cancel", "legacy", "events"]
#: A bound for a hung run, not a timing check: the run takes well under a minute.
RUN_LIMIT_S = 300


def test_peepsy_master_reaches_every_level(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    done = run_cli(
        "master",
        "--json",
        str(report_path),
        "--",
        sys.executable,
        str(HARNESS),
        timeout=RUN_LIMIT_S,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["implementation"]["name"] == "peepsy"
    assert report["capabilities"] == CLAIMED
    assert set(report["summary"]["levels"].values()) == {"reached"}
    verdicts = {c["check"]: c["verdict"] for c in report["checks"]}
    # Nothing failed, warned, errored, timed out or was skipped: every check judged.
    assert {c: v for c, v in verdicts.items() if v not in ("pass", "info")} == {}
    assert verdicts["m.group.round-robin"] == "info"  # policy: reported, not scored
    built_in = {_header(path)["check"] for path in CASES.rglob("*.ndjson")}
    assert built_in <= set(verdicts)
    assert any(check.startswith("m.frame.") for check in set(verdicts) - built_in)


def _header(path: Path) -> dict[str, Any]:
    first: dict[str, Any] = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    return first


def test_harness_answers_what_it_cannot_do() -> None:
    """Commands the cases never send: each still gets its one response, and ``stop``
    ends the harness with status 0."""
    commands = [
        {"cmd": "events", "seq": 1},  # before start: the harness cannot carry it out
        {"cmd": "start", "seq": 2, "version": 2},
        {"cmd": "start", "seq": 3, "version": 1, "master": {"noSuchOption": 1}},
        {"cmd": "start", "seq": 4, "version": 1, "master": {"timeout": 1000}},
        {"cmd": "no-such-command", "seq": 5},
        {"cmd": "request", "seq": 6, "target": "nobody", "action": "echo"},
        {"cmd": "cancel", "seq": 7, "request": 6},
        {"cmd": "shutdown", "seq": 8, "target": "nobody"},
        {"cmd": "events", "seq": 9},
        {"cmd": "spawn", "seq": 10, "name": "bad", "argv": []},
    ]
    lines = "".join(json.dumps(c) + "\n" for c in commands)
    lines += "\n" + "not json\n" + "[1]\n" + '{"cmd": "events"}\n' + '{"cmd": "stop"}\n'
    done = subprocess.run(
        [sys.executable, str(HARNESS)],
        input=lines,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answers = {a["seq"]: a for a in map(json.loads, done.stdout.splitlines())}
    assert sorted(answers) == list(range(1, 11))
    assert "errored" in answers[1]
    assert "MHP version 1" in answers[2]["unsupported"]
    assert "noSuchOption" in answers[3]["unsupported"]
    assert answers[4]["capabilities"] == CLAIMED
    assert "no-such-command" in answers[5]["unsupported"]
    assert answers[6]["outcome"]["kind"] == "notFound"
    assert answers[7] == {"seq": 7, "ok": True}  # the call had settled: nothing to give up
    assert answers[8] == {"seq": 8, "ok": True}  # no such child: nothing left running
    assert answers[9] == {"seq": 9, "events": []}
    assert "ValueError" in answers[10]["errored"]["message"]
    assert "not JSON" in done.stderr
