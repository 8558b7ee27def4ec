"""Lines that arrive together are read in one pass (``LineRun``, ``_hot.read_all``) when
each is a common message. Whatever the mix of lines and however the bytes are cut, a
connection must then produce exactly the events, and end in exactly the state, of one
that is handed the same lines one at a time."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peepsy.protocol import Connection, ResponseReceived, Role, _hot
from peepsy.protocol import _receiving as receiving

_SENT = 5  # the master has sent m1..m5 before the stream starts

# Lines a master may be sent, good and bad: answers to requests it sent and did not,
# failures, the child's own requests (some with the same id), heartbeats, lines the
# models judge (legacy shape, an unknown member), broken JSON, blank lines, CRLF.
_LINES = st.sampled_from(
    [
        b'{"type":"RESPONSE","id":"m1","status":200,"data":{"n":1}}',
        b'{"type":"RESPONSE","id":"m2","status":200}',
        b'{"type":"RESPONSE","id":"m3","status":201,"data":[1,"x"]}\r',
        b'{"type":"RESPONSE","id":"m4","status":500,"error":"boom"}',
        b'{"type":"RESPONSE","id":"m5","status":200,"data":null,"extra":1}',
        b'{"type":"RESPONSE","id":"m9","status":200,"data":2}',
        b'{"type":"RESPONSE","id":"","status":200}',
        b'{"type":"REQUEST","id":"c1","action":"log","data":"hi","timeout":100}',
        b'{"type":"REQUEST","id":"c2","action":"log","priority":3}',
        b'{"type":"REQUEST","request":{"id":"c3","action":"log","data":1}}',
        b'{"type":"HEARTBEAT","pid":7,"timestamp":1}',
        b'{"type":"RESPONSE","id":"m1","status":200,"data":' + b"[" * 600 + b"]" * 600 + b"}",
        b'{"type":"RESPONSE","id":"m2","status":200,"data":"\\ud800"}',
        b'{"type":"RESPONSE","id":"m3","status":200.0}',
        b"{not json",
        b"",
        b"  \t",
        b" " + b'{"type":"RESPONSE","id":"m4","status":204}',
    ]
)


def _master() -> Connection:
    conn = Connection(Role.MASTER)
    for _ in range(_SENT):
        conn.send_request("echo", None, timeout=1000)
    return conn


def _seen(event: Any) -> Any:
    """An event as comparable data: errors by class, text and line, not by identity."""
    if isinstance(event, ResponseReceived):
        return ("response", event.id, event.status, event.data, event.action)
    fields = {}
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        if isinstance(value, Exception):
            line, request_id = getattr(value, "line", None), getattr(value, "request_id", None)
            value = (type(value).__name__, str(value), line, request_id)
        fields[field.name] = value
    return (type(event).__name__, fields)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_LINES, max_size=16), cuts=st.lists(st.integers(0, 4000), max_size=4))
def test_a_run_reads_as_its_lines_read_one_by_one(lines: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    points = sorted({min(cut, len(stream)) for cut in cuts})
    bounds = zip([0, *points], [*points, len(stream)], strict=True)
    chunks = [stream[a:b] for a, b in bounds if b > a]  # (no b"": that ends the stream)
    together, alone = _master(), _master()
    got = [_seen(e) for chunk in chunks for e in together.receive_data(chunk)]
    want = [_seen(e) for line in lines for e in alone.receive_data(line + b"\n")]
    assert got == want
    assert list(together.pending) == list(alone.pending)
    assert together.owed == alone.owed
    assert together.lines_received == alone.lines_received


def test_common_lines_that_come_together_are_read_in_one_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn = _master()
    calls: list[bytes] = []

    def counted(lines: bytes) -> Any:
        calls.append(lines)
        return _hot.read_all(lines)

    monkeypatch.setattr(receiving, "_read_all", counted)
    stream = b"".join(
        b'{"type":"RESPONSE","id":"m%d","status":200,"data":%d}\n' % (i, i) for i in (1, 2, 3)
    )
    events = conn.receive_data(stream)
    assert [e.data for e in events if isinstance(e, ResponseReceived)] == [1, 2, 3]
    assert len(calls) == 1  # the three lines, read in one pass
    assert calls[0].count(b"\n") == 2
    assert _hot.read_all(b'{"type":"RESPONSE","id":"m1","status":200}\n') is None  # blank


def test_a_run_with_a_line_the_hot_path_refuses_is_read_line_by_line() -> None:
    conn = _master()
    events = conn.receive_data(
        b'{"type":"RESPONSE","id":"m1","status":200,"data":1}\n'
        b'{"type":"HEARTBEAT","pid":7,"timestamp":1}\n'
        b'{"type":"RESPONSE","id":"m2","status":200,"data":2}\n'
    )
    assert [type(e).__name__ for e in events] == [
        "ResponseReceived",
        "HeartbeatReceived",
        "ResponseReceived",
    ]
    assert conn.outstanding == _SENT - 2
