"""The tap and the generalizer: a real master, the tap, the reference worker; and
recordings made up to show each rule of the generalizer."""

from __future__ import annotations

import asyncio
import datetime
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from peepsy import Master, RemoteError
from peepsy.conformance.__main__ import main
from peepsy.conformance._record import display_command, generalize, validate_records
from peepsy.conformance._transcript import load_transcript
from tests.conformance._cli import PYTHON, REFERENCE, ROOT, WORKER, run_cli

TAP = [PYTHON, "-m", "peepsy.conformance", "record"]


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


async def master_session(output: Path, *tap_options: str) -> list[Any]:
    """The reference master, through the tap, to the reference worker: an echo, a
    callMaster the master answers, a failure, and a burst answered out of order."""
    async with Master(timeout=5000) as master:

        @master.handler("tests.ping")
        def ping(data: Any) -> Any:
            return {"pong": data}

        await master.spawn_child(
            "w",
            [*TAP, "-o", str(output), *tap_options, "--", PYTHON, str(WORKER)],
            auto_restart=False,
        )
        replies: list[Any] = [
            (await master.request("echo", "w", {"$type": "integer", "n": [1, None]})).data,
            (await master.request("callMaster", "w", {"action": "tests.ping", "data": 7})).data,
        ]
        with pytest.raises(RemoteError, match="on purpose"):
            await master.request("fail", "w", "on purpose")
        burst = await asyncio.gather(
            master.request("sleep", "w", 200),
            master.request("echo", "w", "A", priority=0),
            master.request("echo", "w", "B", priority=5),
        )
        replies += [r.data for r in burst]
    return replies


def timeless(step: dict[str, Any]) -> dict[str, Any]:
    """A transcript step without the budgets taken from the delays seen in its run."""
    out = {k: v for k, v in step.items() if k != "within"}
    if "expect_exit" in out:
        out["expect_exit"] = {k: v for k, v in out["expect_exit"].items() if k != "within"}
    return out


def test_master_tap_worker_recorded_generalized_and_replayed(tmp_path: Path) -> None:
    raw, direct = tmp_path / "session.raw.jsonl", tmp_path / "direct.ndjson"
    replies = asyncio.run(master_session(raw, "--raw"))
    # The tap changes nothing for the master and the worker.
    assert replies == [{"$type": "integer", "n": [1, None]}, {"pong": 7}, 200, "A", "B"]
    assert asyncio.run(master_session(direct, "--check", "tests.direct")) == replies

    events = lines_of(raw)
    assert events[0]["start"]["argv"] == [PYTHON, str(WORKER)]
    assert events[-1]["exit"] == 0
    kinds = [
        (e["dir"], json.loads(e["line"])["type"]) for e in events if "line" in e and "dir" in e
    ]
    assert kinds[0] == ("to-worker", "INIT")
    assert ("from-worker", "READY") in kinds
    assert ("from-worker", "HEARTBEAT") in kinds
    assert kinds[-1] == ("to-worker", "SHUTDOWN")
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)

    made = tmp_path / "made.ndjson"
    run = run_cli("generalize", str(raw), "-o", str(made), "--check", "tests.recorded")
    assert run.returncode == 0, run.stderr
    records = lines_of(made)
    header, steps = records[0], records[1:]
    assert header["check"] == "tests.recorded"
    assert header["mode"] == "sequential"  # the master had requests out at once
    assert "init" not in header  # the recording opened with INIT
    assert "peepsy.conformance record" in header["recorded"]
    text = made.read_text(encoding="utf-8")
    assert "HEARTBEAT" not in text
    assert "READY" not in text
    assert steps[0] == {
        "send": {
            "type": "REQUEST",
            "id": "m1",
            "action": "echo",
            "data": {"$type": "integer", "n": [1, None]},
            "timeout": 5000,
        }
    }
    # A step gets a "within" only when the answer took long enough that the default
    # budget might not cover it (five times the delay seen): on a busy machine the first
    # answer can; the rule itself is tested in test_generalize*.
    within = steps[1].get("within")
    assert within is None or (isinstance(within, int) and within > 2000), within
    assert timeless(steps[1]) == {
        "expect": {
            "type": "RESPONSE",
            "id": "m1",
            "status": 200,
            "data": {"$literal": {"$type": "integer", "n": [1, None]}},
        }
    }
    answer = steps[3]["answer"]
    assert answer["request"]["id"] == {"$capture": "req1"}
    assert answer["request"]["action"] == "tests.ping"
    assert answer["response"]["id"] == {"$ref": "req1"}
    assert answer["response"]["data"] == {"pong": 7}
    [unordered] = [s for s in steps if "expect_unordered" in s]
    assert [e["data"] for e in unordered["expect_unordered"]] == [200, "B", "A"]
    assert steps[-2] == {"send": {"type": "SHUTDOWN", "timeout": 30000}}
    assert steps[-1]["expect_exit"]["within"] >= 5000  # more if the exit was slow to come
    assert timeless(steps[-1]) == {"expect_exit": {"code": 0}}

    # The tap's own transcript says the same as the generalized raw recording.
    direct_records = lines_of(direct)
    assert direct_records[0]["check"] == "tests.direct"
    assert [timeless(r) for r in direct_records[1:]] == [timeless(s) for s in steps]

    # And the transcripts pass against the worker they were recorded from.
    for path in (made, direct):
        load_transcript(path)
    run = run_cli(
        "--no-builtin", "--transcripts", str(made), "--transcripts", str(direct), *REFERENCE
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS  tests.recorded" in run.stdout
    assert "PASS  tests.direct" in run.stdout


ODD_WORKER = r"""
import os, sys
data = sys.stdin.buffer.read()
sys.stderr.write("worker stderr\n")
os.write(1, b'{"type":"RESPONSE","id":"x","status":200}\r\n\xff\xfe raw\n' + data + b"no end")
sys.exit(3)
"""


def test_the_tap_relays_bytes_exactly(tmp_path: Path) -> None:
    worker = tmp_path / "odd.py"
    worker.write_text(ODD_WORKER, encoding="utf-8")
    raw = tmp_path / "odd.raw.jsonl"
    sent = b'{"type":"INIT","mode":"sequential"}\nline one\n\xffbad\nno newline'
    run = subprocess.run(
        [*TAP, "--raw", "-o", str(raw), "--", PYTHON, str(worker)],
        input=sent,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 3
    assert run.stdout == (
        b'{"type":"RESPONSE","id":"x","status":200}\r\n\xff\xfe raw\n' + sent + b"no end"
    )
    assert run.stderr == b"worker stderr\n"
    events = [{k: v for k, v in e.items() if k != "t"} for e in lines_of(raw)]
    assert events[1:] == [
        {"dir": "to-worker", "line": '{"type":"INIT","mode":"sequential"}'},
        {"dir": "to-worker", "line": "line one"},
        {"dir": "to-worker", "hex": "ff626164"},
        {"dir": "to-worker", "line": "no newline", "partial": True},
        {"dir": "to-worker", "eof": True},
        {"dir": "from-worker", "line": '{"type":"RESPONSE","id":"x","status":200}\r'},
        {"dir": "from-worker", "hex": "fffe20726177"},
        {"dir": "from-worker", "line": '{"type":"INIT","mode":"sequential"}'},
        {"dir": "from-worker", "line": "line one"},
        {"dir": "from-worker", "hex": "ff626164"},
        {"dir": "from-worker", "line": "no newlineno end", "partial": True},
        {"dir": "from-worker", "eof": True},
        {"exit": 3},
    ]
    steps = generalize(lines_of(raw))[1:]
    assert steps == [
        {"send_raw": "line one"},
        {"send_hex": "ff6261640a"},
        {"send_raw": "no newline", "newline": False},
        {"close_stdin": True},
        {"expect": {"type": "RESPONSE", "id": "x", "status": 200}},
        {"expect": {"(not JSON)": "\ufffd\ufffd raw\n"}},
        {"expect": {"type": "INIT", "mode": "sequential"}},
        {"expect": {"(not JSON)": "line one\n"}},
        {"expect": {"(not JSON)": "\ufffdbad\n"}},
        {"expect_exit": {"code": 3, "within": 5000}},
    ]


def test_the_tap_forwards_sigterm_and_dies_of_it(tmp_path: Path) -> None:
    raw = tmp_path / "term.raw.jsonl"
    sleeper = "import sys, time; print('up', flush=True); time.sleep(60)"
    with subprocess.Popen(
        [*TAP, "--raw", "-o", str(raw), "--", PYTHON, "-c", sleeper],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as tap:
        assert tap.stdout is not None
        assert tap.stdout.readline() == b"up\n"  # relayed: the tap is up and forwarding
        tap.send_signal(signal.SIGTERM)
        assert tap.wait(timeout=20) == -signal.SIGTERM
    events = lines_of(raw)
    assert events[-1]["exit"] == -signal.SIGTERM
    assert {"dir": "from-worker", "line": "up"}.items() <= events[1].items()
    # A transcript cannot send a signal: no expect_exit for this exit.
    assert not [s for s in generalize(events)[1:] if "expect_exit" in s]


def test_the_tap_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    nowhere = run_cli("record", "-o", str(tmp_path / "no" / "dir.ndjson"), "--", PYTHON, "-V")
    assert nowhere.returncode == 2
    assert "cannot write in" in nowhere.stderr
    no_worker = run_cli("record", "-o", str(tmp_path / "x.ndjson"), "--", str(tmp_path / "nope"))
    assert no_worker.returncode == 127
    assert "cannot start" in no_worker.stderr
    no_command = run_cli("record", "-o", str(tmp_path / "x.ndjson"))
    assert no_command.returncode == 2
    bad = tmp_path / "bad.raw.jsonl"
    bad.write_text('{"t": 0, "start": {}}\nnot json\n', encoding="utf-8")
    broken = run_cli("generalize", str(bad), "-o", "-")
    assert broken.returncode == 2
    assert f"{bad}:2: not JSON" in broken.stderr


# --- the generalizer's rules, on made-up recordings ----------------------------------------


def ev(t: float, direction: str, message: Any) -> dict[str, Any]:
    text = message if isinstance(message, str) else json.dumps(message)
    return {"t": t, "dir": "to-worker" if direction == ">" else "from-worker", "line": text}


INIT = {"type": "INIT", "mode": "concurrent"}


def req(rid: str, action: str = "echo", data: Any = None, **kw: Any) -> dict[str, Any]:
    return {"type": "REQUEST", "id": rid, "action": action, "data": data, **kw}


def resp(rid: str, data: Any = None, status: int = 200, **kw: Any) -> dict[str, Any]:
    return {"type": "RESPONSE", "id": rid, "status": status, "data": data, **kw}


def steps_of(*events: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
    records = generalize(list(events), **options)
    assert validate_records(records) == []
    return records[1:]


def test_free_messages_go_and_volatile_members_become_types() -> None:
    steps = steps_of(
        ev(0, ">", INIT),
        ev(1, "<", {"type": "READY", "pid": 4, "mode": "concurrent"}),
        ev(2, "<", {"type": "HEARTBEAT", "pid": 4, "timestamp": 17, "requestsActive": 0}),
        ev(3, ">", req("m1")),
        ev(4, "<", {"type": "STATUS", "pid": 4, "timestamp": 17, "requestsActive": 2, "ok": 1}),
        ev(
            5,
            "<",
            resp(
                "m1",
                status=500,
                error="e",
                errorPayload={"name": "E", "message": "e", "stack": "at x"},
            ),
        ),
    )
    assert steps == [
        {"send": req("m1")},
        {
            "expect": {
                "type": "STATUS",
                "pid": {"$type": "integer"},
                "timestamp": {"$type": "integer"},
                "requestsActive": {"$type": "integer"},
                "ok": 1,
            }
        },
        {
            "expect": {
                **resp("m1", status=500, error="e"),
                "errorPayload": {"name": "E", "message": "e", "stack": {"$type": "string"}},
            }
        },
    ]


def test_init_becomes_the_header() -> None:
    with_init = generalize([ev(0, ">", INIT), ev(1, ">", req("m1"))])
    assert "init" not in with_init[0]
    assert with_init[1:] == [{"send": req("m1")}]
    without = generalize([ev(0, ">", req("m1")), ev(1, ">", INIT)])
    assert without[0]["init"] is False
    assert without[1:] == [{"send": req("m1")}, {"send": INIT}]


def test_worker_requests_are_captured_and_answered_by_ref() -> None:
    steps = steps_of(
        ev(0, ">", req("m1", "callMaster")),
        ev(1, "<", req("c1", "ping", timeout=5000)),
        ev(2, ">", resp("c1", "pong")),
        ev(3, "<", {"type": "REQUEST", "request": {"id": "c2", "action": "ping"}}),
        ev(4, "<", resp("m1", "pong")),
        ev(5, ">", resp("c2", "late")),
    )
    assert steps == [
        {"send": req("m1", "callMaster")},
        {
            "answer": {
                "request": {**req("c1", "ping", timeout=5000), "id": {"$capture": "req1"}},
                "response": {**resp("c1", "pong"), "id": {"$ref": "req1"}},
            }
        },
        {"expect": {"type": "REQUEST", "request": {"id": {"$capture": "req2"}, "action": "ping"}}},
        {"expect": resp("m1", "pong")},
        {"send": {**resp("c2", "late"), "id": {"$ref": "req2"}}},
    ]


def test_timing_becomes_within_and_wait() -> None:
    steps = steps_of(
        ev(0, ">", req("m1")),
        ev(100, "<", resp("m1")),
        ev(105, ">", req("m2")),
        ev(1105, "<", resp("m2")),
        ev(1400, ">", req("m3")),
        ev(1401, ">", {"type": "SHUTDOWN"}),
        {"t": 3000.0, "exit": 0},
    )
    assert steps == [
        {"send": req("m1")},
        {"expect": resp("m1")},  # 100 ms: the default 2000 is plenty
        {"send": req("m2")},
        {"expect": resp("m2"), "within": 5000},  # 1000 ms seen, five times that
        {"wait": 300},  # the master paused
        {"send": req("m3")},
        {"send": {"type": "SHUTDOWN"}},
        {"expect_exit": {"code": 0, "within": 8000}},
    ]


def test_out_of_order_bursts_become_unordered() -> None:
    out_of_order = steps_of(
        ev(0, ">", INIT),
        ev(1, ">", req("m1")),
        ev(2, ">", req("m2")),
        ev(3, ">", req("m3")),
        ev(500, "<", resp("m2")),
        ev(501, "<", resp("m1")),
        ev(502, "<", resp("m3")),
    )
    assert out_of_order[3:] == [
        {"expect_unordered": [resp("m2"), resp("m1"), resp("m3")], "within": 2500}
    ]
    in_order = generalize(
        [
            ev(0, ">", INIT),
            ev(1, ">", req("m1")),
            ev(2, ">", req("m2")),
            ev(500, "<", resp("m1")),
            ev(501, "<", resp("m2")),
        ]
    )
    assert in_order[0]["mode"] == "concurrent"  # two requests were out at once
    assert in_order[3:] == [{"expect": resp("m1"), "within": 2500}, {"expect": resp("m2")}]
    one_at_a_time = generalize(
        [ev(0, ">", INIT), ev(1, ">", req("m1")), ev(2, "<", resp("m1")), ev(3, ">", req("m2"))]
    )
    assert "mode" not in one_at_a_time[0]


def test_data_that_looks_like_matchers_is_literal() -> None:
    tricky = {"$ref": "x"}
    steps = steps_of(
        ev(0, ">", req("m1", data=tricky)),
        ev(1, "<", resp("m1", {"list": [{"$type": "integer"}], "$exact": 1})),
    )
    assert steps[0] == {"send": req("m1", data={"$literal": tricky})}
    assert steps[1]["expect"]["data"] == {"$literal": {"list": [{"$type": "integer"}], "$exact": 1}}


def test_exact_data() -> None:
    steps = steps_of(
        ev(0, ">", req("m1")), ev(1, "<", resp("m1", {"a": {"b": [{}]}})), exact_data=True
    )
    assert steps[1]["expect"]["data"] == {
        "$exact": True,
        "a": {"$exact": True, "b": [{"$exact": True}]},
    }


def test_header_options() -> None:
    header = generalize(
        [ev(0, ">", req("m1"))],
        check="mine.thing",
        requirement=["SCHED-1", "RESP-1"],
        description="what it checks",
        level="profile",
        mode="sequential",
        recorded="today",
    )[0]
    assert header == {
        "check": "mine.thing",
        "requirement": ["SCHED-1", "RESP-1"],
        "level": "profile",
        "mode": "sequential",
        "init": False,
        "description": "what it checks",
        "recorded": "today",
    }
    long = generalize([ev(0, ">", req("m1")), ev(20_000, "<", resp("m1"))])[0]
    assert long["timeout"] == 60_000


def test_display_command() -> None:
    cwd = Path("/work/project")
    assert (
        display_command([sys.executable, "/work/project/w.py", "--x", "a b"], cwd)
        == "python w.py --x 'a b'"
    )
    assert display_command(["node", "/elsewhere/w.js"], cwd) == "node /elsewhere/w.js"


def test_generalize_command_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "r.raw.jsonl"
    events = [
        {"t": 0.0, "start": {"argv": ["python", "w.py"], "cwd": str(tmp_path)}},
        ev(1, ">", INIT),
        ev(2, ">", req("m1", data={"a": 1})),
        ev(3, "<", resp("m1", {"a": 1})),
    ]
    raw.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    options = ["--check", "x.y", "--requirement", "SCHED-1", "--requirement", "RESP-1"]
    options += ["--level", "profile", "--mode", "concurrent", "--description", "d", "--exact"]
    assert main(["generalize", str(raw), "-o", "-", *options]) == 0
    header, *steps = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert header["check"] == "x.y"
    assert header["requirement"] == ["SCHED-1", "RESP-1"]
    assert (header["level"], header["mode"], header["description"]) == (
        "profile",
        "concurrent",
        "d",
    )
    assert header["recorded"].endswith("from python w.py")
    assert steps == [
        {"send": req("m1", data={"a": 1})},
        {"expect": resp("m1", {"$exact": True, "a": 1})},
    ]
    out = tmp_path / "Some File.ndjson"
    assert main(["generalize", str(raw), "-o", str(out), "--recorded", "by hand"]) == 0
    header = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert header["check"] == "recorded.some-file"
    assert header["recorded"] == "by hand"
    assert main(["generalize", str(tmp_path / "missing"), "-o", "-"]) == 2
    assert "missing" in capsys.readouterr().err


def without_within(step: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in step.items() if k != "within"}


def test_the_recording_tool_reproduces_the_echo_transcripts(tmp_path: Path) -> None:
    """tools/record_transcripts.py records the built-in profile transcripts; for the echo
    checks the hand edits were to leave out the closing SHUTDOWN and exit and to give the
    first answer more time."""
    run = subprocess.run(
        [
            PYTHON,
            "-m",
            "tools.record_transcripts",
            "--out",
            str(tmp_path),
            "--only",
            "profile.echo*",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    for name in ("echo", "echo-legacy"):
        draft = lines_of(tmp_path / f"profile.{name}.ndjson")
        committed = lines_of(ROOT / "conformance" / "transcripts" / "profile" / f"{name}.ndjson")
        assert [without_within(s) for s in draft[1:-2]] == [
            without_within(s) for s in committed[1:]
        ], name
        assert draft[-2:] == [
            {"send": {"type": "SHUTDOWN", "timeout": 30000}},
            {"expect_exit": {"code": 0, "within": 5000}},
        ]
        # The header starts with the recording date; only what follows it is comparable,
        # since the draft is recorded today and the committed file on the day it was made.
        draft_date, draft_how = draft[0]["recorded"].split(": ", 1)
        committed_date, committed_how = committed[0]["recorded"].split(": ", 1)
        datetime.date.fromisoformat(draft_date)  # raises unless both are ISO dates
        datetime.date.fromisoformat(committed_date)
        assert committed_how.startswith(draft_how), (committed_how, draft_how)
        # transports is a hand edit too: the legacy shape is for stdio only (issue 8).
        hand = ("recorded", "transports")
        assert {k: v for k, v in draft[0].items() if k not in hand} == {
            k: v for k, v in committed[0].items() if k not in hand
        }
        assert (tmp_path / f"profile.{name}.raw.jsonl").exists()
