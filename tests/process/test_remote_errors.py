"""A handler's failure as the caller sees it, with real processes: the caller's exception
names the remote type, the action and the target; the child's traceback reaches the
master's side (its captured or logged stderr) by default; the stack crosses the wire only
when the child was told to send it, and then prints chained like a local traceback. Node
and Perl workers' failures read clearly too."""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path

import pytest

from peepsy import Master, RemoteError, RemoteTraceback
from tests.process._support import PYTHON, ROOT, WORKERS, eventually, run

FAILING = [PYTHON, str(WORKERS / "failing_worker.py")]
DIV_TEXT = "ZeroDivisionError: division by zero (action 'div' on 'w1', status 500)"


def test_the_caller_sees_type_action_and_target_and_stderr_holds_the_traceback() -> None:
    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("w1", FAILING, stderr="capture")
            with pytest.raises(RemoteError) as info:
                await m.request("div", "w1", {"a": 1, "b": 0})
            error = info.value
            assert str(error) == DIV_TEXT
            assert (error.message, error.remote_name) == ("division by zero", "ZeroDivisionError")
            # No stack was asked for: none crossed the wire, nothing is chained.
            assert error.payload is not None
            assert "stack" not in error.payload.model_fields_set
            assert error.__cause__ is None

            def logged() -> str:
                return "\n".join(m.get_stderr("w1"))

            await eventually(lambda: "ZeroDivisionError" in logged(), "the child's traceback")
            text = logged()
            assert "handler for 'div'" in text
            assert "raised ZeroDivisionError: division by zero" in text
            assert "Traceback (most recent call last):" in text
            assert 'in ratio_of\n    return data["a"] / data["b"]' in text

            # A failure the handler chose is not a crash: the default setup (no logging
            # configured in the child) prints nothing for it.
            with pytest.raises(RemoteError) as chosen:
                await m.request("refuse", "w1")
            assert str(chosen.value) == (
                "HandlerError: no such user (action 'refuse' on 'w1', status 404, code 'E_NO_USER')"
            )
            assert await m.request("div", "w1", {"a": 4, "b": 2}) is not None
            assert "no such user" not in logged()

    run(main())


def test_with_stderr_log_the_traceback_reaches_the_workers_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="peepsy.stderr")

    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("w1", FAILING, stderr="log")
            with pytest.raises(RemoteError):
                await m.request("div", "w1", {"a": 1, "b": 0})
            await eventually(
                lambda: "in ratio_of" in caplog.text, "the traceback in peepsy.stderr.w1"
            )

    run(main())
    lines = [r.getMessage() for r in caplog.records if r.name == "peepsy.stderr.w1"]
    assert any("raised ZeroDivisionError" in line for line in lines)


def test_with_include_stack_the_remote_traceback_is_chained() -> None:
    async def main() -> RemoteError:
        async with Master() as m:
            await m.spawn_child("w1", [*FAILING, "--stack"], stderr="discard")
            with pytest.raises(RemoteError) as info:
                await m.request("div", "w1", {"a": 1, "b": 0})
            return info.value

    error = run(main())
    assert str(error) == DIV_TEXT
    assert isinstance(error.__cause__, RemoteTraceback)
    printed = "".join(traceback.format_exception(error))
    chained = "The above exception was the direct cause of the following exception:"
    # The remote frames come first, as the cause of a local exception's would.
    assert printed.index("in ratio_of") < printed.index(chained)
    assert printed.index('return data["a"] / data["b"]') < printed.index(chained)
    assert printed.rstrip().endswith("RemoteError: " + DIV_TEXT)
    # The remote part starts at the handler, not in the frames that ran it.
    assert "_serving.py" not in str(error.__cause__)


def test_without_include_stack_no_stack_is_on_the_wire(tmp_path: Path) -> None:
    recording = tmp_path / "tap.jsonl"
    tap = [PYTHON, "-m", "peepsy.conformance", "record", "-o", str(recording), "--raw", "--"]

    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("w1", [*tap, *FAILING], stderr="discard", cwd=str(ROOT))
            with pytest.raises(RemoteError):
                await m.request("div", "w1", {"a": 1, "b": 0})
            await m.shutdown_child("w1")
            await eventually(recording.exists, "the tap's recording")

    run(main())
    events = [json.loads(line) for line in recording.read_text().splitlines()]
    answers = [
        json.loads(e["line"])
        for e in events
        if e.get("dir") == "from-worker" and '"RESPONSE"' in e.get("line", "")
    ]
    [failure] = [a for a in answers if a["status"] == 500]
    assert failure["errorPayload"]["name"] == "ZeroDivisionError"
    assert "stack" not in failure["errorPayload"]
    assert "Traceback" not in json.dumps(failure)


CONFORMANCE_WORKERS = ROOT / "conformance" / "workers"


@pytest.mark.parametrize(
    "argv",
    [
        ["node", str(CONFORMANCE_WORKERS / "node_worker.js")],
        ["perl", str(CONFORMANCE_WORKERS / "perl_worker.pl")],
    ],
    ids=["node", "perl"],
)
def test_a_node_or_perl_workers_failure_reads_clearly(argv: list[str]) -> None:
    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("other", argv, stderr="discard")
            with pytest.raises(RemoteError) as info:
                await m.request("fail", "other", "the disk is full")
            text = str(info.value)
            assert text == (
                "HandlerError: the disk is full "
                "(action 'fail' on 'other', status 500, code 'E_FAIL')"
            )

    run(main())


def test_a_legacy_failure_with_a_message_only_reads_clearly() -> None:
    # This Node worker answers with the legacy `error` string alone: no name to show.
    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("node", ["node", str(WORKERS / "node_worker.js")])
            with pytest.raises(RemoteError) as info:
                await m.request("nope", "node")
            assert info.value.payload is None
            assert str(info.value) == (
                "No handler registered for action: nope (action 'nope' on 'node', status 404)"
            )

    run(main())
