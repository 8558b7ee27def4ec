"""The master suite's engine: the stub relay with real stub processes, the harness
client against tiny fake harnesses, case loading, and smoke runs of the whole command
against a tiny fake master (tests/conformance/master/fake_master.py)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar
from xml.etree import ElementTree as ET

import pytest
from jsonschema import Draft202012Validator

from peepsy.conformance._transcript import TranscriptError
from peepsy.conformance.master._case import load_case
from peepsy.conformance.master._harness import Harness, HarnessError, Unsupported
from peepsy.conformance.master._hub import Channel, Hub, private_folder
from peepsy.conformance.master._wire import judge, wire_rows
from tests.conformance._cli import REPORT_SCHEMA, run_cli

T = TypeVar("T")
HERE = Path(__file__).parent
FAKE = [sys.executable, str(HERE / "fake_master.py")]
CASES = HERE / "cases"
LIMIT_S = 30.0


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, LIMIT_S))


def soon(seconds: float = 10.0) -> float:
    return time.monotonic() + seconds


async def with_stub(
    test: Callable[[Hub, Channel, asyncio.subprocess.Process], Awaitable[None]],
) -> None:
    with private_folder() as folder:
        hub = Hub(Path(folder), "t")
        await hub.start()
        process = await asyncio.create_subprocess_exec(
            *hub.argv("w1"), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            channel = await hub.incarnation("w1", 1, soon())
            assert channel is not None
            assert channel.record.pid == process.pid
            await test(hub, channel, process)
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
            await hub.close()


def kinds(channel: Channel) -> list[str]:
    return [e.kind for e in channel.record.events]


def test_stub_relays_bytes_both_ways_and_end_of_input() -> None:
    async def test(hub: Hub, channel: Channel, process: asyncio.subprocess.Process) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(b'{"type":"INIT"}\n\xff\xfe no newline')
        process.stdin.close()
        assert await channel.wait(lambda: "eof" in kinds(channel), soon())
        assert kinds(channel) == ["line", "partial", "eof"]
        assert channel.record.events[0].message == {"type": "INIT"}
        assert channel.record.events[1].data == b"\xff\xfe no newline"
        assert channel.problems[0]  # an INIT without its members is not valid
        channel.write_stdout(b"\x00raw\r\n")
        channel.write_stderr(b"to stderr\n")
        assert await process.stdout.readexactly(6) == b"\x00raw\r\n"
        channel.exit(7)
        assert await process.wait() == 7
        assert await channel.wait(lambda: channel.closed, soon())
        assert kinds(channel)[-1] == "exit"
        assert channel.record.events[-1].value == 7

    run(with_stub(test))


def test_stub_reports_sigterm_and_dies_by_it() -> None:
    async def test(hub: Hub, channel: Channel, process: asyncio.subprocess.Process) -> None:
        process.send_signal(signal.SIGTERM)
        assert await process.wait() == -signal.SIGTERM
        assert await channel.wait(lambda: channel.closed, soon())
        assert [(e.kind, e.value) for e in channel.record.events] == [
            ("signal", signal.SIGTERM),
            ("exit", -signal.SIGTERM),
        ]

    run(with_stub(test))


def test_stub_ignores_sigterm_when_told_and_sigkill_shows_as_killed() -> None:
    async def test(hub: Hub, channel: Channel, process: asyncio.subprocess.Process) -> None:
        assert await channel.ignore_sigterm(soon())
        process.send_signal(signal.SIGTERM)
        assert await channel.wait(lambda: "signal" in kinds(channel), soon())
        assert process.returncode is None
        process.kill()
        await process.wait()
        assert await channel.wait(lambda: channel.closed, soon())
        assert kinds(channel) == ["signal", "killed"]

    run(with_stub(test))


def test_stub_closes_its_stdout_and_lives_on() -> None:
    async def test(hub: Hub, channel: Channel, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        assert await channel.close_stdout(soon())
        assert await process.stdout.read() == b""
        assert process.returncode is None
        assert not channel.closed

    run(with_stub(test))


def test_stub_exits_when_the_suite_goes_away() -> None:
    async def test(hub: Hub, channel: Channel, process: asyncio.subprocess.Process) -> None:
        await hub.close()
        assert await asyncio.wait_for(process.wait(), 10) == 70

    run(with_stub(test))


# -- the harness client ------------------------------------------------------------------


def harness_script(tmp_path: Path, body: str) -> list[str]:
    """A fake harness: ``body`` handles ``cmd`` (a dict) with ``say`` in scope."""
    path = tmp_path / "h.py"
    path.write_text(
        "import json, sys, time\n"
        "def say(o):\n    sys.stdout.write(json.dumps(o) + '\\n'); sys.stdout.flush()\n"
        "for line in sys.stdin:\n    cmd = json.loads(line)\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
    )
    return [sys.executable, str(path)]


START = {"cmd": "start", "version": 1, "master": {}}
GOOD_START = (
    "if cmd['cmd'] == 'stop': break\n"
    "say({'seq': cmd['seq'], 'version': 1, 'capabilities': ['profile'],"
    " 'implementation': {'name': 'n', 'version': '1', 'language': 'py'}})\n"
)


async def talk(argv: list[str], command: dict[str, Any] = START) -> tuple[dict[str, Any], Harness]:
    harness = Harness(argv, 0.2)
    await harness.start()
    try:
        return await harness.call(command, soon()), harness
    finally:
        await harness.stop()


def test_harness_client_takes_a_valid_answer(tmp_path: Path) -> None:
    answer, harness = run(talk(harness_script(tmp_path, GOOD_START)))
    assert answer["capabilities"] == ["profile"]
    assert harness.process is not None
    assert harness.process.returncode == 0


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("say({'seq': cmd['seq'], 'version': 1})\n", "invalid response to start"),
        ("say({'seq': cmd['seq'] + 5, 'ok': True})\n", "never sent"),
        ("print('hello')\nsys.stdout.flush()\n", "not JSON"),
        ("say({'seq': cmd['seq'], 'errored': {'message': 'boom'}})\n", "boom"),
        ("sys.exit(3)\n", r"exited \(status 3\)"),
    ],
)
def test_harness_client_calls_each_fault_a_harness_error(
    tmp_path: Path, body: str, problem: str
) -> None:
    with pytest.raises(HarnessError, match=problem):
        run(talk(harness_script(tmp_path, body)))


def test_harness_client_sees_a_duplicate_answer(tmp_path: Path) -> None:
    body = "if cmd['cmd'] == 'stop': break\nsay({'seq': cmd['seq'], 'ok': True})\n" * 2

    async def test() -> None:
        harness = Harness(harness_script(tmp_path, body), 0.2)
        await harness.start()

        async def both() -> None:
            await harness.call({"cmd": "group", "name": "g"}, soon())
            await harness.call({"cmd": "group", "name": "h"}, soon())

        # Lines come in order: the duplicate is seen at the latest before the next
        # command's answer (and maybe before the first answer is taken).
        with pytest.raises(HarnessError, match="second response to seq 0"):
            await both()
        await harness.stop()

    run(test())


def test_harness_client_passes_unsupported_on(tmp_path: Path) -> None:
    body = "say({'seq': cmd['seq'], 'unsupported': 'no groups'})\n"
    with pytest.raises(Unsupported, match="no groups"):
        run(talk(harness_script(tmp_path, body), {"cmd": "group", "name": "g"}))


def test_a_harness_that_hangs_on_stop_is_terminated(tmp_path: Path) -> None:
    body = "if cmd['cmd'] == 'stop':\n    time.sleep(60)\n"

    async def test() -> int | None:
        harness = Harness(harness_script(tmp_path, body), 0.05)  # 0.25 s grace
        await harness.start()
        status = await harness.stop()
        assert harness.process is not None
        assert harness.process.returncode == -signal.SIGTERM
        return status

    assert run(test()) is None


# -- cases and the command ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ([{"spawn": "w1"}, {"child": "w1", "dance": True}], "a step has one of"),
        ([{"spawn": "w1"}, {"child": "w1", "send": {"id": {"$ref": "x"}}}], "$ref 'x'"),
        ([{"outcome": "r9"}], "no earlier step's as"),
        ([{"child": "w2", "exit": 0}], "before a spawn"),
    ],
)
def test_case_load_errors(tmp_path: Path, steps: list[dict[str, Any]], problem: str) -> None:
    head = {"check": "t.x", "requirement": ["REQ-1"], "description": "d", "role": "master"}
    path = tmp_path / "c.ndjson"
    path.write_text("\n".join(json.dumps(x) for x in [head, *steps]) + "\n")
    with pytest.raises(TranscriptError, match=problem.replace("$", r"\$")):
        load_case(path)


def master_cli(*args: str, scale: str = "4") -> subprocess.CompletedProcess[str]:
    """The command on the smoke cases. Generous budgets by default: under coverage every
    process of a run is traced, and a dozen harnesses and stubs share two busy cores.
    Only how long a step may take is scaled; what a case judges (not_before, a timeout's
    own length) is not. Runs that must fail take ``scale="2"``: their failing steps wait
    out their whole budget."""
    return run_cli(
        "master", "--no-builtin", "--cases", str(CASES), "--timeout-scale", scale, "-j", "4",
        *args, timeout=LIMIT_S * 4,
    )  # fmt: skip


def test_the_fake_master_passes_the_smoke_cases(tmp_path: Path) -> None:
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    proc = master_cli("--trace", "--json", str(report), "--junit", str(junit), "--", *FAKE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(report.read_text())
    Draft202012Validator(json.loads(REPORT_SCHEMA.read_text())).validate(data)
    verdicts = {c["check"]: c["verdict"] for c in data["checks"]}
    assert verdicts == {
        "t.req.echo": "pass",
        "t.death.fails-in-flight": "pass",
        "t.shut.sends-shutdown": "pass",
        "t.shut.escalation": "pass",
        "t.shut.stop-stops-children": "pass",
        "t.steps.child": "pass",
        "t.sup.restart": "pass",
        "t.cancel.by-caller": "pass",
        "t.policy.info": "info",  # policy: reported, never scored
        "t.group.needs": "skip",  # the fake does not claim groups
        **{r.check: "pass" for r in wire_rows()},
        "m.resp.matches-request": "untestable",  # no child here asks its master anything
    }
    assert data["implementation"]["name"] == "fake"
    assert data["summary"]["levels"]["groups"] == "not-claimed"
    assert data["summary"]["levels"]["supervision"] == "reached"
    suite = ET.fromstring(junit.read_bytes())
    assert suite.get("failures") == suite.get("errors") == "0"


@pytest.mark.parametrize(
    ("fault", "verdict", "checks", "status"),
    [
        # The smoke cases that hold a call while the child's output ends both catch it.
        ("no-fail-on-exit", "FAIL", {"t.death.fails-in-flight", "t.steps.child"}, 1),
        ("junk", "FAIL", {"m.frame.json"}, 1),
        ("restart-forever", "FAIL", {"t.sup.restart"}, 1),
        ("no-escalation", "WARN", {"t.shut.escalation"}, 0),  # a SHOULD warns
    ],
)
def test_each_broken_master_is_caught_on_its_checks(
    fault: str, verdict: str, checks: set[str], status: int
) -> None:
    proc = master_cli("--quiet", "--", *FAKE, "--fault", fault, scale="2")
    assert proc.returncode == status, proc.stdout + proc.stderr
    problems = {
        line.split()[2]
        for line in proc.stdout.splitlines()
        if line.startswith(("=== FAIL", "=== WARN", "=== HERR", "=== ERR", "=== TIME"))
    }
    assert problems == checks, proc.stdout + proc.stderr
    assert all(f"=== {verdict} {c} " in proc.stdout for c in checks)


def test_a_broken_harness_is_a_harness_error_not_a_master_failure() -> None:
    proc = master_cli("--quiet", "--", *FAKE, "--fault", "errored")
    assert proc.returncode == 1
    assert "=== HERR t.req.echo " in proc.stdout
    assert "=== FAIL" not in proc.stdout
    assert "=== N/T m.frame.json" in proc.stdout  # no child ever started: nothing to judge


def test_an_expected_failure_is_tolerated_and_a_selection_runs_only_it(tmp_path: Path) -> None:
    listed = tmp_path / "xfail.txt"
    listed.write_text("t.death.fails-in-flight  # the fake's known fault\n")
    proc = master_cli(
        "--check",
        "t.death.*",
        "--expected-failures",
        str(listed),
        "--",
        *FAKE,
        "--fault",
        "no-fail-on-exit",
        scale="2",
    )
    assert proc.returncode == 0, proc.stdout
    assert "t.req.echo" not in proc.stdout
    proc = master_cli("--level", "supervision", "--quiet", "--", *FAKE)
    assert proc.returncode == 0
    assert "t.sup.restart" not in proc.stdout  # passes: not in the summary's problems
    assert "pass 1" in proc.stdout


def test_list_names_cases_and_wire_checks() -> None:
    proc = master_cli("--list")
    assert proc.returncode == 0
    assert "t.req.echo" in proc.stdout
    assert "m.frame.json" in proc.stdout
    assert master_cli("--check", "nothing.*", "--", *FAKE).returncode == 2


def test_emit_prints_commands_and_child_script() -> None:
    proc = master_cli("--emit", "t.req.echo")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[1].startswith('harness> {"cmd": "start"')
    assert any(line.startswith("child w1:") for line in lines)
    assert lines[-1].startswith('harness> {"cmd": "stop"}')


def test_emit_prints_lone_surrogates_as_escapes() -> None:
    """The built-in echo cases carry lone surrogates (FRAME-9): printed raw they would be
    no valid UTF-8 at all, so they keep their JSON escapes."""
    proc = run_cli("master", "--emit", "m.serve.echo")
    assert proc.returncode == 0, proc.stderr
    assert '"lone": "x\\ud800y\\udc00z"' in proc.stdout
    assert "ü €🎉" in proc.stdout  # everything else stays readable


def test_an_invalid_case_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.ndjson").write_text('{"check": "t.b", "role": "master"}\n')
    proc = run_cli("master", "--no-builtin", "--cases", str(tmp_path), "--", "true")
    assert proc.returncode == 2
    assert "invalid case" in proc.stderr


def test_observe_mode_judges_the_wire_of_an_application(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent(
            """
            import json, os, subprocess
            argv = json.loads(os.environ["PEEPSY_CONFORMANCE_CHILD"])
            child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            child.stdin.write(b'{"type":"INIT","mode":"sequential"}\\n')
            child.stdin.write(b'{"type":"REQUEST","id":"a1","action":"echo","data":5}\\n')
            child.stdin.flush()
            while True:
                msg = json.loads(child.stdout.readline())
                if msg.get("type") == "RESPONSE":
                    assert msg == {"type": "RESPONSE", "id": "a1", "status": 200, "data": 5}
                    break
            child.stdin.close()
            assert child.wait() == 0
            """
        )
    )
    report = tmp_path / "o.json"
    proc = run_cli("master", "--observe", "--json", str(report), "--", sys.executable, str(app))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(report.read_text())
    assert data["observe"] is True
    assert {c["verdict"] for c in data["checks"]} <= {"pass", "untestable"}
    assert any(c["verdict"] == "pass" for c in data["checks"])


def test_a_selection_of_wire_checks_alone_is_fed_by_every_case(tmp_path: Path) -> None:
    """The wire checks judge what the master writes in the cases; selected alone they
    once judged nothing, so a master that breaks them passed."""
    report = tmp_path / "r.json"
    proc = master_cli(
        "--quiet", "--check", "m.frame.no-cr", "--json", str(report), "--", *FAKE, "--fault", "crlf"
    )
    assert proc.returncode == 1, proc.stdout
    verdicts = {c["check"]: c["verdict"] for c in json.loads(report.read_text())["checks"]}
    assert verdicts == {"m.frame.no-cr": "fail"}  # the cases that fed it are not reported


@pytest.mark.parametrize(
    ("capabilities", "verdict"),
    [([], "skip"), (["cancel"], "untestable"), (None, "untestable")],
)
def test_the_cancel_wire_check_without_cancel_claimed_is_not_claimed(
    capabilities: list[str] | None, verdict: str
) -> None:
    rows = [r for r in wire_rows() if r.check == "m.cancel.only-when-allowed"]
    (outcome,) = judge([], rows, capabilities)
    assert outcome.verdict == verdict
