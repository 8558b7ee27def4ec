"""The reference master harness (conformance/masters/peepsy_harness.py): peepsy's own
Master passes every level it claims, through the suite's command line as a user runs it;
and the harness keeps the MHP contract on the commands no case sends it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
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


def test_sigterm_ends_the_harness_and_its_children(tmp_path: Path) -> None:
    """MHP: SIGTERM makes the harness exit at once; its children go with it, so none is
    left holding its stderr (the suite would wait on that pipe)."""
    pid_file = tmp_path / "child.pid"
    child = (
        "import os, sys, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "sys.stdin.read()\n"  # stays, as a child that ignores SHUTDOWN would
        "time.sleep(60)\n"
    )
    commands = [
        {"cmd": "start", "seq": 0, "version": 1},
        {"cmd": "spawn", "seq": 1, "name": "w1", "argv": [sys.executable, "-c", child]},
    ]
    with subprocess.Popen(
        [sys.executable, str(HARNESS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as harness:
        try:
            assert harness.stdin is not None
            assert harness.stdout is not None
            harness.stdin.write("".join(json.dumps(c) + "\n" for c in commands))
            harness.stdin.flush()
            answers = [json.loads(harness.stdout.readline()) for _ in commands]
            assert answers[1] == {"seq": 1, "ok": True}
            until(pid_file.exists)
            pid = int(pid_file.read_text())
            harness.terminate()
            assert harness.wait(timeout=30) != 0
            until(lambda: not _alive(pid))
        finally:
            harness.kill()
            if pid_file.exists() and _alive(pid := int(pid_file.read_text())):
                os.kill(pid, signal.SIGKILL)  # a child the harness left: not ours to keep


def until(predicate: Callable[[], bool], limit: float = 30.0) -> None:
    """Poll ``predicate`` until it holds; fail after ``limit`` seconds (a bound for a
    hang, not a timing check)."""
    end = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < end, "condition not reached in time"
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    """Whether the process runs: a killed child whose new parent has not reaped it yet
    is a zombie, and gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
