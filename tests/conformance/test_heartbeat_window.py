"""``expect_heartbeats`` judges cadence, not start-up.

A worker's first line can come seconds after it is spawned on a busy machine (CI ran
eight checks' workers at once beside the test suite, and the reference worker missed
hb.cadence by one HEARTBEAT). Every other step allows for start-up until the worker
has written; a heartbeat window opened at spawn would instead count it against the
cadence. These workers start slowly on purpose (a pause before their first line stands
in for a slow start): one with the cadence INIT asks for must pass, and ones whose
cadence is too slow, or that never write, must still be caught. Load only delays them
further, which cannot turn a verdict here into the other.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from tests.conformance._cli import PYTHON, run_cli, write_transcript

#: Starts after ``PAUSE`` s, then answers 404 to every REQUEST and sends a HEARTBEAT
#: every ``EVERY`` s (the first one at once) until its input ends.
WORKER = textwrap.dedent(
    """
    import json, sys, threading, time
    PAUSE, EVERY = {pause}, {every}
    lock = threading.Lock()
    def send(m):
        with lock:
            sys.stdout.write(json.dumps(m) + "\\n")
            sys.stdout.flush()
    time.sleep(PAUSE)
    def beat():
        while True:
            send({{"type": "HEARTBEAT", "timestamp": int(time.time() * 1000)}})
            time.sleep(EVERY)
    if EVERY:
        threading.Thread(target=beat, daemon=True).start()
    for raw in sys.stdin:
        msg = json.loads(raw)
        if msg.get("type") == "REQUEST":
            send({{"type": "RESPONSE", "id": msg["id"], "status": 404,
                  "error": "No handler registered for action: " + msg["action"]}})
    """
)


def cadence(tmp_path: Path, pause: float, every: float, *args: str) -> dict[str, Any]:
    """The built-in hb.cadence check (3 HEARTBEATs within 2600 ms) on such a worker."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(pause=pause, every=every), encoding="utf-8")
    report = tmp_path / "r.json"
    proc = run_cli(
        "--only", "hb.cadence", *args, "--json", str(report), "--", PYTHON, str(script),
        cwd=tmp_path,
    )  # fmt: skip
    assert report.exists(), proc.stdout + proc.stderr
    [check] = json.loads(report.read_text(encoding="utf-8"))["checks"]
    assert isinstance(check, dict)
    return check


def test_a_slow_start_does_not_count_against_the_cadence(tmp_path: Path) -> None:
    # Beats at 2.0, 2.5 and 3.0 s: a window opened at spawn (2.6 s) would miss the third.
    check = cadence(tmp_path, pause=2.0, every=0.5)
    assert check["verdict"] == "pass", check


def test_a_slow_cadence_is_caught_after_a_slow_start(tmp_path: Path) -> None:
    # Beats at 2.0, 3.5 and 5.0 s: the window from the first line (2.0 to 4.6 s) holds
    # two. Had start-up only lengthened the window, all three would be in it.
    check = cadence(tmp_path, pause=2.0, every=1.5)
    assert check["verdict"] == "warn", check
    assert "expected 3 HEARTBEATs within 2600 ms, got 2" in check["message"], check


def test_a_worker_that_never_writes_is_caught_once_start_up_is_over(tmp_path: Path) -> None:
    case = write_transcript(
        tmp_path / "beats.ndjson",
        '{"check": "mine.beats", "requirement": ["HB-1"], "severity": "SHOULD",'
        ' "description": "d"}',
        '{"expect_heartbeats": {"count": 1, "within": 100}}',
    )
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(pause=0, every=0), encoding="utf-8")
    report = tmp_path / "r.json"
    proc = run_cli(
        "--no-builtin", "--transcripts", str(case), "--json", str(report),
        "--", PYTHON, str(script), cwd=tmp_path,
    )  # fmt: skip
    assert report.exists(), proc.stdout + proc.stderr
    checks = json.loads(report.read_text(encoding="utf-8"))["checks"]
    [check] = [c for c in checks if c["check"] == "mine.beats"]
    assert check["verdict"] == "warn", check
    assert check["message"].endswith(
        "expected 1 HEARTBEATs within 100 ms, got 0 (it wrote nothing, start-up allowed for)"
    ), check
