"""The runner as CI sees it, through the command line: a worker that dies at start-up
or mid-check, one that does not flush, any bytes in the reports, settings refused before
anything runs, checks in parallel, Ctrl-C, and a closed stdout.

Each worker here is a few lines of plain Python that does exactly one thing, so that
each test judges the runner against a known behaviour.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from jsonschema import Draft202012Validator

from peepsy.conformance._checks import GLOBAL_CHECKS
from tests.conformance._cli import PYTHON, REPORT_SCHEMA, ROOT, run_cli, write_transcript

VALIDATOR = Draft202012Validator(json.loads(REPORT_SCHEMA.read_text(encoding="utf-8")))

#: Answers every REQUEST 404, flushing each line; other behaviours by argument.
BASE = textwrap.dedent(
    """
    import json, os, sys
    def send(m):
        sys.stdout.write(json.dumps(m) + "\\n")
        sys.stdout.flush()
    def answer(msg):
        send({"type": "RESPONSE", "id": msg["id"], "status": 404,
              "error": "No handler registered for action: " + msg["action"]})
    """
)

SERVE = """
for raw in sys.stdin:
    msg = json.loads(raw)
    if msg.get("type") == "REQUEST":
        answer(msg)
"""
PASSING = (
    '{"check": "mine.passes", "requirement": ["RESP-4"], "description": "404 for no action"}',
    '{"send": {"type": "REQUEST", "id": "p1", "action": "mine.nothing"}}',
    '{"expect": {"type": "RESPONSE", "id": "p1", "status": 404}}',
)


def worker(tmp_path: Path, body: str, name: str = "worker.py") -> Path:
    path = tmp_path / name
    path.write_text(BASE + textwrap.dedent(body), encoding="utf-8")
    return path


def suite(
    tmp_path: Path, script: Path, *args: str, transcripts: Path | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], ET.Element]:
    """Runs the suite on ``script`` with JSON and JUnit reports; all three, parsed."""
    if transcripts is None:
        transcripts = write_transcript(tmp_path / "passes.ndjson", *PASSING)
    report, xml = tmp_path / "out" / "r.json", tmp_path / "out" / "junit.xml"
    proc = run_cli(
        "--no-builtin",
        "--transcripts",
        str(transcripts),
        "--json",
        str(report),
        "--junit",
        str(xml),
        *args,
        "--",
        PYTHON,
        str(script),
        cwd=tmp_path,
    )
    assert report.exists(), proc.stdout + proc.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    VALIDATOR.validate(data)
    return proc, data, ET.fromstring(xml.read_bytes())


def test_a_worker_dead_at_start_up_is_one_cause_not_a_failure_per_check(tmp_path: Path) -> None:
    script = worker(
        tmp_path,
        """
        sys.stderr.write("starting\\nfatal: no config file at /etc/w.conf\\n")
        sys.exit(3)
        """,
    )
    proc, data, xml = suite(tmp_path, script)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    # Said once, with the exit status and the stderr's end, without --trace.
    assert out.count("exited with status 3") == 1, out
    assert "=== NOT RUN: no check ran: the worker exited with status 3 at start-up" in out
    assert "      fatal: no config file at /etc/w.conf" in out
    assert "=== FAIL" not in out
    assert "[  1/" not in out
    assert "result: FAILED" in out
    assert {c["verdict"] for c in data["checks"]} == {"not-run"}
    assert all("exited with status 3" in c["message"] for c in data["checks"])
    assert data["startup"]["stderr"][-1] == "fatal: no config file at /etc/w.conf"
    assert data["summary"]["exitCode"] == 1
    assert data["passed"] is False
    # JUnit: one error for the cause; every check skipped as not-run.
    [cause] = [c for c in xml.iter("testcase") if c.attrib["name"] == "suite.worker-starts"]
    error = cause.find("error")
    assert error is not None
    assert "status 3" in error.attrib["message"]
    assert xml.attrib["errors"] == "1"
    assert xml.attrib["failures"] == "0"
    skipped = [s.attrib["type"] for s in xml.iter("skipped")]
    assert skipped
    assert set(skipped) == {"not-run"}
    assert int(xml.attrib["tests"]) == len(data["checks"]) + 1


def test_a_worker_that_dies_mid_check_is_named_with_its_exit_and_stderr(tmp_path: Path) -> None:
    script = worker(
        tmp_path,
        """
        for raw in sys.stdin:
            msg = json.loads(raw)
            if msg.get("action") == "mine.crash":
                sys.stderr.write("panic: index out of range\\n")
                sys.stderr.flush()
                os.kill(os.getpid(), 11)
            elif msg.get("type") == "REQUEST":
                answer(msg)
        """,
    )
    case = write_transcript(
        tmp_path / "crash.ndjson",
        '{"check": "mine.crashes", "requirement": ["RESP-4"], "description": "d"}',
        '{"send": {"type": "REQUEST", "id": "c1", "action": "mine.crash"}}',
        '{"expect": {"type": "RESPONSE", "id": "c1", "status": 404}}',
    )
    proc, data, xml = suite(tmp_path, script, transcripts=case)
    assert proc.returncode == 1
    assert "the worker was killed by signal SIGSEGV (11) during the check" in proc.stdout
    assert "    worker stderr (end):\n      panic: index out of range" in proc.stdout
    [check] = [c for c in data["checks"] if c["check"] == "mine.crashes"]
    assert check["workerExit"] == "was killed by signal SIGSEGV (11)"
    [case_xml] = [c for c in xml.iter("testcase") if c.attrib["name"] == "mine.crashes"]
    assert "panic: index out of range" in (case_xml.findtext("system-err") or "")


def test_answers_that_come_only_when_the_input_closes_get_the_flush_hint(tmp_path: Path) -> None:
    # A block-buffered stdout (as C's stdio gives a pipe; its own, whatever
    # PYTHONUNBUFFERED says), never flushed: the answers leave only at exit.
    script = worker(
        tmp_path,
        """
        out = os.fdopen(os.dup(1), "w", buffering=1 << 16)
        for raw in sys.stdin:
            msg = json.loads(raw)
            if msg.get("type") == "REQUEST":
                out.write(json.dumps({"type": "RESPONSE", "id": msg["id"],
                                      "status": 200, "data": msg.get("data")}) + "\\n")
        out.close()
        """,
    )
    proc, data, _ = suite(tmp_path, script, "--timeout-scale", "0.4")
    assert proc.returncode == 1, proc.stdout
    hint = "answers arrived only after its input closed: does it flush stdout after each line?"
    assert hint in proc.stdout
    assert hint in data["startup"]["problem"]
    assert {c["verdict"] for c in data["checks"]} == {"not-run"}
    # A worker that stays silent even then gets no such hint: its checks run and fail.
    silent = worker(tmp_path, "for raw in sys.stdin: pass\n", name="silent.py")
    proc, data, _ = suite(tmp_path, silent, "--timeout-scale", "0.4")
    assert "flush" not in proc.stdout
    assert data["startup"] is None
    assert {c["check"]: c["verdict"] for c in data["checks"]}["mine.passes"] == "fail"


def test_junit_is_well_formed_whatever_bytes_the_worker_prints(tmp_path: Path) -> None:
    script = worker(
        tmp_path,
        """
        sys.stderr.write("\\x1b[1;31mERROR\\x1b[0m banner\\n")
        sys.stderr.buffer.write(bytes(range(256)) + b"\\n")
        sys.stderr.flush()
        for raw in sys.stdin.buffer:
            msg = json.loads(raw)
            if msg.get("type") == "REQUEST":
                sys.stdout.buffer.write(bytes(range(256)) + b"\\n")
                sys.stdout.flush()
                answer(msg)
        """,
    )
    failing = write_transcript(
        tmp_path / "fails.ndjson",
        '{"check": "mine.fails", "requirement": ["RESP-1"], "description": "wants 200"}',
        '{"send": {"type": "REQUEST", "id": "f1", "action": "mine.nothing"}}',
        '{"expect": {"type": "RESPONSE", "id": "f1", "status": 200}}',
    )
    proc, data, xml = suite(tmp_path, script, "--trace", transcripts=failing)
    assert proc.returncode == 1
    verdicts = {c["check"]: c["verdict"] for c in data["checks"]}
    assert verdicts["stream.stdout-purity"] == "fail"
    [case] = [c for c in xml.iter("testcase") if c.attrib["name"] == "mine.fails"]
    text = case.findtext("system-err") or ""
    # ESC and NUL are written as visible escapes; nothing XML cannot hold remains.
    assert "\\x1b[1;31mERROR\\x1b[0m banner" in text
    assert "\\x00\\x01" in text
    body = ET.tostring(xml, encoding="unicode")
    assert not any(ord(ch) < 0x20 and ch not in "\t\n\r" for ch in body)


def test_settings_no_run_can_honour_exit_2_before_anything_runs(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    script = worker(tmp_path, f"open({str(marker)!r}, 'w').close()\n")
    cmd = ("--", PYTHON, str(script))
    cases = {
        ("--only", "no.such.*"): "matches no check",
        ("--only", "profile.*", "--level", "core"): "leaves only profile checks",
        ("--only", "msg.schema-valid"): "matches only checks over every run",
        ("--timeout-scale", "0"): "--timeout-scale must be a finite number above 0",
        ("--timeout-scale", "-2"): "--timeout-scale must be a finite number above 0",
        ("--timeout-scale", "nan"): "--timeout-scale must be a finite number above 0",
        ("--timeout-scale", "inf"): "--timeout-scale must be a finite number above 0",
        ("-j", "0"): "-j/--jobs must be 1 or more",
        ("--json", str(script / "r.json")): "cannot create its folder",
        ("--junit", str(tmp_path)): "is a folder",
    }
    for args, said in cases.items():
        proc = run_cli(*args, *cmd, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert said in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert not marker.exists(), args
    # --list with a selection of nothing is the same mistake.
    assert run_cli("--list", "--only", "no.such.*", cwd=tmp_path).returncode == 2


def test_missing_report_folders_are_made(tmp_path: Path) -> None:
    script = worker(tmp_path, SERVE)
    case = write_transcript(tmp_path / "p.ndjson", *PASSING)
    deep = tmp_path / "a" / "b" / "c"
    proc = run_cli(
        "--no-builtin",
        "--transcripts",
        str(case),
        "--junit",
        str(deep / "j.xml"),
        "--json",
        str(deep / "r.json"),
        "--",
        PYTHON,
        str(script),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (deep / "j.xml").is_file()
    assert (deep / "r.json").is_file()


#: Holds ("mine.hold"): writes its pid and a grandchild's to PIDS, then says so through
#: the FIFO. Rendezvous ("mine.meet"): answers once two holders have said so: it can only
#: pass when checks run at once.
RENDEZVOUS = """
    import subprocess
    PIDS, FIFO = sys.argv[1], sys.argv[2]
    for raw in sys.stdin:
        msg = json.loads(raw)
        if msg.get("type") != "REQUEST":
            continue
        if msg["action"] == "mine.hold":
            child = subprocess.Popen(["sleep", "300"])
            with open(os.path.join(PIDS, str(os.getpid())), "w") as f:
                f.write(f"{os.getpid()} {child.pid}")
            with open(FIFO, "wb") as f:
                f.write(b"x")
        elif msg["action"] == "mine.meet":
            seen = 0
            while seen < 2:
                with open(FIFO, "rb") as f:
                    seen += len(f.read())
        answer(msg)
"""


def rendezvous_cases(tmp_path: Path) -> Path:
    cases = tmp_path / "cases"
    cases.mkdir()
    for name in ("hold-a", "hold-b"):
        write_transcript(
            cases / f"{name}.ndjson",
            f'{{"check": "mine.{name}", "requirement": ["RESP-4"], "description": "d",'
            ' "timeout": 120000}',
            '{"send": {"type": "REQUEST", "id": "h", "action": "mine.hold"}}',
            '{"expect": {"type": "RESPONSE", "id": "h", "status": 404}, "within": 30000}',
            '{"wait": 100000}',
        )
    write_transcript(
        cases / "a-meet.ndjson",  # listed first; it cannot finish before the holders
        '{"check": "mine.meet", "requirement": ["RESP-4"], "description": "d"}',
        '{"send": {"type": "REQUEST", "id": "m", "action": "mine.meet"}}',
        '{"expect": {"type": "RESPONSE", "id": "m", "status": 404}, "within": 10000}',
    )
    return cases


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent that never reaps it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_ctrl_c_stops_every_worker_group_and_writes_a_partial_report(tmp_path: Path) -> None:
    pids, fifo = tmp_path / "pids", tmp_path / "fifo"
    pids.mkdir()
    os.mkfifo(fifo)
    script = worker(tmp_path, RENDEZVOUS)
    report = tmp_path / "r.json"
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "peepsy.conformance",
            "-j",
            "3",
            "--no-builtin",
            "--transcripts",
            str(rendezvous_cases(tmp_path)),
            "--json",
            str(report),
            "--",
            PYTHON,
            str(script),
            str(pids),
            str(fifo),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    # The first progress line is mine.meet's: both holders have written their pids by then.
    first = proc.stdout.readline()
    assert "PASS  mine.meet" in first, first
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, first + out + err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert "interrupted (SIGINT)" in err
    recorded = [int(p) for f in pids.iterdir() for p in f.read_text().split()]
    assert len(recorded) == 4  # two workers, each with a grandchild
    assert [p for p in recorded if alive(p)] == []
    data = json.loads(report.read_text(encoding="utf-8"))
    VALIDATOR.validate(data)
    assert data["interrupted"] is True
    assert data["summary"]["exitCode"] == 130
    verdicts = {c["check"]: c["verdict"] for c in data["checks"]}
    assert verdicts["mine.meet"] == "pass"
    assert verdicts["mine.hold-a"] == verdicts["mine.hold-b"] == "not-run"
    assert verdicts["msg.schema-valid"] == "not-run"


def test_results_keep_the_order_of_the_checks_whatever_finishes_first(tmp_path: Path) -> None:
    pids, fifo = tmp_path / "pids", tmp_path / "fifo"
    pids.mkdir()
    os.mkfifo(fifo)
    script = worker(tmp_path, RENDEZVOUS)
    cases = rendezvous_cases(tmp_path)
    for f in cases.glob("hold-*.ndjson"):  # short holds this time
        f.write_text(f.read_text().replace('{"wait": 100000}\n', ""), encoding="utf-8")
    report = tmp_path / "r.json"
    proc = run_cli(
        "-j",
        "3",
        "--no-builtin",
        "--transcripts",
        str(cases),
        "--json",
        str(report),
        "--",
        PYTHON,
        str(script),
        str(pids),
        str(fifo),
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    progress = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    total = 3 + len(GLOBAL_CHECKS)
    assert [line[1:4].strip() for line in progress] == [str(i) for i in range(1, total + 1)]
    assert all(f"/{total}]" in line for line in progress)
    listing = run_cli("--list", "--no-builtin", "--transcripts", str(cases)).stdout
    order = [line.split()[0] for line in listing.splitlines()]
    data = json.loads(report.read_text(encoding="utf-8"))
    assert [c["check"] for c in data["checks"]] == order
    # mine.meet, listed first, could only pass once both holders ran beside it: the
    # checks ran at once, and the report keeps the listed order all the same. (Which
    # progress line comes first is a race, so it is not asserted.)
    assert order[0] == "mine.meet"
    assert {c["check"]: c["verdict"] for c in data["checks"]}["mine.meet"] == "pass"
    finished = [w for line in progress for w in line.split() if w.startswith("mine.")]
    assert sorted(finished) == ["mine.hold-a", "mine.hold-b", "mine.meet"]


def test_a_closed_stdout_is_quiet_and_the_reports_still_get_written(tmp_path: Path) -> None:
    script = worker(tmp_path, SERVE)
    case = write_transcript(tmp_path / "p.ndjson", *PASSING)
    report = tmp_path / "r.json"
    command = [
        PYTHON,
        "-m",
        "peepsy.conformance",
        "--no-builtin",
        "--transcripts",
        str(case),
        "--json",
        str(report),
        "--",
        PYTHON,
        str(script),
    ]
    # Its reader has gone before the first line (as `| head -1` has after one): every
    # write to stdout meets a broken pipe, deterministically.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            command,
            stdout=write_end,
            capture_output=False,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert err == ""
    assert json.loads(report.read_text(encoding="utf-8"))["passed"] is True


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_ctrl_c_in_the_first_moments_during_the_probe(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    # Says its pid through the FIFO as it starts (the probe's worker), then stays silent.
    script = worker(
        tmp_path,
        """
        with open(sys.argv[1], "w") as f:
            f.write(str(os.getpid()))
        for raw in sys.stdin:
            pass
        """,
    )
    report = tmp_path / "r.json"
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "peepsy.conformance",
            "--no-builtin",
            "--transcripts",
            str(write_transcript(tmp_path / "p.ndjson", *PASSING)),
            "--json",
            str(report),
            "--",
            PYTHON,
            str(script),
            str(fifo),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with open(fifo, encoding="utf-8") as f:  # returns once the worker has written it
        pid = int(f.read())
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert not alive(pid)
    data = json.loads(report.read_text(encoding="utf-8"))
    VALIDATOR.validate(data)
    assert data["interrupted"] is True
    assert {c["verdict"] for c in data["checks"]} == {"not-run"}
