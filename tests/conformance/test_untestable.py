"""A check with nothing to judge is ``untestable``, never a pass; cases that cannot be sent
on a channel are not applicable there; a transcript can add members to the suite's INIT.

The worker here is a few lines of plain Python whose behaviour each test chooses, so that
the runner's verdicts are judged against a worker that does exactly one thing.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from tests.conformance._cli import PYTHON, run_cli, write_transcript

#: Answers every REQUEST 404 (unified shape); READY and HEARTBEAT as its arguments say.
WORKER = textwrap.dedent(
    """
    import json, sys
    ready = "--ready" in sys.argv
    beat = "--beat" in sys.argv
    for raw in sys.stdin.buffer:
        msg = json.loads(raw)
        out = []
        if msg.get("type") == "INIT":
            if ready:
                out.append({"type": "READY", "pid": 1, **{k: v for k, v in msg.items()
                            if k == "maxConcurrency"}})
            if beat:
                out.append({"type": "HEARTBEAT", "pid": 1, "timestamp": 1})
        elif msg.get("type") == "REQUEST":
            out.append({"type": "RESPONSE", "id": msg["id"], "status": 404,
                        "error": "No handler registered for action: " + msg["action"]})
        for m in out:
            sys.stdout.write(json.dumps(m) + "\\n")
        sys.stdout.flush()
    """
)


def run(
    tmp_path: Path, transcript: list[str], *worker_args: str, extra: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER, encoding="utf-8")
    case = write_transcript(tmp_path / "case.ndjson", *transcript)
    report = tmp_path / "report.json"
    proc = run_cli(
        "--quiet",
        "--no-builtin",
        "--level",
        "core",
        "--only",
        "mine.*",
        "--transcripts",
        str(case),
        "--json",
        str(report),
        *extra,
        "--",
        PYTHON,
        str(worker),
        *worker_args,
    )
    assert report.exists(), proc.stdout + proc.stderr
    checks = json.loads(report.read_text(encoding="utf-8"))["checks"]
    return proc, {c["check"]: c for c in checks}


HEADER = '{"check": "mine.case", "requirement": ["HB-4"], "description": "d"'


def test_silence_with_a_reason_is_untestable_not_a_failure(tmp_path: Path) -> None:
    steps = [
        HEADER + "}",
        '{"send": {"type": "SHUTDOWN"}}',
        '{"expect": {"type": "RESPONSE"}, "within": 300, "untestable_if_silent": "no answer"}',
    ]
    proc, checks = run(tmp_path, steps)
    assert checks["mine.case"]["verdict"] == "untestable", proc.stdout
    assert "no answer" in checks["mine.case"]["message"]
    assert proc.returncode == 0, proc.stdout
    # Without the reason, the same silence fails.
    steps[2] = '{"expect": {"type": "RESPONSE"}, "within": 300}'
    proc, checks = run(tmp_path, steps)
    assert checks["mine.case"]["verdict"] == "fail"
    assert proc.returncode == 1


def test_heartbeats_from_a_worker_that_never_sends_one_are_untestable(tmp_path: Path) -> None:
    steps = [
        HEADER + "}",
        '{"expect_heartbeats": {"count": 1, "within": 300}, "untestable_if_none": "no heartbeats"}',
    ]
    _, checks = run(tmp_path, steps)
    assert checks["mine.case"]["verdict"] == "untestable"
    # A worker that sent one, but not enough of them, fails the same step.
    steps[1] = (
        '{"expect_heartbeats": {"count": 2, "within": 300}, "untestable_if_none": "no heartbeats"}'
    )
    _, checks = run(tmp_path, steps, "--beat")
    assert checks["mine.case"]["verdict"] == "fail"


def test_init_members_from_the_header_and_expect_ready(tmp_path: Path) -> None:
    steps = [
        HEADER + ', "init": {"maxConcurrency": 1}}',
        '{"expect_ready": {"maxConcurrency": 1}, "within": 2000,'
        ' "untestable_if_missing": "no cap announced"}',
        '{"send": {"type": "REQUEST", "id": "a", "action": "x"}}',
        '{"expect": {"type": "RESPONSE", "id": "a", "status": 404}}',
    ]
    proc, checks = run(tmp_path, steps, "--ready")
    assert checks["mine.case"]["verdict"] == "pass", proc.stdout
    _, checks = run(tmp_path, steps)
    assert checks["mine.case"]["verdict"] == "untestable"
    assert "no cap announced" in checks["mine.case"]["message"]
    # Without a reason a missing READY fails.
    steps[1] = '{"expect_ready": {"maxConcurrency": 1}, "within": 300}'
    _, checks = run(tmp_path, steps)
    assert checks["mine.case"]["verdict"] == "fail"


def test_a_case_for_stdio_only_is_not_applicable_over_node_ipc(tmp_path: Path) -> None:
    steps = [HEADER + ', "transports": ["stdio"]}', '{"send_raw": "not json"}']
    _, checks = run(tmp_path, steps, extra=("--transport", "node-ipc"))
    assert checks["mine.case"]["verdict"] == "skip"
    assert "not applicable over node-ipc" in checks["mine.case"]["message"]
