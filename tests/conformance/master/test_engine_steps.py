"""Each way a master case's step can come out, one case at a time against the fake
master (tests/conformance/master/fake_master.py), and the suite's own edges: a harness
that cannot start, a case over its budget, observe mode's time limit."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, cast

import pytest

from peepsy.conformance._transcript import TranscriptError
from peepsy.conformance.master._case import load_case, load_cases
from peepsy.conformance.master._harness import Harness
from peepsy.conformance.master._hub import Hub
from peepsy.conformance.master._player import Player
from tests.conformance._cli import run_cli
from tests.conformance.master.test_engine import FAKE, LIMIT_S, run

HEAD = {"check": "t.one", "requirement": ["MASTER-1"], "description": "d", "role": "master"}
INIT = {"type": "INIT"}
ECHO = {"do": {"cmd": "request", "target": "w1", "action": "echo", "timeout": 60000}, "as": "r"}


def write_case(folder: Path, steps: list[dict[str, Any]], **head: Any) -> Path:
    path = folder / "case.ndjson"
    path.write_text("\n".join(json.dumps(x) for x in [{**HEAD, **head}, *steps]) + "\n")
    return path


def verdict_of(tmp_path: Path, steps: list[dict[str, Any]], **head: Any) -> tuple[str, str]:
    write_case(tmp_path, steps, **head)
    report = tmp_path / "r.json"
    proc = run_cli(
        "master", "--no-builtin", "--cases", str(tmp_path), "--check", "t.*",
        "--timeout-scale", "4", "--json", str(report), "--", *FAKE,
        timeout=LIMIT_S * 4,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    (check,) = json.loads(report.read_text())["checks"]
    return check["verdict"], check["message"]


@pytest.mark.parametrize(
    ("steps", "head", "verdict", "message"),
    [
        # The outcome is not the one the case wants.
        (
            [
                {"spawn": "w1"},
                ECHO,
                {"child": "w1", "exit": 0},
                {"outcome": "r", "is": {"kind": "ok"}},
            ],
            {},
            "fail",
            "does not match",
        ),
        # A SHOULD that does not hold warns.
        (
            [
                {"spawn": "w1"},
                ECHO,
                {"child": "w1", "exit": 0},
                {"outcome": "r", "is": {"kind": "ok"}},
            ],
            {"severity": "SHOULD"},
            "warn",
            "does not match",
        ),
        # An outcome that comes before not_before.
        (
            [
                {"spawn": "w1"},
                ECHO,
                {"child": "w1", "exit": 0},
                {"outcome": "r", "is": {"kind": "exited"}, "not_before": 60000},
            ],
            {},
            "fail",
            "before 60000 ms",
        ),
        # no_outcome when there is one.
        (
            [
                {"spawn": "w1"},
                ECHO,
                {"child": "w1", "exit": 0},
                {"outcome": "r"},
                {"no_outcome": "r"},
            ],
            {},
            "fail",
            "has an outcome already",
        ),
        # The child ends before the line the case waits for.
        (
            [
                {"spawn": "w1"},
                {"child": "w1", "exit": 0},
                {"child": "w1", "expect": {"type": "REQUEST"}},
            ],
            {},
            "fail",
            "the child ended first",
        ),
        # A line where silence was expected.
        (
            [{"spawn": "w1"}, ECHO, {"child": "w1", "expect_silence": 300}],
            {},
            "fail",
            "while it expected silence",
        ),
        # Not restarted, not killed, not signalled, not alive.
        (
            [
                {"spawn": "w1"},
                {"child": "w1", "exit": 0},
                {"child": "w1", "expect_respawn": True, "within": 300},
            ],
            {},
            "fail",
            "was not restarted",
        ),
        (
            [{"spawn": "w1"}, {"child": "w1", "expect_killed": True, "within": 300}],
            {},
            "fail",
            "death by SIGKILL did not come",
        ),
        (
            [{"spawn": "w1"}, {"child": "w1", "exit": 0}, {"child": "w1", "expect_alive": 100}],
            {},
            "fail",
            "was not left alive",
        ),
        # A harness that says a feature is unsupported: skipped with its reason.
        (
            [{"spawn": "w1"}, {"do": {"cmd": "events"}, "as": "e"}, {"outcome": "e"}],
            {},
            "skip",
            "unsupported: not in this fake",
        ),
        # The case's budget runs out.
        (
            [{"spawn": "w1"}, {"child": "w1", "expect_silence": 10000}],
            {"timeout": 500},
            "timeout",
            "did not finish within 500 ms, waiting at line 3 (expect_silence)",
        ),
    ],
)
def test_a_step_that_does_not_hold(
    tmp_path: Path, steps: list[dict[str, Any]], head: dict[str, Any], verdict: str, message: str
) -> None:
    got, why = verdict_of(tmp_path, steps, **head)
    assert got == verdict
    assert message in why


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (["[1]"], "a step is a JSON object"),
        (['{"stop": true, "no_outcome": "r"}'], "this one has no_outcome, stop"),
        (['{"spawn": "w1"}', json.dumps(ECHO), json.dumps(ECHO)], "as 'r' is given twice"),
        (['{"do": {"cmd": "cancel", "request": "nope"}}'], "cancel names 'nope'"),
        (['{"spawn": "w1"}', '{"child": "w1", "expect": {"$typo": 1}}'], "unknown matcher"),
        (["{not json"], "not JSON"),
    ],
)
def test_more_case_load_errors(tmp_path: Path, lines: list[str], problem: str) -> None:
    path = tmp_path / "c.ndjson"
    path.write_text("\n".join([json.dumps(HEAD), *lines]) + "\n")
    with pytest.raises(TranscriptError, match=problem):
        load_case(path)


def test_empty_files_missing_folders_and_twice_used_ids(tmp_path: Path) -> None:
    (tmp_path / "empty.ndjson").write_text("\n")
    with pytest.raises(TranscriptError, match="empty case"):
        load_case(tmp_path / "empty.ndjson")
    with pytest.raises(TranscriptError, match="cannot read"):
        load_case(tmp_path / "none.ndjson")
    with pytest.raises(TranscriptError, match="no such file"):
        load_cases([tmp_path / "none"])
    (tmp_path / "empty.ndjson").unlink()
    for name in ("a", "b"):
        (tmp_path / f"{name}.ndjson").write_text(json.dumps(HEAD) + "\n")
    with pytest.raises(TranscriptError, match="is also in"):
        load_cases([tmp_path])
    assert [c.check for c in load_cases([tmp_path / "a.ndjson"])] == ["t.one"]


def test_a_harness_that_cannot_start_is_one_startup_problem(tmp_path: Path) -> None:
    write_case(tmp_path, [{"spawn": "w1"}])
    report = tmp_path / "r.json"
    proc = run_cli(
        "master", "--no-builtin", "--cases", str(tmp_path), "--json", str(report),
        "--", str(tmp_path / "no-such-harness"),
    )  # fmt: skip
    assert proc.returncode == 1
    assert "NOT RUN: no check ran: the harness cannot be started" in proc.stdout
    data = json.loads(report.read_text())
    assert {c["verdict"] for c in data["checks"]} == {"not-run"}


def test_a_harness_that_does_not_answer_start_is_one_startup_problem(tmp_path: Path) -> None:
    write_case(tmp_path, [{"spawn": "w1"}])
    harness = tmp_path / "h.py"
    harness.write_text("import sys\nsys.stderr.write('no luck\\n')\n")
    proc = run_cli(
        "master", "--no-builtin", "--cases", str(tmp_path), "--", sys.executable, str(harness)
    )
    assert proc.returncode == 1
    assert "the harness did not answer start" in proc.stdout
    assert "no luck" in proc.stdout


def test_command_line_mistakes_exit_2(tmp_path: Path) -> None:
    write_case(tmp_path, [{"spawn": "w1"}])
    base = ("master", "--no-builtin", "--cases", str(tmp_path))
    assert run_cli(*base).returncode == 2  # no harness command
    emitted = run_cli(*base, "--emit", "t.nothing")
    assert emitted.returncode == 2
    assert "no case is called" in emitted.stderr
    assert run_cli(*base, "--json", str(tmp_path), "--", "true").returncode == 2  # a folder


def test_observe_mode_answers_plays_and_limits_time(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent(
            """
            import json, os, subprocess, time
            argv = json.loads(os.environ["PEEPSY_CONFORMANCE_CHILD"])
            child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            def send(line):
                child.stdin.write(line)
                child.stdin.flush()
            send(b'{"type":"INIT","mode":"sequential","heartbeatInterval":50}\\n')
            send(b'not json\\n')
            send(b'{"type":"REQUEST","request":{"id":"a1","action":"other"}}\\n')
            send(b'{"type":"REQUEST","id":7,"action":"echo"}\\n')
            seen = set()
            while seen != {"READY", "HEARTBEAT", "RESPONSE"}:
                msg = json.loads(child.stdout.readline())
                seen.add(msg["type"])
                if msg["type"] == "RESPONSE":
                    assert msg["status"] == 404 and msg["id"] == "a1", msg
            send(b'{"type":"SHUTDOWN"}\\n')
            assert child.wait() == 0
            time.sleep(60)  # outlives --observe-seconds: the suite stops it
            """
        )
    )
    report = tmp_path / "o.json"
    proc = run_cli(
        "master", "--observe", "--observe-seconds", "5", "--json", str(report),
        "--", sys.executable, str(app),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert report.exists(), proc.stdout + proc.stderr
    verdicts = {c["check"]: c["verdict"] for c in json.loads(report.read_text())["checks"]}
    assert verdicts["m.frame.json"] == "fail"  # its "not json" line
    assert verdicts["m.msg.schema-valid"] == "fail"  # the request with a number for an id
    missing = run_cli("master", "--observe", "--", str(tmp_path / "no-such-app"))
    assert missing.returncode == 1
    assert "the application cannot be started" in missing.stdout


def test_ctrl_c_stops_the_run_and_its_harnesses(tmp_path: Path) -> None:
    write_case(tmp_path, [{"spawn": "w1"}])
    marker = tmp_path / "spawned"
    harness = tmp_path / "h.py"
    harness.write_text(
        textwrap.dedent(
            f"""
            import json, os, sys
            for line in sys.stdin:
                cmd = json.loads(line)
                if cmd["cmd"] == "start":
                    impl = {{"name": "n", "version": "1", "language": "py"}}
                    print(json.dumps({{"seq": cmd["seq"], "version": 1,
                                      "implementation": impl, "capabilities": []}}), flush=True)
                elif cmd["cmd"] == "spawn":  # says ok, starts nothing: the suite waits
                    print(json.dumps({{"seq": cmd["seq"], "ok": True}}), flush=True)
                    open({str(marker)!r} + "." + str(os.getpid()), "w").close()
                    os.rename({str(marker)!r} + "." + str(os.getpid()), {str(marker)!r})
            """
        )
    )
    suite = subprocess.Popen(
        [sys.executable, "-m", "peepsy.conformance", "master", "--no-builtin", "--cases",
         str(tmp_path), "--", sys.executable, str(harness)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + LIMIT_S
        while not marker.exists():  # polled with a generous bound, as tests/master's until
            assert time.monotonic() < deadline, "the case never spawned"
            time.sleep(0.01)
        suite.send_signal(signal.SIGINT)
        _, err = suite.communicate(timeout=LIMIT_S)
    finally:
        suite.kill()
    assert suite.returncode == 130
    assert "interrupted (SIGINT)" in err


def test_a_spawn_answered_after_its_stub_connected_is_played(tmp_path: Path) -> None:
    """MHP lets a harness answer ``spawn`` whenever the child has been started; a slow
    harness answers after the stub has already connected. That incarnation is the one
    the case plays (it was once taken for a first and waited for a second one)."""
    case = load_case(write_case(tmp_path, [{"spawn": "w1"}, {"child": "w1", "expect": INIT}]))
    started: list[asyncio.subprocess.Process] = []

    async def play() -> None:
        hub = Hub(tmp_path, case.check)
        await hub.start()

        class AnswersLate:
            async def call(self, command: dict[str, Any], deadline: float) -> dict[str, Any]:
                proc = await asyncio.create_subprocess_exec(
                    *command["argv"], stdin=asyncio.subprocess.PIPE
                )
                started.append(proc)
                assert proc.stdin is not None
                proc.stdin.write(b'{"type":"INIT","mode":"concurrent"}\n')
                # The order under test, made certain: the answer only once it connected.
                assert await hub.incarnation("w1", 1, deadline) is not None
                return {"seq": 1, "ok": True}

        try:
            await Player(case, cast(Harness, AnswersLate()), hub, 1.0).play()
        finally:
            await hub.close()
            for proc in started:
                await proc.wait()  # the stub exits when the hub closes its socket

    run(play())
    assert len(started) == 1
