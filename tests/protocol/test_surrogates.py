"""Lone UTF-16 surrogates as a Node peer writes them (FRAME-9): ``JSON.stringify`` escapes
them (``"x\\ud800y"``). Every message type takes them, the string keeps the surrogate as
a Python ``str`` holds it, and what is written back holds the same escape (FRAME-10)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from peepsy._failures import error_from_wire
from peepsy.protocol import (
    Connection,
    HeartbeatReceived,
    InitReceived,
    ReadyReceived,
    RequestReceived,
    ResponseReceived,
    Role,
    ShutdownReceived,
    encode,
    parse,
    to_legacy,
    to_unified,
)


def one(events: list[Any]) -> Any:
    assert len(events) == 1, events
    return events[0]


# The bytes a Node peer writes: `JSON.stringify({..., data: "x\ud800y"})`.
TO_CHILD = [
    (b'{"type":"INIT","mode":"sequential","target":"w\\ud800"}\n', InitReceived),
    (b'{"type":"SHUTDOWN","timeout":5,"x-why":"\\udfff"}\n', ShutdownReceived),
    (b'{"type":"REQUEST","id":"m\\ud800","action":"a\\udc00","data":["\\ud800"]}\n', None),
    (
        b'{"type":"REQUEST","request":{"id":"1\\udc00","action":"echo\\ud83d",'
        b'"data":{"k\\ud800":"v\\udfff"}},"timeout":5000}\n',
        None,
    ),
]
TO_MASTER = [
    (
        b'{"type":"READY","pid":1,"actions":["a\\ud800"],"implementation":"n\\udc00"}\n',
        ReadyReceived,
    ),
    (b'{"type":"HEARTBEAT","pid":1,"timestamp":1,"x-note":"\\ud800"}\n', HeartbeatReceived),
    (b'{"type":"REQUEST","id":"c\\ud800","action":"a","data":"x\\ud800y"}\n', RequestReceived),
]


@pytest.mark.parametrize(("line", "kind"), TO_CHILD)
def test_a_child_takes_every_message_with_a_lone_surrogate(line: bytes, kind: Any) -> None:
    event = one(Connection(Role.CHILD).receive_data(line))
    assert isinstance(event, kind or RequestReceived)


@pytest.mark.parametrize(("line", "kind"), TO_MASTER)
def test_a_master_takes_every_message_with_a_lone_surrogate(line: bytes, kind: Any) -> None:
    assert isinstance(one(Connection(Role.MASTER).receive_data(line)), kind)


def test_a_surrogate_is_kept_as_the_python_str_holds_it() -> None:
    child = Connection(Role.CHILD)
    event = one(child.receive_data(TO_CHILD[3][0]))
    assert (event.id, event.action, event.data) == ("1\udc00", "echo\ud83d", {"k\ud800": "v\udfff"})
    assert event.legacy
    # Echoed back: the same escapes, valid UTF-8.
    line = child.send_response(event.id, 200, event.data)
    assert (
        line == b'{"type":"RESPONSE","id":"1\\udc00","status":200,"data":{"k\\ud800":"v\\udfff"}}\n'
    )
    line.decode("utf-8")


def test_success_and_failure_answers_with_surrogates_reach_the_caller() -> None:
    master = Connection(Role.MASTER)
    master.send_request("a")
    master.send_request("b")
    failure, success = master.receive_data(
        b'{"type":"RESPONSE","id":"m1","status":500,"error":"bad \\ud800",'
        b'"errorPayload":{"name":"E\\ud800","message":"m\\ud800","details":"\\ud800",'
        b'"stack":"s\\udc00"}}\n'
        b'{"type":"RESPONSE","id":"m2","status":200,"data":{"\\ud800":"\\udc00x"}}\n'
    )
    assert isinstance(failure, ResponseReceived)
    error = error_from_wire(failure.response)
    assert error.message == "bad \ud800"
    assert error.payload is not None
    assert (error.payload.name, error.payload.details, error.payload.stack) == (
        "E\ud800",
        "\ud800",
        "s\udc00",
    )
    assert isinstance(success, ResponseReceived)
    assert success.data == {"\ud800": "\udc00x"}


@pytest.mark.parametrize("legacy", [False, True])
def test_requests_with_surrogates_are_written_as_escapes(legacy: bool) -> None:
    master = Connection(Role.MASTER)
    _, line = master.send_request("a\ud800", {"k\udc00": ["x\ud800y"]}, legacy=legacy)
    assert b'"a\\ud800"' in line
    assert b'{"k\\udc00":["x\\ud800y"]}' in line
    line.decode("utf-8")
    event = one(Connection(Role.CHILD).receive_data(line))
    assert (event.action, event.data) == ("a\ud800", {"k\udc00": ["x\ud800y"]})


def test_a_request_keeps_its_surrogates_from_one_shape_to_the_other() -> None:
    unified = parse(b'{"type":"REQUEST","id":"m\\ud800","action":"a\\udc00","timeout":5}')
    legacy = to_legacy(unified)  # type: ignore[arg-type]
    assert encode(legacy) == (
        b'{"type":"REQUEST","request":{"id":"m\\ud800","action":"a\\udc00"},"timeout":5}\n'
    )
    assert encode(to_unified(legacy)) == (
        b'{"type":"REQUEST","id":"m\\ud800","action":"a\\udc00","timeout":5}\n'
    )
    assert json.loads(encode(legacy))["request"]["id"] == "m\ud800"
