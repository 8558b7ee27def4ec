"""Connection: the protocol state of one channel, for both roles (ID-*, REQ-*, RESP-*, MSG-6)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import pytest

from peepsy.protocol import PROTOCOL_VERSION as VERSION
from peepsy.protocol import (
    Connection,
    DuplicateRequestId,
    EncodeError,
    ErrorPayload,
    Event,
    Heartbeat,
    HeartbeatReceived,
    Init,
    InitReceived,
    InvalidJson,
    InvalidMessage,
    LineTooLong,
    LocalProtocolError,
    MessageRejected,
    Ready,
    ReadyReceived,
    RemoteProtocolError,
    RequestReceived,
    RequestUnified,
    Response,
    ResponseReceived,
    Role,
    Shutdown,
    ShutdownReceived,
    StreamEnded,
    TruncatedLine,
    UnexpectedMessage,
    UnknownMessageType,
    UnmatchedResponse,
    encode,
    parse,
    parse_version,
    supports,
)

E = TypeVar("E")


def single(events: list[Event], kind: type[E]) -> E:
    """The one event of ``events``, which must be a ``kind``."""
    assert len(events) == 1, events
    event = events[0]
    assert isinstance(event, kind), event
    return event


def rejected(events: list[Event], kind: type[E]) -> E:
    """The error of the one MessageRejected event, which must be a ``kind``."""
    error = single(events, MessageRejected).error
    assert type(error) is kind, error
    return error


def pair() -> tuple[Connection, Connection]:
    return Connection(Role.MASTER), Connection(Role.CHILD)


def line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def request_line(rid: str, action: str = "act", **extra: Any) -> bytes:
    return line({"type": "REQUEST", "id": rid, "action": action, **extra})


def response_line(rid: str, status: int = 200, **extra: Any) -> bytes:
    return line({"type": "RESPONSE", "id": rid, "status": status, **extra})


def as_dict(data: bytes) -> Any:
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 1
    return json.loads(data)


# --- round trips ------------------------------------------------------------------------


def test_master_request_child_response_round_trip() -> None:
    master, child = pair()
    rid, out = master.send_request("add", {"a": 1, "b": 2})
    assert rid == "m1"
    assert master.outstanding == 1
    assert as_dict(out) == {
        "type": "REQUEST",
        "id": "m1",
        "action": "add",
        "data": {"a": 1, "b": 2},
    }

    request = single(child.receive_data(out), RequestReceived)
    assert request == RequestReceived(
        id="m1", action="add", data={"a": 1, "b": 2}, timeout=None, priority=0, legacy=False
    )
    assert child.owed == frozenset({"m1"})

    answer = child.send_response("m1", 200, {"sum": 3})
    assert as_dict(answer) == {"type": "RESPONSE", "id": "m1", "status": 200, "data": {"sum": 3}}
    assert child.owed == frozenset()

    received = single(master.receive_data(answer), ResponseReceived)
    assert received.action == "add"
    assert received.response == Response(type="RESPONSE", id="m1", status=200, data={"sum": 3})
    assert received.ok
    assert master.outstanding == 0


def test_child_request_master_response_round_trip() -> None:
    master, child = pair()
    rid, out = child.send_request("log", "hello", priority=5)
    assert rid == "c1"
    request = single(master.receive_data(out), RequestReceived)
    assert (request.id, request.action, request.data, request.priority) == ("c1", "log", "hello", 5)
    assert master.owed == frozenset({"c1"})
    failure = master.send_response(
        "c1", 404, error_payload=ErrorPayload(name="PeepsyNotFoundError", message="nope")
    )
    received = single(child.receive_data(failure), ResponseReceived)
    assert received.action == "log"
    assert not received.ok
    assert received.response.error == "nope"


def test_ids_count_up_per_role_and_directions_are_separate() -> None:
    master, child = pair()
    assert [master.send_request("a")[0] for _ in range(3)] == ["m1", "m2", "m3"]
    assert [child.send_request("a")[0] for _ in range(2)] == ["c1", "c2"]
    assert master.outstanding == 3
    assert child.outstanding == 2


def test_many_requests_in_one_chunk_and_answers_in_any_order() -> None:
    master, child = pair()
    lines = b"".join(master.send_request(action)[1] for action in ("one", "two", "three"))
    events = child.receive_data(lines)
    assert [e.action for e in events if isinstance(e, RequestReceived)] == ["one", "two", "three"]
    assert len(events) == 3
    answers = child.send_response("m3", 200, 3) + child.send_response("m1", 200, 1)
    got = master.receive_data(answers)
    assert [(e.response.id, e.action) for e in got if isinstance(e, ResponseReceived)] == [
        ("m3", "three"),
        ("m1", "one"),
    ]
    assert len(got) == 2
    assert master.outstanding == 1
    assert child.owed == frozenset({"m2"})


def test_pending_is_a_live_read_only_view_of_the_table() -> None:
    master, child = pair()
    view = master.pending
    child.receive_data(b"".join(master.send_request(action)[1] for action in ("one", "two")))
    assert list(view) == ["m1", "m2"]
    master.receive_data(child.send_response("m1", 200, 1))
    assert list(view) == ["m2"]
    assert len(view) == master.outstanding
    master.forget_all()
    assert len(view) == 0
    assert master.pending is view
    with pytest.raises(TypeError):
        view["m9"] = view  # type: ignore[index]


def test_bytes_may_arrive_in_any_chunks() -> None:
    master, child = pair()
    _, out = master.send_request("add", {"x": "é"}, timeout=10)
    events: list[Event] = []
    for i in range(len(out)):
        events += child.receive_data(out[i : i + 1])
    request = single(events, RequestReceived)
    assert request.data == {"x": "é"}
    assert child.lines_received == 1


def test_legacy_request_shape() -> None:
    master, child = pair()
    rid, out = master.send_request("add", [1, 2], timeout=250, priority=-1, legacy=True)
    assert as_dict(out) == {
        "type": "REQUEST",
        "request": {"id": rid, "action": "add", "data": [1, 2]},
        "timeout": 250,
        "priority": -1,
    }
    request = single(child.receive_data(out), RequestReceived)
    assert request == RequestReceived(
        id="m1", action="add", data=[1, 2], timeout=250, priority=-1, legacy=True
    )
    # The answer does not depend on the shape.
    received = single(master.receive_data(child.send_response(rid, 200)), ResponseReceived)
    assert received.action == "add"


def test_legacy_request_without_extras() -> None:
    master, child = pair()
    _, out = master.send_request("ping", legacy=True)
    assert as_dict(out) == {
        "type": "REQUEST",
        "request": {"id": "m1", "action": "ping", "data": None},
    }
    request = single(child.receive_data(out), RequestReceived)
    assert (request.legacy, request.timeout, request.priority, request.data) == (
        True,
        None,
        0,
        None,
    )


def test_unified_request_is_the_default() -> None:
    master, child = pair()
    _, out = master.send_request("ping")
    assert as_dict(out) == {"type": "REQUEST", "id": "m1", "action": "ping", "data": None}
    assert single(child.receive_data(out), RequestReceived).legacy is False


def test_timeout_and_priority_pass_through() -> None:
    master, child = pair()
    _, out = master.send_request("a", timeout=300_000, priority=0)
    assert as_dict(out) == {
        "type": "REQUEST",
        "id": "m1",
        "action": "a",
        "data": None,
        "timeout": 300_000,
        "priority": 0,
    }
    request = single(child.receive_data(out), RequestReceived)
    assert (request.timeout, request.priority) == (300_000, 0)
    _, out = master.send_request("a", timeout=1, priority=-(2**31))
    request = single(child.receive_data(out), RequestReceived)
    assert (request.timeout, request.priority) == (1, -(2**31))


def test_absent_timeout_priority_and_data_have_defaults() -> None:
    child = Connection(Role.CHILD)
    request = single(
        child.receive_data(b'{"type":"REQUEST","id":"x","action":"a"}\n'), RequestReceived
    )
    assert request == RequestReceived(
        id="x", action="a", data=None, timeout=None, priority=0, legacy=False
    )
    legacy = single(
        child.receive_data(b'{"type":"REQUEST","request":{"id":"y","action":"a"}}\n'),
        RequestReceived,
    )
    assert (legacy.data, legacy.timeout, legacy.priority, legacy.legacy) == (None, None, 0, True)


def test_falsy_data_is_kept() -> None:
    master, child = pair()
    values: list[Any] = [0, False, "", [], {}]
    for value in values:
        _, out = master.send_request("a", value)
        assert single(child.receive_data(out), RequestReceived).data == value


@pytest.mark.parametrize(
    ("status", "ok"),
    [
        (100, True),
        (200, True),
        (204, True),
        (399, True),
        (400, False),
        (404, False),
        (500, False),
        (599, False),
    ],
)
def test_response_ok(status: int, ok: bool) -> None:
    master = Connection(Role.MASTER)
    rid, _ = master.send_request("a")
    extra = {} if ok else {"error": "failed"}
    received = single(master.receive_data(response_line(rid, status, **extra)), ResponseReceived)
    assert received.ok is ok
    assert received.response.status == status


# --- unmatched responses (ID-4) --------------------------------------------------------


def test_forget_then_late_answer() -> None:
    master, child = pair()
    rid, out = master.send_request("slow")
    child.receive_data(out)
    assert master.forget(rid) is True
    assert master.outstanding == 0
    assert master.forget(rid) is False
    answer = child.send_response(rid, 200, "done")
    unmatched = single(master.receive_data(answer), UnmatchedResponse)
    assert unmatched.late is True
    assert unmatched.response == Response(type="RESPONSE", id="m1", status=200, data="done")


def test_forget_of_an_unknown_id() -> None:
    master = Connection(Role.MASTER)
    assert master.forget("m1") is False
    assert master.forget("nope") is False


def test_second_answer_to_an_answered_request_is_late() -> None:
    master = Connection(Role.MASTER)
    rid, _ = master.send_request("a")
    single(master.receive_data(response_line(rid)), ResponseReceived)
    assert single(master.receive_data(response_line(rid)), UnmatchedResponse).late is True


def test_forgetting_one_request_keeps_the_others() -> None:
    master = Connection(Role.MASTER)
    first, _ = master.send_request("a")
    second, _ = master.send_request("b")
    master.forget(first)
    assert single(master.receive_data(response_line(second)), ResponseReceived).action == "b"
    assert single(master.receive_data(response_line(first)), UnmatchedResponse).late is True


@pytest.mark.parametrize(
    "rid",
    [
        "m3",  # the counter has not got there
        "m99999999999999999999999",
        "m0",
        "m",
        "mx",
        "m1x",
        "m-1",
        "m 1",
        "m+1",
        "m01",  # not how we write m1
        "m²",  # a digit to str.isdigit, not to int()
        "m\u0661",  # ARABIC-INDIC DIGIT ONE: int() takes it, but we never write it
        "M1",
        "c1",  # the other direction's id space
        "1",
        "xm1",
    ],
)
def test_answer_to_a_never_issued_id_is_not_late(rid: str) -> None:
    master = Connection(Role.MASTER)
    master.send_request("a")
    master.send_request("b")
    master.forget("m1")
    master.forget("m2")
    unmatched = single(master.receive_data(response_line(rid)), UnmatchedResponse)
    assert unmatched.late is False
    assert unmatched.response.id == rid


def test_answer_before_any_request_is_not_late() -> None:
    child = Connection(Role.CHILD)
    assert single(child.receive_data(response_line("c1")), UnmatchedResponse).late is False


# --- roles (MSG-6) ----------------------------------------------------------------------

INIT = Init(type="INIT", mode="concurrent", protocol="1.0", target="w1", heartbeat_interval=500)
READY = Ready(type="READY", pid=42, protocol="1.0", actions=["add"])
HEARTBEAT = Heartbeat(type="HEARTBEAT", pid=42, timestamp=1_764_310_000_000, requests_active=2)
SHUTDOWN = Shutdown(type="SHUTDOWN", timeout=5000)


def test_child_receives_init_and_shutdown() -> None:
    master, child = pair()
    init = single(child.receive_data(master.send(INIT)), InitReceived)
    assert init.message == INIT
    shutdown = single(child.receive_data(master.send(SHUTDOWN)), ShutdownReceived)
    assert shutdown.message == SHUTDOWN
    bare = single(child.receive_data(master.send(Shutdown(type="SHUTDOWN"))), ShutdownReceived)
    assert bare.message == Shutdown(type="SHUTDOWN")


def test_master_receives_ready_and_heartbeat() -> None:
    master, child = pair()
    ready = single(master.receive_data(child.send(READY)), ReadyReceived)
    assert ready.message == READY
    heartbeat = single(master.receive_data(child.send(HEARTBEAT)), HeartbeatReceived)
    assert heartbeat.message == HEARTBEAT


def test_what_each_role_sends() -> None:
    master, child = pair()
    assert master.send(INIT) == encode(INIT)
    assert master.send(SHUTDOWN) == b'{"type":"SHUTDOWN","timeout":5000}\n'
    assert child.send(READY) == encode(READY)
    assert child.send(HEARTBEAT) == encode(HEARTBEAT)


@pytest.mark.parametrize(
    ("role", "message"),
    [
        (Role.CHILD, HEARTBEAT),
        (Role.CHILD, READY),
        (Role.MASTER, INIT),
        (Role.MASTER, SHUTDOWN),
    ],
)
def test_message_the_role_does_not_receive_is_rejected(
    role: Role, message: Init | Ready | Heartbeat | Shutdown
) -> None:
    conn = Connection(role)
    data = b"\n" + encode(message) + request_line("x")
    events = conn.receive_data(data)
    assert len(events) == 2
    error = rejected(events[:1], UnexpectedMessage)
    assert error.line == 2
    assert error.rule == "MSG-6"
    assert error.request_id is None
    assert error.reason == f"a {role.value} does not accept {message.type} messages"
    # The stream goes on.
    assert single(events[1:], RequestReceived).id == "x"


@pytest.mark.parametrize(
    ("role", "message"),
    [
        (Role.MASTER, READY),
        (Role.MASTER, HEARTBEAT),
        (Role.CHILD, INIT),
        (Role.CHILD, SHUTDOWN),
    ],
)
def test_message_the_role_does_not_send_is_refused(
    role: Role, message: Init | Ready | Heartbeat | Shutdown
) -> None:
    conn = Connection(role)
    with pytest.raises(LocalProtocolError, match=f"a {role.value} does not send {message.type}"):
        conn.send(message)


# --- duplicate ids (ID-2) ---------------------------------------------------------------


def test_duplicate_request_id_while_owed() -> None:
    child = Connection(Role.CHILD)
    single(child.receive_data(request_line("r1", "first")), RequestReceived)
    error = rejected(child.receive_data(request_line("r1", "second")), DuplicateRequestId)
    assert error.request_id is None  # never answer it: the answer would go to the first
    assert error.line == 2
    assert error.rule == "ID-2"
    assert "'r1'" in error.reason
    assert child.owed == frozenset({"r1"})
    # The first one is answered once; then the id is free again.
    child.send_response("r1", 200)
    assert child.owed == frozenset()
    again = single(child.receive_data(request_line("r1", "third")), RequestReceived)
    assert again.action == "third"
    assert child.owed == frozenset({"r1"})


def test_duplicate_across_shapes() -> None:
    child = Connection(Role.CHILD)
    single(child.receive_data(request_line("r1")), RequestReceived)
    legacy = line({"type": "REQUEST", "request": {"id": "r1", "action": "act"}})
    rejected(child.receive_data(legacy), DuplicateRequestId)


def test_same_id_in_the_other_direction_is_no_duplicate() -> None:
    master, child = pair()
    rid, out = master.send_request("a")
    child.receive_data(out)
    # The child may use "m1" for its own request: different id space (ID-3).
    single(master.receive_data(request_line(rid)), RequestReceived)
    assert master.owed == frozenset({"m1"})
    assert master.outstanding == 1


# --- broken REQUESTs (REQ-7) -------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        line({"type": "REQUEST", "id": "r1", "action": ""}),
        line({"type": "REQUEST", "request": {"id": "r1", "action": ""}}),
        line({"type": "REQUEST", "request": {"id": "r1"}, "timeout": 0}),
        b'{"type":"REQUEST","id":"r1","action":"a","data":NaN}\n',
    ],
)
def test_broken_request_with_a_readable_id_is_owed_a_400(data: bytes) -> None:
    child = Connection(Role.CHILD)
    error = single(child.receive_data(data), MessageRejected).error
    assert isinstance(error, InvalidMessage | InvalidJson)
    assert error.request_id == "r1"
    assert error.line == 1
    assert child.owed == frozenset({"r1"})
    payload = ErrorPayload(
        name="PeepsyBadRequestError", message=error.reason, code="PEEPSY_BAD_REQUEST"
    )
    answer = child.send_response("r1", 400, error_payload=payload)
    assert as_dict(answer)["status"] == 400
    assert as_dict(answer)["error"] == error.reason
    assert child.owed == frozenset()
    # A later REQUEST may reuse the id.
    single(child.receive_data(request_line("r1")), RequestReceived)


def test_broken_request_whose_id_is_already_owed() -> None:
    child = Connection(Role.CHILD)
    single(child.receive_data(request_line("r1")), RequestReceived)
    error = rejected(child.receive_data(line({"type": "REQUEST", "id": "r1"})), InvalidMessage)
    assert error.request_id is None  # the first request keeps the id
    assert child.owed == frozenset({"r1"})
    child.send_response("r1", 200)
    with pytest.raises(LocalProtocolError):
        child.send_response("r1", 400, error="bad")


def test_two_broken_requests_with_one_id() -> None:
    child = Connection(Role.CHILD)
    first = rejected(child.receive_data(line({"type": "REQUEST", "id": "r1"})), InvalidMessage)
    second = rejected(child.receive_data(line({"type": "REQUEST", "id": "r1"})), InvalidMessage)
    assert (first.request_id, second.request_id) == ("r1", None)
    assert child.owed == frozenset({"r1"})


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (line({"type": "REQUEST", "id": "", "action": "a"}), InvalidMessage),
        (line({"type": "REQUEST", "id": 7, "action": "a"}), InvalidMessage),
        (line({"type": "RESPONSE", "id": "r1", "status": "200"}), InvalidMessage),
        (line({"type": "PING", "id": "r1"}), UnknownMessageType),
        (line({"cmd": "NODE_HANDLE_ACK"}), InvalidMessage),
        (b"hello world\n", InvalidJson),
        (b'{"type":"RESPONSE","id":"r1","status":200,"data":NaN}\n', InvalidJson),
    ],
)
def test_broken_line_without_a_readable_request_id(
    data: bytes, kind: type[RemoteProtocolError]
) -> None:
    child = Connection(Role.CHILD)
    error = rejected(child.receive_data(data), kind)
    assert error.request_id is None
    assert error.line == 1
    assert child.owed == frozenset()


def test_a_bad_line_costs_only_itself() -> None:
    child = Connection(Role.CHILD, max_line_bytes=64)
    data = (
        b"garbage\n"
        + b"x" * 100
        + b"\n"
        + request_line("r1")
        + b'{"type":"NOPE"}\n'
        + b"\n"
        + request_line("r2")
    )
    events = child.receive_data(data)
    assert [type(e) for e in events] == [
        MessageRejected,
        MessageRejected,
        RequestReceived,
        MessageRejected,
        RequestReceived,
    ]
    errors = [e.error for e in events if isinstance(e, MessageRejected)]
    assert [(type(e), e.line) for e in errors] == [
        (InvalidJson, 1),
        (LineTooLong, 2),
        (UnknownMessageType, 4),
    ]
    assert [e.id for e in events if isinstance(e, RequestReceived)] == ["r1", "r2"]
    assert child.lines_received == 6


def test_long_line_across_receives() -> None:
    child = Connection(Role.CHILD, max_line_bytes=64)
    assert rejected(child.receive_data(b"y" * 70), LineTooLong).line == 1
    assert child.receive_data(b"y" * 70) == []
    assert single(child.receive_data(b"\n" + request_line("r1")), RequestReceived).id == "r1"


# --- send_response rules (RESP-1, RESP-3) -------------------------------------------------


def owing(*ids: str) -> Connection:
    child = Connection(Role.CHILD)
    for rid in ids:
        single(child.receive_data(request_line(rid)), RequestReceived)
    return child


def test_send_response_to_a_request_not_owed() -> None:
    child = owing("r1")
    with pytest.raises(LocalProtocolError, match="no received request 'r2' awaits an answer"):
        child.send_response("r2", 200)
    assert child.owed == frozenset({"r1"})


def test_send_response_to_our_own_request_id() -> None:
    master = Connection(Role.MASTER)
    rid, _ = master.send_request("a")
    with pytest.raises(LocalProtocolError):
        master.send_response(rid, 200)


def test_answering_twice_fails() -> None:
    child = owing("r1")
    child.send_response("r1", 200, "ok")
    with pytest.raises(LocalProtocolError):
        child.send_response("r1", 200, "ok")
    with pytest.raises(LocalProtocolError):
        child.send_response("r1", 500, error="late failure")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error": "no"},
        {"error": ""},
        {"error_payload": ErrorPayload(name="E", message="m")},
        {"error": "no", "error_payload": ErrorPayload(name="E", message="no")},
    ],
)
@pytest.mark.parametrize("status", [200, 204, 399])
def test_success_with_an_error_is_refused(status: int, kwargs: dict[str, Any]) -> None:
    child = owing("r1")
    with pytest.raises(LocalProtocolError, match=f"a {status} RESPONSE carries no error"):
        child.send_response("r1", status, **kwargs)
    assert child.owed == frozenset({"r1"})


@pytest.mark.parametrize("status", [400, 404, 500, 599])
def test_failure_with_neither_error_nor_payload_is_refused(status: int) -> None:
    child = owing("r1")
    with pytest.raises(LocalProtocolError, match=f"a {status} RESPONSE needs an error message"):
        child.send_response("r1", status)
    with pytest.raises(LocalProtocolError):
        child.send_response("r1", status, data={"some": "data"})
    assert child.owed == frozenset({"r1"})


def test_failure_with_only_a_payload_copies_its_message() -> None:
    child = owing("r1")
    payload = ErrorPayload(name="ValueError", message="bad value", code="PEEPSY_HANDLER_ERROR")
    answer = child.send_response("r1", 500, error_payload=payload)
    assert answer == (
        b'{"type":"RESPONSE","id":"r1","status":500,"error":"bad value","errorPayload":'
        b'{"name":"ValueError","message":"bad value","code":"PEEPSY_HANDLER_ERROR"}}\n'
    )


def test_failure_with_only_an_error_string() -> None:
    child = owing("r1")
    answer = child.send_response("r1", 500, error="boom")
    assert answer == b'{"type":"RESPONSE","id":"r1","status":500,"error":"boom"}\n'


def test_failure_with_both_keeps_each() -> None:
    child = owing("r1")
    payload = ErrorPayload(name="E", message="structured")
    answer = child.send_response("r1", 503, error="legacy", error_payload=payload)
    assert as_dict(answer) == {
        "type": "RESPONSE",
        "id": "r1",
        "status": 503,
        "error": "legacy",
        "errorPayload": {"name": "E", "message": "structured"},
    }


def test_failure_writes_no_data() -> None:
    child = owing("r1")
    answer = child.send_response("r1", 500, {"ignored": True}, error="boom")
    assert "data" not in as_dict(answer)


def test_success_data_defaults_to_null() -> None:
    child = owing("r1")
    assert as_dict(child.send_response("r1", 200)) == {
        "type": "RESPONSE",
        "id": "r1",
        "status": 200,
        "data": None,
    }


@pytest.mark.parametrize(
    ("status", "kwargs"),
    [
        (700, {"error": "x"}),
        (600, {"error": "x"}),
        (99, {}),
        (0, {}),
        (-200, {}),
    ],
)
def test_invalid_status_is_refused(status: int, kwargs: dict[str, Any]) -> None:
    child = owing("r1")
    with pytest.raises(LocalProtocolError, match="invalid RESPONSE to 'r1'"):
        child.send_response("r1", status, **kwargs)
    assert child.owed == frozenset({"r1"})
    child.send_response("r1", 200)  # still owed, and answerable


def test_unserializable_result_keeps_the_request_owed() -> None:
    child = owing("r1")
    with pytest.raises(EncodeError):
        child.send_response("r1", 200, object())
    assert child.owed == frozenset({"r1"})
    assert as_dict(child.send_response("r1", 500, error="cannot encode"))["status"] == 500


def test_owed_is_a_snapshot() -> None:
    child = owing("r1", "r2")
    owed = child.owed
    child.send_response("r1", 200)
    assert owed == frozenset({"r1", "r2"})
    assert child.owed == frozenset({"r2"})


# --- send_request rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "kwargs"),
    [
        ("", {}),
        ("a" * 257, {}),
        ("a", {"timeout": 0}),
        ("a", {"timeout": -5}),
        ("a", {"timeout": 300_001}),
        ("a", {"priority": 2**31}),
        ("a", {"priority": -(2**31) - 1}),
        ("", {"legacy": True}),
        ("a", {"timeout": 0, "legacy": True}),
    ],
)
def test_invalid_request_is_refused_and_uses_no_id(action: str, kwargs: dict[str, Any]) -> None:
    master = Connection(Role.MASTER)
    with pytest.raises(LocalProtocolError, match="invalid REQUEST for "):
        master.send_request(action, **kwargs)
    assert master.outstanding == 0
    assert master.send_request("ok")[0] == "m1"


def test_unserializable_request_data_uses_no_id() -> None:
    master = Connection(Role.MASTER)
    with pytest.raises(EncodeError):
        master.send_request("a", object())
    with pytest.raises(EncodeError):
        master.send_request("a", {"x": object()}, legacy=True)
    assert master.outstanding == 0
    assert master.send_request("a")[0] == "m1"


def test_longest_action_is_accepted() -> None:
    master = Connection(Role.MASTER)
    _, out = master.send_request("a" * 256)
    assert as_dict(out)["action"] == "a" * 256


# --- end of stream (FRAME-2) -------------------------------------------------------------


def test_end_of_stream() -> None:
    child = Connection(Role.CHILD)
    assert not child.ended
    assert child.receive_data(b"") == [StreamEnded()]
    assert child.ended
    with pytest.raises(LocalProtocolError, match="after the end of the stream"):
        child.receive_data(request_line("r1"))
    with pytest.raises(LocalProtocolError):
        child.receive_data(b"")


def test_end_of_stream_inside_a_line() -> None:
    child = Connection(Role.CHILD)
    assert child.receive_data(request_line("r1") + b'{"type":"REQ') != []
    events = child.receive_data(b"")
    assert len(events) == 2
    error = rejected(events[:1], TruncatedLine)
    assert error.line == 2
    assert events[1] == StreamEnded()
    assert child.ended
    assert child.owed == frozenset({"r1"})  # still answerable although the stream ended


def test_end_of_stream_after_whitespace() -> None:
    child = Connection(Role.CHILD)
    assert child.receive_data(b"  \r") == []
    assert child.receive_data(b"") == [StreamEnded()]


def test_end_of_stream_while_dropping_a_long_line() -> None:
    child = Connection(Role.CHILD, max_line_bytes=16)
    rejected(child.receive_data(b"z" * 20), LineTooLong)
    assert child.receive_data(b"") == [StreamEnded()]


# --- properties ----------------------------------------------------------------------------


def test_roles() -> None:
    assert Role.MASTER.peer is Role.CHILD
    assert Role.CHILD.peer is Role.MASTER
    assert Role.MASTER.value == "master"
    assert Role.CHILD.value == "child"
    master, child = pair()
    assert (master.our_role, master.their_role) == (Role.MASTER, Role.CHILD)
    assert (child.our_role, child.their_role) == (Role.CHILD, Role.MASTER)


def test_initial_state() -> None:
    conn = Connection(Role.MASTER)
    assert conn.outstanding == 0
    assert conn.owed == frozenset()
    assert conn.lines_received == 0
    assert conn.ended is False


def test_lines_received_counts_every_line() -> None:
    child = Connection(Role.CHILD)
    child.receive_data(b"\n\nbad\n" + request_line("r1") + b"partial")
    assert child.lines_received == 4
    child.receive_data(b"\n")
    assert child.lines_received == 5


def test_max_line_bytes_is_passed_to_the_framer() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        Connection(Role.CHILD, max_line_bytes=1)
    child = Connection(Role.CHILD, max_line_bytes=len(request_line("r1")))
    single(child.receive_data(request_line("r1")), RequestReceived)
    rejected(child.receive_data(request_line("r22")), LineTooLong)


def test_custom_id_prefix() -> None:
    master = Connection(Role.MASTER, id_prefix="w3-")
    assert [master.send_request("a")[0] for _ in range(2)] == ["w3-1", "w3-2"]
    master.forget("w3-1")
    assert single(master.receive_data(response_line("w3-1")), UnmatchedResponse).late is True
    assert single(master.receive_data(response_line("m1")), UnmatchedResponse).late is False
    assert single(master.receive_data(response_line("w3-3")), UnmatchedResponse).late is False
    assert single(master.receive_data(response_line("w3-2")), ResponseReceived).action == "a"


def test_empty_id_prefix() -> None:
    child = Connection(Role.CHILD, id_prefix="")
    assert child.send_request("a")[0] == "1"
    assert child.send_request("a")[0] == "2"
    child.forget("1")
    assert single(child.receive_data(response_line("1")), UnmatchedResponse).late is True
    assert single(child.receive_data(response_line("c1")), UnmatchedResponse).late is False


# --- protocol versions (VER-1, VER-2) ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "version"),
    [("1.0", (1, 0)), ("1.2", (1, 2)), ("2.10", (2, 10)), ("0.0", (0, 0)), (None, (1, 0))],
)
def test_parse_version(text: str | None, version: tuple[int, int]) -> None:
    assert parse_version(text) == version


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "1.",
        ".1",
        "1.0.0",
        "v1.0",
        "1.x",
        "-1.0",
        "1.-1",
        " 1.0",
        "01.0",
        "1.00",
        "\u0661.0",
    ],
)
def test_parse_version_rejects(text: str) -> None:
    # The same rule as the schema's ProtocolVersion pattern (VER-1).
    with pytest.raises(ValueError, match=r"not a MAJOR\.MINOR protocol version"):
        parse_version(text)


def test_absent_version_from_a_model_counts_as_unstated() -> None:
    init = parse(b'{"type":"INIT","mode":"sequential"}')
    assert isinstance(init, Init)
    assert parse_version(init.protocol) == (1, 0)
    assert supports(init.protocol)


@pytest.mark.parametrize(
    ("peer", "ours", "ok"),
    [
        ("1.0", VERSION, True),
        ("1.9", VERSION, True),
        (None, VERSION, True),
        ("2.0", VERSION, False),
        ("0.9", VERSION, False),
        ("2.1", "2.0", True),
        (None, "2.0", False),
    ],
)
def test_supports(peer: str | None, ours: str, ok: bool) -> None:
    assert supports(peer, ours) is ok


def test_supports_defaults_to_our_version() -> None:
    assert VERSION == "1.1"
    assert supports("1.5") is True
    assert supports("3.0") is False


def test_version_of_a_received_init() -> None:
    master, child = pair()
    event = single(child.receive_data(master.send(INIT)), InitReceived)
    assert isinstance(event.message.protocol, str)
    assert supports(event.message.protocol)
    parsed = parse(b'{"type":"INIT","mode":"sequential","protocol":"2.0"}')
    assert isinstance(parsed, Init)
    assert isinstance(parsed.protocol, str)
    assert not supports(parsed.protocol)


def test_unified_request_model_is_what_goes_out() -> None:
    master = Connection(Role.MASTER)
    _, out = master.send_request("add", 1, timeout=9)
    assert parse(out) == RequestUnified(type="REQUEST", id="m1", action="add", data=1, timeout=9)
