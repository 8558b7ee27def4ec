"""CANCEL in the protocol core (issue 11): the message, the version that allows it, and
which received CANCEL is an event (CANCEL-1, CANCEL-2, VER-1)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from peepsy.protocol import (
    PROTOCOL_VERSION,
    Cancel,
    CancelReceived,
    Connection,
    LocalProtocolError,
    RequestReceived,
    Role,
    UnmatchedResponse,
    encode,
    parse,
)


def line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def ready(**extra: Any) -> bytes:
    return line({"type": "READY", "pid": 7, "mode": "sequential", **extra})


def init(**extra: Any) -> bytes:
    return line({"type": "INIT", "mode": "sequential", **extra})


def test_this_side_speaks_1_1() -> None:
    assert PROTOCOL_VERSION == "1.1"


def test_cancel_round_trips_through_the_model() -> None:
    message = parse(b'{"type":"CANCEL","id":"m1","reason":"timeout"}')
    assert isinstance(message, Cancel)
    assert (message.id, message.reason) == ("m1", "timeout")
    assert encode(message) == b'{"type":"CANCEL","id":"m1","reason":"timeout"}\n'


@pytest.mark.parametrize(
    ("stated", "version", "cancels"),
    [
        (None, (1, 0), False),  # a Node peer, or one from before 1.1 (VER-1)
        ("1.0", (1, 0), False),
        ("1.1", (1, 1), True),
        ("1.7", (1, 7), True),
    ],
)
def test_a_master_learns_the_childs_version_from_ready(
    stated: str | None, version: tuple[int, int], cancels: bool
) -> None:
    conn = Connection(Role.MASTER)
    assert (conn.peer_version, conn.peer_cancels) == ((1, 0), False)
    extra = {} if stated is None else {"protocol": stated}
    conn.receive_data(ready(**extra))
    assert (conn.peer_version, conn.peer_cancels) == (version, cancels)


def test_a_child_learns_the_masters_version_from_init_and_only_the_first() -> None:
    conn = Connection(Role.CHILD)
    conn.receive_data(init(protocol="1.1"))
    conn.receive_data(init(protocol="1.0"))
    assert conn.peer_version == (1, 1)
    assert conn.peer_cancels


def _owing(rid: str = "m1") -> Connection:
    child = Connection(Role.CHILD)
    (event,) = child.receive_data(line({"type": "REQUEST", "id": rid, "action": "a"}))
    assert isinstance(event, RequestReceived)
    return child


def test_a_cancel_for_an_owed_request_is_an_event() -> None:
    child = _owing()
    assert child.receive_data(line({"type": "CANCEL", "id": "m1", "reason": "timeout"})) == [
        CancelReceived("m1", "timeout")
    ]
    # Without a reason, and again while still owed: the server ignores the repeat
    # (CANCEL-6); the core reports what came.
    assert child.receive_data(line({"type": "CANCEL", "id": "m1"})) == [CancelReceived("m1", None)]
    assert child.owed == frozenset({"m1"})  # still owed its one answer (CANCEL-5)


def test_a_master_receives_cancel_for_a_childs_request_too() -> None:
    master = Connection(Role.MASTER)
    master.receive_data(line({"type": "REQUEST", "id": "c1", "action": "a"}))
    assert master.receive_data(line({"type": "CANCEL", "id": "c1"})) == [CancelReceived("c1", None)]


@pytest.mark.parametrize("rid", ["m2", "c1"])
def test_a_cancel_for_nothing_owed_is_no_event_at_all(rid: str) -> None:
    # CANCEL-2: unknown, or an id of our own requests (the other direction).
    child = _owing()
    child.send_request("back")  # c1, one of ours
    assert child.receive_data(line({"type": "CANCEL", "id": rid})) == []
    # Among other lines, it leaves no gap and the others are kept in order.
    events = child.receive_data(
        line({"type": "CANCEL", "id": rid})
        + line({"type": "REQUEST", "id": "m3", "action": "a"})
        + line({"type": "CANCEL", "id": "m3"})
    )
    assert [type(e) for e in events] == [RequestReceived, CancelReceived]


def test_a_cancel_after_the_answer_is_no_event() -> None:
    child = _owing()
    child.send_response("m1", 200, "done")
    assert child.receive_data(line({"type": "CANCEL", "id": "m1"})) == []


def test_an_invalid_cancel_is_rejected_like_any_invalid_message() -> None:
    child = _owing()
    (event,) = child.receive_data(line({"type": "CANCEL", "id": "m1", "reason": ""}))
    assert type(event).__name__ == "MessageRejected"


def test_send_cancel_writes_the_line_for_our_own_request() -> None:
    master = Connection(Role.MASTER)
    rid, _ = master.send_request("slow")
    assert master.send_cancel(rid) == b'{"type":"CANCEL","id":"m1"}\n'
    assert master.send_cancel(rid, "timeout") == (
        b'{"type":"CANCEL","id":"m1","reason":"timeout"}\n'
    )
    # After giving up on it too: that is when a CANCEL is sent.
    master.forget(rid)
    assert master.send_cancel(rid, "cancelled").startswith(b'{"type":"CANCEL"')


@pytest.mark.parametrize("rid", ["m1", "m0", "c1", "x"])
def test_send_cancel_refuses_an_id_never_issued(rid: str) -> None:
    master = Connection(Role.MASTER)
    with pytest.raises(LocalProtocolError, match="never sent"):
        master.send_cancel(rid)


def test_send_cancel_refuses_a_reason_the_schema_does_not_allow() -> None:
    master = Connection(Role.MASTER)
    rid, _ = master.send_request("slow")
    with pytest.raises(LocalProtocolError, match="invalid CANCEL"):
        master.send_cancel(rid, "x" * 257)


def test_the_answer_to_a_cancelled_request_is_late_for_the_core() -> None:
    # The session tells it apart as the acknowledgement (CANCEL-5); the core only
    # knows it forgot the id.
    master, child = Connection(Role.MASTER), Connection(Role.CHILD)
    rid, request = master.send_request("slow")
    child.receive_data(request)
    master.forget(rid)
    cancel = master.send_cancel(rid, "timeout")
    assert child.receive_data(cancel) == [CancelReceived(rid, "timeout")]
    (event,) = master.receive_data(child.send_response(rid, 499, error="cancelled"))
    assert isinstance(event, UnmatchedResponse)
    assert event.late
    assert event.response.status == 499
