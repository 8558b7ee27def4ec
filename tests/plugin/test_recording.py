"""Wire recordings: what a worker wrote, masked where it differs from run to run, and
stored by syrupy byte for byte."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from peepsy.testing import WireRecording, WorkerHarness, mask_message, tap_command
from tests.plugin._support import PYTHON_WORKER, plugin_args

pytest_plugins = ["pytester"]

WORKER = [sys.executable, str(PYTHON_WORKER)]


def event(direction: str, message: Any, **extra: Any) -> dict[str, Any]:
    line = message if isinstance(message, str) else json.dumps(message, separators=(",", ":"))
    return {"t": 1.0, "dir": direction, "line": line, **extra}


READY = {"type": "READY", "pid": 4242, "mode": "sequential", "actions": ["echo"]}
BEAT = {"type": "HEARTBEAT", "pid": 4242, "timestamp": 1764310000000, "requestsActive": 0}
FAILED = {
    "type": "RESPONSE",
    "id": "m1",
    "status": 500,
    "errorPayload": {"name": "ValueError", "message": "x", "stack": "Traceback ..."},
}
EVENTS = [
    {"t": 0.0, "start": {"argv": ["w"]}},
    event("to-worker", {"type": "INIT", "mode": "sequential"}),
    event("from-worker", READY),
    event("to-worker", {"type": "REQUEST", "id": "m1", "action": "echo", "data": 1}),
    event("from-worker", BEAT),
    event("from-worker", FAILED),
    event("from-worker", "plain text"),
    {"t": 2.0, "dir": "from-worker", "hex": "fffe41"},
    event("from-worker", '{"type":"RESPONSE","id":"m2","status":200}'),
    event("from-worker", "[1, 2]"),
    event("from-worker", '{"cut', partial=True),
    {"t": 3.0, "dir": "from-worker", "eof": True},
    {"t": 3.1, "exit": 0},
]


def test_the_worker_lines_masked_heartbeats_dropped() -> None:
    recording = WireRecording.from_events(EVENTS)
    assert list(recording) == [
        b'{"type":"READY","pid":"<pid>","mode":"sequential","actions":["echo"]}\n',
        b'{"type":"RESPONSE","id":"m1","status":500,"errorPayload":'
        b'{"name":"ValueError","message":"x","stack":"<stack>"}}\n',
        b"plain text\n",  # not JSON: as written
        b"\xff\xfeA\n",  # not UTF-8 either
        b'{"type":"RESPONSE","id":"m2","status":200}\n',  # nothing to mask: the exact bytes
        b"[1, 2]\n",
        b'{"cut',  # the worker exited before its newline
    ]
    assert bytes(recording).startswith(b'{"type":"READY"')
    assert recording[4] == b'{"type":"RESPONSE","id":"m2","status":200}\n'
    assert len(recording[:2]) == 2


def test_options_keep_heartbeats_and_sent_lines_and_every_byte() -> None:
    kept = WireRecording.from_events(EVENTS, heartbeats=True)
    assert b'{"type":"HEARTBEAT","pid":"<pid>","timestamp":"<timestamp>",' in bytes(kept)
    raw = WireRecording.from_events(EVENTS, mask=False, heartbeats=True)
    assert b'"pid":4242' in bytes(raw)
    assert b'"stack":"Traceback ..."' in bytes(raw)
    both = WireRecording.from_events(EVENTS, sent=True)
    assert both[0] == b'master: {"type":"INIT","mode":"sequential"}\n'
    assert both[1].startswith(b"worker: ")
    assert both.messages()[:2] == [{"type": "INIT", "mode": "sequential"}, mask_message(READY)]
    assert WireRecording.from_events(EVENTS).messages()[2] == b"plain text\n"


def test_mask_ids_numbers_request_ids_in_order_of_first_appearance() -> None:
    recording = WireRecording.from_events(EVENTS, sent=True, mask_ids=True)
    messages = recording.messages()
    assert messages[2]["id"] == "<id1>"  # the REQUEST
    assert messages[3]["id"] == "<id1>"  # its RESPONSE
    assert messages[-3]["id"] == "<id2>"
    legacy = {"type": "RESPONSE", "request": {"id": "r9", "action": "a"}, "status": 200}
    assert mask_message(legacy, {})["request"]["id"] == "<id1>"
    assert mask_message([1]) == [1]  # a message that is no object has nothing to mask


def test_recordings_compare_by_their_lines() -> None:
    one, two = WireRecording([b"a\n"]), WireRecording([b"a\n"])
    assert one == two
    assert hash(one) == hash(two)
    assert one != WireRecording([b"b\n"])
    assert one != b"a\n"  # not a recording: no say of ours
    assert repr(one) == "WireRecording(1 lines)\n  a"
    with pytest.raises(ValueError, match="holds one line"):
        WireRecording([b"a\nb\n"])


def test_tap_command_wraps_a_command() -> None:
    argv = tap_command("node w.js --fast", "out.ndjson")
    assert argv[-4:] == ["--", "node", "w.js", "--fast"]
    assert argv[1:6] == ["-m", "peepsy.conformance", "record", "--raw", "-o"]


def test_a_real_worker_recorded_through_the_tap() -> None:
    with WorkerHarness() as harness:
        worker = harness.spawn(WORKER, record=True)
        assert worker.request("echo", {"x": 1}).data == {"x": 1}
        recording = worker.recording()
        assert recording == worker.recording()  # stopped once, read twice
        other = harness.spawn(WORKER, record=True)  # a second tap file, same folder
        assert other.tap is not None
        assert worker.tap is not None
        assert other.tap.parent == worker.tap.parent
        assert other.tap != worker.tap
    assert len(recording) == 2, recording
    ready, response = recording.messages()
    assert ready["type"] == "READY"
    assert ready["pid"] == "<pid>"
    assert response == {"type": "RESPONSE", "id": "m1", "status": 200, "data": {"x": 1}}


def test_the_snapshot_extension_stores_bytes_and_fails_on_a_change(
    pytester: pytest.Pytester,
) -> None:
    """A third party's snapshot test, as docs/testing.md shows it."""
    test = """
        WORKER = {worker!r}

        def test_echo(peepsy_worker_factory, peepsy_wire_snapshot):
            worker = peepsy_worker_factory(WORKER, record=True)
            worker.request("echo", {data})
            assert worker.recording() == peepsy_wire_snapshot
        """
    pytester.makepyfile(test_wire=test.format(worker=WORKER, data='{"n": 1}'))
    result = pytester.runpytest(*plugin_args(), "--snapshot-update")
    result.assert_outcomes(passed=1)
    (stored,) = (pytester.path / "__snapshots__").rglob("*.ndjson")
    lines = stored.read_bytes().splitlines()
    assert b'"pid":"<pid>"' in lines[0]
    assert lines[1] == b'{"type":"RESPONSE","id":"m1","status":200,"data":{"n":1}}'
    result = pytester.runpytest(*plugin_args())
    result.assert_outcomes(passed=1)
    pytester.makepyfile(test_wire=test.format(worker=WORKER, data='{"n": 2}'))
    result = pytester.runpytest(*plugin_args())
    result.assert_outcomes(failed=1)
    # The diff is line by line, as text: not one long repr of bytes.
    result.stdout.fnmatch_lines(
        [
            '*- {"type":"RESPONSE","id":"m1","status":200,"data":{"n":1}}',
            '*+ {"type":"RESPONSE","id":"m1","status":200,"data":{"n":2}}',
        ]
    )


def test_the_extension_takes_whole_lines() -> None:
    from peepsy.testing import WireSnapshotExtension

    extension = WireSnapshotExtension()
    assert extension.serialize(WireRecording([b"x\n"])) == b"x\n"
    assert extension.serialize(b"x\ny\n") == b"x\ny\n"
    with pytest.raises(TypeError, match="not str"):
        extension.serialize("x\n")
    with pytest.raises(ValueError, match="whole lines"):
        extension.serialize(b"x")
    diff = "\n".join(extension.diff_lines(b"a\n\xff\n", "a\nb\n"))
    assert "+ \\xff" in re.sub(r"\x1b\[[0-9;]*m", "", diff)  # colours aside


def test_an_unknown_name_of_the_testing_module() -> None:
    import peepsy.testing

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = peepsy.testing.nothing


def test_without_syrupy_the_extension_says_what_to_install() -> None:
    """syrupy is optional: recordings work without it, the extension says what is missing."""
    code = (
        "import sys; sys.modules['syrupy'] = None\n"
        "from peepsy.testing import WireRecording\n"
        "WireRecording([b'x\\n'])\n"
        "try:\n"
        "    from peepsy.testing import WireSnapshotExtension\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert (
        run.stdout.strip()
        == "peepsy.testing.WireSnapshotExtension needs syrupy: pip install syrupy"
    )
