"""The core under the issue-8 decisions: integral floats (MSG-8), lone surrogates (FRAME-9),
readable ids (REQ-10), invalid answers (MSG-9) and line limits (FRAME-11, FRAME-12)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from peepsy._failures import error_to_wire
from peepsy.protocol import (
    DEFAULT_MAX_LINE_BYTES,
    Connection,
    Heartbeat,
    Init,
    InitReceived,
    InvalidJson,
    InvalidMessage,
    InvalidResponse,
    InvalidResponseReceived,
    LineTooLong,
    LineTooLongForPeer,
    MessageRejected,
    Ready,
    RemoteProtocolError,
    RequestLegacy,
    RequestReceived,
    RequestUnified,
    Response,
    ResponseReceived,
    Role,
    UnmatchedResponse,
    encode,
    parse,
)
from peepsy.protocol._ids import request_id_from_head

MIB = 1024 * 1024

# --- MSG-8: a number that equals an integer is that integer --------------------------------


@pytest.mark.parametrize("number", ["5000.0", "5e3", "5E3", "5000.000", "50000e-1", "5.0e3"])
def test_integral_float_timeout_is_read_as_the_integer(number: str) -> None:
    line = '{"type":"REQUEST","id":"1","action":"a","timeout":' + number + "}"
    message = parse(line.encode())
    assert isinstance(message, RequestUnified)
    assert type(message.timeout) is int
    assert message.timeout == 5000
    assert encode(message) == b'{"type":"REQUEST","id":"1","action":"a","timeout":5000}\n'


def test_integral_floats_everywhere_an_integer_is_wanted() -> None:
    legacy = parse(
        b'{"type":"REQUEST","request":{"id":"1","action":"a"},"timeout":1e2,"priority":-2.0}'
    )
    assert isinstance(legacy, RequestLegacy)
    assert (legacy.timeout, legacy.priority) == (100, -2)
    response = parse(b'{"type":"RESPONSE","id":"1","status":200.0,"data":1.0}')
    assert isinstance(response, Response)
    assert type(response.status) is int
    # data is any JSON value: its numbers are left as they came
    assert type(response.data) is float
    heartbeat = parse(b'{"type":"HEARTBEAT","pid":7.0,"timestamp":1.7643e12}')
    assert isinstance(heartbeat, Heartbeat)
    assert (heartbeat.pid, heartbeat.timestamp) == (7, 1764300000000)
    init = parse(
        b'{"type":"INIT","mode":"concurrent","maxConcurrency":1.0,"maxLineBytes":1048576.0}'
    )
    assert isinstance(init, Init)
    assert (init.max_concurrency, init.max_line_bytes) == (1, MIB)


@pytest.mark.parametrize(
    ("member", "path"),
    [
        ('"timeout":5000.5', "$.timeout"),
        ('"timeout":"5000"', "$.timeout"),
        ('"timeout":true', "$.timeout"),
        ('"timeout":0.0', "$.timeout"),
        ('"timeout":3e5,"priority":1e10', "$.priority"),
        ('"priority":2147483648.0', "$.priority"),
    ],
)
def test_what_is_not_an_integer_stays_invalid(member: str, path: str) -> None:
    line = '{"type":"REQUEST","id":"r9","action":"a",' + member + "}"
    with pytest.raises(InvalidMessage) as info:
        parse(line.encode())
    assert [i.path for i in info.value.issues] == [path]
    assert info.value.request_id == "r9"


def test_an_integral_float_beside_a_real_error_reports_only_the_error() -> None:
    with pytest.raises(InvalidMessage) as info:
        parse(b'{"type":"RESPONSE","id":"1","status":200.0,"error":7}')
    assert [i.path for i in info.value.issues] == ["$.error"]


def test_integral_float_with_nan_is_still_not_json() -> None:
    with pytest.raises(InvalidJson):
        parse(b'{"type":"REQUEST","id":"1","action":"a","timeout":5000.0,"data":NaN}')


# --- FRAME-9: lone surrogate escapes are accepted, and written back as escapes ---------------


def test_lone_surrogate_in_data_is_accepted_and_echoed_exactly() -> None:
    child = Connection(Role.CHILD)
    line = b'{"type":"REQUEST","id":"m1","action":"echo","data":{"s":"x\\ud800y","t":"\\udc00"}}\n'
    event = child.receive_data(line)[0]
    assert isinstance(event, RequestReceived)
    assert event.data == {"s": "x\ud800y", "t": "\udc00"}
    answer = child.send_response("m1", 200, event.data)
    assert (
        answer
        == b'{"type":"RESPONSE","id":"m1","status":200,"data":{"s":"x\\ud800y","t":"\\udc00"}}\n'
    )
    answer.decode("utf-8")  # valid UTF-8: never raw surrogate bytes


def test_a_surrogate_pair_stays_one_character_and_is_written_as_utf8() -> None:
    message = parse(b'{"type":"REQUEST","id":"1","action":"a","data":"\\ud83c\\udf89\\ud800"}')
    assert isinstance(message, RequestUnified)
    assert message.data == "\U0001f389\ud800"
    assert encode(message).endswith('"data":"\U0001f389\\ud800"}\n'.encode())


def test_lone_surrogates_in_the_id_and_action_are_kept() -> None:
    child = Connection(Role.CHILD)
    line = b'{"type":"REQUEST","id":"i\\ud800","action":"a\\udfff","data":null}\n'
    event = child.receive_data(line)[0]
    assert isinstance(event, RequestReceived)
    assert (event.id, event.action) == ("i\ud800", "a\udfff")
    assert child.send_response("i\ud800", 200, 1) == (
        b'{"type":"RESPONSE","id":"i\\ud800","status":200,"data":1}\n'
    )


def test_failure_answer_to_an_id_with_a_lone_surrogate() -> None:
    child = Connection(Role.CHILD)
    child.receive_data(b'{"type":"REQUEST","id":"\\udc00","action":"a"}\n')
    line = child.send_response("\udc00", 404, error="no such action")
    assert line.startswith(b'{"type":"RESPONSE","id":"\\udc00","status":404,')
    assert json.loads(line)["id"] == "\udc00"


def test_a_request_with_a_lone_surrogate_goes_out_escaped() -> None:
    master = Connection(Role.MASTER)
    _, line = master.send_request("a\ud800", {"k": ["\udbff"]}, legacy=False)
    assert b'"action":"a\\ud800"' in line
    assert b'"data":{"k":["\\udbff"]}' in line
    _, legacy = master.send_request("a", "\ud800", legacy=True)
    assert b'"data":"\\ud800"' in legacy


def test_a_lone_surrogate_in_an_object_key_round_trips() -> None:
    message = parse(b'{"type":"RESPONSE","id":"1","status":200,"data":{"\\ud800":1.5}}')
    assert encode(message) == b'{"type":"RESPONSE","id":"1","status":200,"data":{"\\ud800":1.5}}\n'


def test_invalid_message_with_a_lone_surrogate_keeps_its_readable_id() -> None:
    with pytest.raises(InvalidMessage) as info:
        parse(b'{"type":"REQUEST","id":"r\\ud800","action":"","data":"\\ud800"}')
    assert info.value.request_id == "r\ud800"
    assert [i.path for i in info.value.issues] == ["$.action"]


@pytest.mark.parametrize(
    "line",
    [
        b'{"type":"REQUEST","id":"1","action":"a","data":"\\ud800"',  # cut short
        b'{"type":"REQUEST","id":"1","action":"a","data":"\\\\ud800\\x"}',  # bad escape
        b'{"type":"REQUEST","id":"1","action":"a","data":"\\ud800\xff"}',  # not UTF-8
        b'{"type":"REQUEST","id":"1","action":"a","data":"\xed\xa0\x80"}',  # encoded surrogate
    ],
)
def test_other_breakage_beside_a_surrogate_escape_is_still_invalid_json(line: bytes) -> None:
    with pytest.raises(InvalidJson):
        parse(line)


def test_a_lone_surrogate_that_is_no_string_is_rejected_as_before() -> None:
    with pytest.raises(InvalidMessage):
        parse(b'["\\ud800"]')


# --- REQ-10: the readable id ------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        {"type": "REQUEST", "request": None, "id": "m1", "action": "a"},
        {"type": "REQUEST", "id": 5, "action": "a", "timeout": 0},
        {"type": "REQUEST", "id": "i" * 129, "action": "a"},
        {"type": "REQUEST", "id": "\U0001f389" * 129, "action": ""},
    ],
)
def test_unreadable_ids_are_owed_nothing(message: dict[str, Any]) -> None:
    child = Connection(Role.CHILD)
    event = child.receive_data(json.dumps(message).encode() + b"\n")[0]
    assert isinstance(event, MessageRejected)
    assert event.error.request_id is None
    assert child.owed == frozenset()


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_ids_count_code_points(ensure_ascii: bool) -> None:
    rid = "\U0001f389" * 128  # 512 UTF-8 bytes, 256 UTF-16 units, 128 characters
    child = Connection(Role.CHILD)
    line = json.dumps({"type": "REQUEST", "id": rid, "action": "a"}, ensure_ascii=ensure_ascii)
    event = child.receive_data(line.encode() + b"\n")[0]
    assert isinstance(event, RequestReceived)
    assert event.id == rid
    assert child.send_response(rid, 404, error="no").startswith(
        b'{"type":"RESPONSE","id":"' + rid.encode() + b'"'
    )


def test_a_broken_request_with_128_code_points_is_owed_a_400() -> None:
    rid = "\U0001f389" * 128
    child = Connection(Role.CHILD)
    line = json.dumps({"type": "REQUEST", "id": rid, "action": ""}).encode() + b"\n"
    event = child.receive_data(line)[0]
    assert isinstance(event, MessageRejected)
    assert event.error.request_id == rid


# --- MSG-9: an invalid answer to an outstanding request fails it at once ---------------------


@pytest.mark.parametrize("role", [Role.MASTER, Role.CHILD])
@pytest.mark.parametrize(
    "answer",
    [
        '{"type":"RESPONSE","id":"%s","status":"200"}',
        '{"type":"RESPONSE","id":"%s","status":200,"error":5}',
        '{"type":"RESPONSE","id":"%s"}',
        '{"type":"RESPONSE","id":"%s","status":200,"data":NaN}',
    ],
)
def test_invalid_answer_to_an_outstanding_request(role: Role, answer: str) -> None:
    conn = Connection(role)
    rid, _ = conn.send_request("echo", 1)
    other, _ = conn.send_request("echo", 2)
    event = conn.receive_data((answer % rid).encode() + b"\n")[0]
    assert isinstance(event, InvalidResponseReceived)
    assert (event.id, event.action) == (rid, "echo")
    assert isinstance(event.error, InvalidResponse)
    assert isinstance(event.error.__cause__, RemoteProtocolError)
    assert rid in str(event.error)
    assert "invalid" in str(event.error)
    assert event.error.code == "PEEPSY_INVALID_RESPONSE"
    assert conn.outstanding == 1
    # the request is over: a valid answer that still comes is late
    late = conn.receive_data(b'{"type":"RESPONSE","id":"%s","status":200}\n' % rid.encode())[0]
    assert isinstance(late, UnmatchedResponse)
    assert late.late
    ok = conn.receive_data(b'{"type":"RESPONSE","id":"%s","status":200}\n' % other.encode())[0]
    assert isinstance(ok, ResponseReceived)


@pytest.mark.parametrize(
    "answer",
    [
        b'{"type":"RESPONSE","id":"m9","status":"200"}',  # not one of ours
        b'{"type":"RESPONSE","id":1,"status":"200"}',  # not a string id
        b'{"type":"RESPONSE","status":"200"}',
        b'{"type":"RESPONSE","id":"m1","status":200',  # not JSON: no id can be read
    ],
)
def test_other_invalid_answers_are_only_rejected(answer: bytes) -> None:
    master = Connection(Role.MASTER)
    master.send_request("echo", 1)
    event = master.receive_data(answer + b"\n")[0]
    assert isinstance(event, MessageRejected)
    assert master.outstanding == 1


# --- FRAME-11: the peer's line limit ----------------------------------------------------------


def _child_with_init(**init: Any) -> Connection:
    child = Connection(Role.CHILD)
    message = Init.model_validate({"type": "INIT", "mode": "sequential", **init})
    event = child.receive_data(encode(message))[0]
    assert isinstance(event, InitReceived)
    return child


def test_the_first_init_states_the_masters_limit_and_a_later_one_does_not() -> None:
    child = _child_with_init(maxLineBytes=2 * MIB)
    assert child.peer_max_line_bytes == 2 * MIB
    child.receive_data(b'{"type":"INIT","mode":"sequential","maxLineBytes":%d}\n' % (4 * MIB))
    assert child.peer_max_line_bytes == 2 * MIB
    # A first INIT that states none leaves the assumed limit; a later one changes nothing.
    silent = _child_with_init()
    assert silent.peer_max_line_bytes == DEFAULT_MAX_LINE_BYTES
    silent.receive_data(b'{"type":"INIT","mode":"sequential","maxLineBytes":%d}\n' % (4 * MIB))
    assert silent.peer_max_line_bytes == DEFAULT_MAX_LINE_BYTES


def test_the_first_ready_states_the_childs_limit() -> None:
    master = Connection(Role.MASTER)
    ready = Ready(type="READY", pid=1, max_line_bytes=MIB)
    master.receive_data(encode(ready))
    assert master.peer_max_line_bytes == MIB
    master.receive_data(encode(Ready(type="READY", pid=1, max_line_bytes=3 * MIB)))
    assert master.peer_max_line_bytes == MIB


def test_a_limit_given_up_front_holds_until_the_peer_states_its_own() -> None:
    child = Connection(Role.CHILD, peer_max_line_bytes=3 * MIB)
    assert child.peer_max_line_bytes == 3 * MIB
    child.receive_data(b'{"type":"INIT","mode":"sequential","maxLineBytes":%d}\n' % MIB)
    assert child.peer_max_line_bytes == MIB


def _request_of(size: int, legacy: bool = False) -> tuple[Connection, str, bytes]:
    """A master whose child accepts lines of ``size`` bytes, and a request line of exactly
    that size."""
    master = Connection(Role.MASTER, peer_max_line_bytes=size)
    probe = Connection(Role.MASTER)
    _, empty = probe.send_request("echo", "", legacy=legacy)
    data = "x" * (size - len(empty))
    return master, data, empty


@pytest.mark.parametrize("legacy", [False, True])
def test_a_request_that_fits_exactly_is_sent(legacy: bool) -> None:
    master, data, _ = _request_of(MIB, legacy)
    _, line = master.send_request("echo", data, legacy=legacy)
    assert len(line) == MIB
    assert master.outstanding == 1


@pytest.mark.parametrize("legacy", [False, True])
def test_a_request_one_byte_too_long_is_not_sent(legacy: bool) -> None:
    master, data, _ = _request_of(MIB, legacy)
    with pytest.raises(LineTooLongForPeer) as info:
        master.send_request("echo", data + "y", legacy=legacy)
    assert info.value.limit == MIB
    assert info.value.size == MIB + 1
    assert str(MIB) in str(info.value)
    assert info.value.code == "PEEPSY_LINE_TOO_LONG"
    assert master.outstanding == 0
    rid, _ = master.send_request("echo", 1, legacy=legacy)
    assert rid == "m1"  # the refused request used no id


def test_a_response_that_would_be_too_long_becomes_a_413() -> None:
    child = _child_with_init(maxLineBytes=MIB)
    child.receive_data(b'{"type":"REQUEST","id":"m1","action":"echo"}\n')
    child.receive_data(b'{"type":"REQUEST","id":"m2","action":"echo"}\n')
    fits = "x" * (MIB - len(b'{"type":"RESPONSE","id":"m1","status":200,"data":""}\n'))
    assert len(child.send_response("m1", 200, fits)) == MIB
    line = child.send_response("m2", 200, fits + "x")
    answer = json.loads(line)
    assert answer["status"] == 413
    assert answer["errorPayload"]["name"] == "PeepsyLineTooLongError"
    assert answer["errorPayload"]["code"] == "PEEPSY_LINE_TOO_LONG"
    assert str(MIB) in answer["error"]
    assert answer["error"] == answer["errorPayload"]["message"]
    assert child.owed == frozenset()


def test_a_failure_that_would_be_too_long_becomes_a_413() -> None:
    child = _child_with_init(maxLineBytes=MIB)
    child.receive_data(b'{"type":"REQUEST","id":"m1","action":"echo"}\n')
    line = child.send_response("m1", 500, error="e" * MIB)
    assert json.loads(line)["status"] == 413


def test_without_a_stated_limit_long_lines_go_out() -> None:
    child = Connection(Role.CHILD)
    child.receive_data(b'{"type":"REQUEST","id":"m1","action":"echo"}\n')
    assert len(child.send_response("m1", 200, "x" * (2 * MIB))) > 2 * MIB


# --- FRAME-12: an over-long REQUEST whose id shows at the line's start -----------------------


@pytest.mark.parametrize(
    ("chunks", "rid"),
    [
        ([b'{"type":"REQUEST","id":"m7","action":"echo","data":"' + b"x" * MIB + b'"}\n'], "m7"),
        (
            [
                b'{"type":"REQUEST","request":{"id":"m8","action":"echo","data":"',
                b"x" * MIB,
                b'"}}\n',
            ],
            "m8",
        ),
        ([b'{"type":"REQUEST","id":"m9","action":"', b"x" * 100, b"y" * MIB, b'"}\n'], "m9"),
        ([b' {"type" : "REQUEST", "id":"a\\"b","data":"' + b"x" * MIB + b'"}\n'], 'a"b'),
    ],
)
def test_an_over_long_request_with_a_readable_start_is_owed_an_answer(
    chunks: list[bytes], rid: str
) -> None:
    child = Connection(Role.CHILD, max_line_bytes=MIB)
    events = [e for chunk in chunks for e in child.receive_data(chunk)]
    assert len(events) == 1
    assert isinstance(events[0], MessageRejected)
    error = events[0].error
    assert isinstance(error, LineTooLong)
    assert error.request_id == rid
    assert child.owed == frozenset({rid})
    status, payload = error_to_wire(error)
    assert status == 413
    assert (payload.name, payload.code) == ("PeepsyLineTooLongError", "PEEPSY_LINE_TOO_LONG")
    assert str(MIB) in payload.message
    assert b'"status":413' in child.send_response(rid, status, error_payload=payload)


def test_an_over_long_line_of_a_buffered_start_is_read_too() -> None:
    child = Connection(Role.CHILD, max_line_bytes=MIB)
    assert child.receive_data(b'{"type":"REQUEST","id":"m3",') == []
    events = child.receive_data(b'"data":"' + b"x" * MIB + b'"}\n{"type":"SHUTDOWN"}\n')
    assert isinstance(events[0], MessageRejected)
    assert events[0].error.request_id == "m3"


def test_an_over_long_line_completed_by_a_later_chunk_is_read_too() -> None:
    child = Connection(Role.CHILD, max_line_bytes=MIB)
    assert child.receive_data(b'{"type":"REQUEST","id":"m4","data":"' + b"x" * (MIB - 100)) == []
    events = child.receive_data(b"x" * 200 + b'"}\n')
    assert isinstance(events[0], MessageRejected)
    assert events[0].error.request_id == "m4"


def test_an_over_long_request_reusing_an_owed_id_is_owed_nothing_more() -> None:
    child = Connection(Role.CHILD, max_line_bytes=MIB)
    child.receive_data(b'{"type":"REQUEST","id":"m1","action":"sleep"}\n')
    events = child.receive_data(b'{"type":"REQUEST","id":"m1","data":"' + b"x" * MIB + b'"}\n')
    assert isinstance(events[0], MessageRejected)
    assert events[0].error.request_id is None


@pytest.mark.parametrize(
    "head",
    [
        b'{"id":"m1","type":"REQUEST"',  # the id before the type
        b'{"type":"RESPONSE","id":"m1"',
        b'{"type":"REQUEST","id":5',
        b'{"type":"REQUEST","id":""',
        b'{"type":"REQUEST","id":"' + b"i" * 129 + b'"',
        b'{"type":"REQUEST","id":"m1',  # the id runs past the kept start
        b'{"type":"REQUEST","id":"\xff"',
        b"",
    ],
)
def test_starts_that_show_no_id(head: bytes) -> None:
    assert request_id_from_head(head) is None


def test_the_kept_start_is_bounded() -> None:
    child = Connection(Role.CHILD, max_line_bytes=MIB)
    events = child.receive_data(b"[" + b" " * (2 * MIB) + b"]\n")
    error = events[0].error  # type: ignore[union-attr]
    assert isinstance(error, LineTooLong)
    assert 0 < len(error.head) <= 2048
    assert error.request_id is None


# --- the slow writer keeps what the fast one writes -------------------------------------------


def test_data_with_a_lone_surrogate_and_other_python_values() -> None:
    import datetime

    body = Heartbeat(type="HEARTBEAT", pid=1, timestamp=2)
    data = {"s": "\ud800", "d": datetime.date(2026, 1, 2), "m": body, "t": (1, float("nan"))}
    line = Response(type="RESPONSE", id="1", status=200, data=data)
    assert encode(line) == (
        b'{"type":"RESPONSE","id":"1","status":200,"data":{"s":"\\ud800","d":"2026-01-02",'
        b'"m":{"type":"HEARTBEAT","pid":1,"timestamp":2},"t":[1,null]}}\n'
    )


def test_data_with_a_lone_surrogate_and_something_unwritable() -> None:
    from peepsy.protocol import EncodeError

    message = Response(type="RESPONSE", id="1", status=200, data={"s": "\ud800", "o": object()})
    with pytest.raises(EncodeError):
        encode(message)


def test_lone_surrogates_in_nested_and_listed_strings_are_kept() -> None:
    ready = parse(b'{"type":"READY","pid":1,"actions":["ok","a\\ud800"]}')
    assert isinstance(ready, Ready)
    assert ready.actions == ["ok", "a\ud800"]
    failed = parse(
        b'{"type":"RESPONSE","id":"1","status":500,"error":"\\udc00",'
        b'"errorPayload":{"name":"E","message":"\\udc00"}}'
    )
    assert isinstance(failed, Response)
    assert failed.error == "\udc00"
    assert failed.error_payload.message == "\udc00"  # type: ignore[union-attr]
    assert b'"errorPayload":{"name":"E","message":"\\udc00"}' in encode(failed)
