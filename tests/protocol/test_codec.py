"""parse() and encode(): one line to one validated message and back (FRAME-*, MSG-*)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

import pytest
from pydantic_core import PydanticSerializationError

from peepsy.protocol import (
    EncodeError,
    ErrorPayload,
    Heartbeat,
    Init,
    InvalidJson,
    InvalidMessage,
    Issue,
    LocalProtocolError,
    Message,
    ProtocolError,
    Ready,
    RemoteProtocolError,
    RequestBody,
    RequestLegacy,
    RequestUnified,
    Response,
    Shutdown,
    UnknownMessageType,
    encode,
    json_path,
    parse,
)

T = TypeVar("T")


def raises(line: bytes | str, line_number: int | None = None) -> RemoteProtocolError:
    """The error parse() raises for ``line``; fails the test when it raises none."""
    with pytest.raises(RemoteProtocolError) as info:
        parse(line, line_number=line_number)
    return info.value


def nested(depth: int, leaf: bytes = b"1", *, objects: bool = False) -> bytes:
    if objects:
        return b'{"a":' * depth + leaf + b"}" * depth
    return b"[" * depth + leaf + b"]" * depth


def request_with_data(data: bytes) -> bytes:
    return b'{"type":"REQUEST","id":"r1","action":"act","data":' + data + b"}"


# --- valid lines -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b'{"type":"INIT","mode":"sequential"}', Init),
        (b'{"type":"READY","pid":42}', Ready),
        (b'{"type":"REQUEST","id":"m1","action":"add"}', RequestUnified),
        (b'{"type":"REQUEST","request":{"id":"m1","action":"add"}}', RequestLegacy),
        (b'{"type":"RESPONSE","id":"m1","status":200}', Response),
        (b'{"type":"HEARTBEAT","pid":1,"timestamp":2}', Heartbeat),
        (b'{"type":"SHUTDOWN"}', Shutdown),
    ],
)
def test_parse_each_message_type(line: bytes, kind: type[Any]) -> None:
    assert type(parse(line)) is kind
    assert type(parse(line.decode())) is kind


def test_parse_keeps_values() -> None:
    message = parse(
        b'{"type":"REQUEST","id":"m7","action":"add","data":{"a":[1,2.5,null,true]},'
        b'"timeout":100,"priority":-4,"x-trace":"t"}'
    )
    assert message == RequestUnified(
        type="REQUEST",
        id="m7",
        action="add",
        data={"a": [1, 2.5, None, True]},
        timeout=100,
        priority=-4,
    )


def test_parse_str_input_with_non_ascii() -> None:
    message = parse('{"type":"REQUEST","id":"é1","action":"grüß","data":"日本 😀"}')
    assert isinstance(message, RequestUnified)
    assert (message.id, message.action, message.data) == ("é1", "grüß", "日本 😀")


def test_parse_bytes_input_with_non_ascii() -> None:
    message = parse('{"type":"REQUEST","id":"é1","action":"grüß","data":"日本 😀"}'.encode())
    assert isinstance(message, RequestUnified)
    assert (message.id, message.action, message.data) == ("é1", "grüß", "日本 😀")


def test_request_member_makes_a_request_legacy() -> None:
    message = parse(b'{"type":"REQUEST","request":{"id":"a","action":"b","data":null}}')
    assert isinstance(message, RequestLegacy)
    assert message.request == RequestBody(id="a", action="b", data=None)


# --- InvalidJson (FRAME-3) -----------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b"hello world",
        b'{"type":"RESPONSE","id":"1"',
        b"{'type':'SHUTDOWN'}",
        b'{"type":"SHUTDOWN",}',
        b'{"type":"SHUTDOWN"}{"type":"SHUTDOWN"}',
        b'{"type":"SHUTDOWN"} // comment',
        b"",
        b"   ",
        b"\xef\xbb\xbf" + b'{"type":"SHUTDOWN"}',
        b'{"type":"SHUTDOWN","x":"\xff"}',
        b'{"type":"SHUTDOWN","x":"\xc3"}',
        b'{"type":"SHUTDOWN","x":"\xed\xa0\x80"}',
        b"\xff\xfe",
        b'{"type":"SHUTDOWN","x":"a\tb"}',
        b'{"type":"SHUTDOWN","x":01}',
    ],
)
def test_invalid_json(line: bytes) -> None:
    error = raises(line, 9)
    assert type(error) is InvalidJson
    assert error.rule == "FRAME-3"
    assert error.code == "PEEPSY_INVALID_JSON"
    assert error.line == 9
    assert str(error).startswith("line 9: ")
    assert error.issues == ()
    assert error.request_id is None


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity", b"[1,NaN]"])
def test_nan_and_infinity_are_invalid_json(constant: bytes) -> None:
    error = raises(b'{"type":"RESPONSE","id":"1","status":200,"data":' + constant + b"}", 4)
    assert type(error) is InvalidJson
    assert error.reason == "NaN and Infinity are not JSON numbers"
    assert error.line == 4
    assert error.request_id is None  # not a REQUEST


def test_nan_in_a_str_line_is_invalid_json() -> None:
    assert type(raises('{"type":"SHUTDOWN","x":NaN}')) is InvalidJson


def test_nan_in_a_request_keeps_its_id() -> None:
    error = raises(request_with_data(b"NaN"))
    assert type(error) is InvalidJson
    assert error.request_id == "r1"


@pytest.mark.parametrize(
    "text",
    ["NaN", "Infinity", "-Infinity", "not a NaN", "NaN and Infinity"],
)
def test_strings_holding_nan_text_are_fine(text: str) -> None:
    line = request_with_data(json.dumps(text).encode())
    message = parse(line)
    assert isinstance(message, RequestUnified)
    assert message.data == text
    assert isinstance(parse(line.decode()), RequestUnified)


def test_member_names_holding_nan_text_are_fine() -> None:
    message = parse(b'{"type":"SHUTDOWN","NaN":1,"Infinity":{"NaN":"Infinity"}}')
    assert message == Shutdown(type="SHUTDOWN")


def test_str_line_with_a_lone_surrogate_is_invalid_json() -> None:
    """A str that cannot be UTF-8 is not a JSON text (FRAME-1, FRAME-3)."""
    error = raises('{"type":"SHUTDOWN","x":"\ud800"}', 2)
    assert type(error) is InvalidJson
    assert error.line == 2
    assert error.request_id is None


# --- nesting (FRAME-3) --------------------------------------------------------------


@pytest.mark.parametrize("objects", [False, True])
def test_nesting_of_64_levels_is_accepted(objects: bool) -> None:
    message = parse(request_with_data(nested(64, objects=objects)))
    assert isinstance(message, RequestUnified)
    value: Any = message.data
    for _ in range(64):
        value = value["a"] if objects else value[0]
    assert value == 1


@pytest.mark.parametrize("depth", [1000, 100_000])
@pytest.mark.parametrize("objects", [False, True])
def test_deep_nesting_is_invalid_json_not_a_crash(depth: int, objects: bool) -> None:
    error = raises(request_with_data(nested(depth, objects=objects)), 1)
    assert type(error) is InvalidJson
    assert error.line == 1


@pytest.mark.parametrize(
    "line",
    [
        # Broken REQUEST (empty action) and deep data: the id cannot be read cheaply.
        b'{"type":"REQUEST","id":"r1","action":"","data":' + nested(1000) + b"}",
        # Deep nesting with NaN inside it.
        request_with_data(nested(1000, b"NaN")),
        # No type, deep: the untyped path re-reads the line.
        b'{"x":' + nested(1000) + b"}",
        nested(1000),
    ],
)
def test_deep_nesting_on_every_error_path(line: bytes) -> None:
    assert type(raises(line)) is InvalidJson
    assert type(raises(line.decode())) is InvalidJson


@pytest.mark.parametrize(
    ("line", "kind", "request_id"),
    [
        (request_with_data(nested(150, b"NaN")), InvalidJson, "r1"),
        (
            b'{"type":"REQUEST","id":"r1","action":"","data":' + nested(150) + b"}",
            InvalidMessage,
            "r1",
        ),
        (b'{"x":' + nested(150) + b"}", InvalidMessage, None),
    ],
)
def test_nesting_below_the_parser_limit_on_the_error_paths(
    line: bytes, kind: type[RemoteProtocolError], request_id: str | None
) -> None:
    """Lines deep enough to matter that the parser takes, so the stdlib re-reads them."""
    error = raises(line)
    assert type(error) is kind
    assert error.request_id == request_id


# --- InvalidMessage (MSG-2) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "shape", "paths"),
    [
        (b'{"type":"REQUEST","id":5,"action":"x"}', "REQUEST", ["$.id"]),
        (b'{"type":"REQUEST","id":"a"}', "REQUEST", ["$.action"]),
        (b'{"type":"REQUEST","id":"a","action":"x","timeout":0}', "REQUEST", ["$.timeout"]),
        (
            b'{"type":"REQUEST","request":{"id":"a","action":""}}',
            "legacy REQUEST",
            ["$.request.action"],
        ),
        (b'{"type":"REQUEST","request":{"action":"x"}}', "legacy REQUEST", ["$.request.id"]),
        (b'{"type":"REQUEST","request":{"id":7,"action":"x"}}', "legacy REQUEST", ["$.request.id"]),
        (b'{"type":"REQUEST","request":null,"id":"m1"}', "legacy REQUEST", ["$.request"]),
        (b'{"type":"RESPONSE","id":"a","status":"200"}', "RESPONSE", ["$.status"]),
        (b'{"type":"RESPONSE","id":"a","status":200.5}', "RESPONSE", ["$.status"]),
        (b'{"type":"RESPONSE","id":"a","status":700}', "RESPONSE", ["$.status"]),
        (b'{"type":"RESPONSE"}', "RESPONSE", ["$.id", "$.status"]),
        (
            b'{"type":"RESPONSE","id":"a","status":500,"error":"e","errorPayload":null}',
            "RESPONSE",
            ["$.errorPayload"],
        ),
        (
            b'{"type":"RESPONSE","id":"a","status":500,"errorPayload":{"name":"E"}}',
            "RESPONSE",
            ["$.errorPayload.message"],
        ),
        (b'{"type":"READY","pid":1,"actions":[1,"a"]}', "READY", ["$.actions[0]"]),
        (b'{"type":"READY","pid":1,"actions":["a","b",null]}', "READY", ["$.actions[2]"]),
        (b'{"type":"INIT","mode":"parallel"}', "INIT", ["$.mode"]),
        (b'{"type":"INIT"}', "INIT", ["$.mode"]),
        (
            b'{"type":"HEARTBEAT","pid":1,"timestamp":1,"requestsActive":-1}',
            "HEARTBEAT",
            ["$.requestsActive"],
        ),
        (b'{"type":"HEARTBEAT","pid":true,"timestamp":1}', "HEARTBEAT", ["$.pid"]),
        (b'{"type":"SHUTDOWN","timeout":null}', "SHUTDOWN", ["$.timeout"]),
    ],
)
def test_invalid_message_issues(line: bytes, shape: str, paths: list[str]) -> None:
    error = raises(line, 12)
    assert type(error) is InvalidMessage
    assert error.rule == "MSG-2"
    assert error.code == "PEEPSY_INVALID_MESSAGE"
    assert [issue.path for issue in error.issues] == paths
    assert all(issue.message for issue in error.issues)
    summary = "; ".join(f"{i.path}: {i.message}" for i in error.issues)
    assert error.reason == f"invalid {shape}: {summary}"
    assert str(error) == f"line 12: invalid {shape}: {summary}"
    assert error.line == 12


def test_invalid_message_without_line_number() -> None:
    error = raises(b'{"type":"RESPONSE","id":"a","status":"200"}')
    assert error.line is None
    assert str(error) == error.reason
    assert str(error) == "invalid RESPONSE: $.status: Input should be a valid integer"


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b"null", "null"),
        (b"true", "a boolean"),
        (b"false", "a boolean"),
        (b"42", "a number"),
        (b"-1.5e3", "a number"),
        (b'"INIT"', "a string"),
        (b"[]", "an array"),
        (b'[{"type":"SHUTDOWN"}]', "an array"),
    ],
)
def test_not_an_object(line: bytes, kind: str) -> None:
    error = raises(line, 3)
    assert type(error) is InvalidMessage
    assert error.reason == f"a message is a JSON object, not {kind}"
    assert error.issues == (Issue("$", "expected an object"),)
    assert error.line == 3
    assert error.request_id is None


@pytest.mark.parametrize(
    "line", [b"{}", b'{"id":"m1","action":"x"}', b'{"cmd":"NODE_HANDLE","Type":"INIT"}']
)
def test_missing_type(line: bytes) -> None:
    error = raises(line, 5)
    assert type(error) is InvalidMessage
    assert error.reason == "message has no `type`"
    assert error.issues == (Issue("$.type", "missing"),)
    assert error.line == 5
    assert error.request_id is None


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (b"null", "null"),
        (b"true", "a boolean"),
        (b"1", "a number"),
        (b"2.5", "a number"),
        (b'["REQUEST"]', "an array"),
        (b'{"name":"REQUEST"}', "an object"),
    ],
)
def test_type_that_is_not_a_string(value: bytes, kind: str) -> None:
    error = raises(b'{"type":' + value + b',"id":"m1","action":"x"}', 6)
    assert type(error) is InvalidMessage
    assert error.reason == f"`type` is {kind}"
    assert error.issues == (Issue("$.type", f"expected a string, got {kind}"),)
    assert error.line == 6
    assert error.request_id is None


@pytest.mark.parametrize("kind", ["PING", "request", "Request", "", "REQUEST "])
def test_unknown_message_type(kind: str) -> None:
    line = json.dumps({"type": kind, "id": "m1", "action": "x"}).encode()
    error = raises(line, 8)
    assert type(error) is UnknownMessageType
    assert isinstance(error, InvalidMessage)
    assert error.rule == "MSG-5"
    assert error.code == "PEEPSY_UNKNOWN_TYPE"
    assert error.reason == f"unknown message type {kind!r}"
    assert error.issues == (Issue("$.type", f"unknown type {kind!r}"),)
    assert error.line == 8
    assert error.request_id is None


def test_str_input_reports_the_same_errors() -> None:
    for line in [
        b"nope",
        b"[]",
        b"{}",
        b'{"type":1}',
        b'{"type":"NOPE"}',
        b'{"type":"RESPONSE","id":"a","status":"200"}',
    ]:
        from_bytes, from_str = raises(line, 1), raises(line.decode(), 1)
        assert type(from_str) is type(from_bytes)
        assert str(from_str) == str(from_bytes)
        assert from_str.issues == from_bytes.issues


# --- request ids in broken REQUESTs (REQ-7) --------------------------------------------

ID_128 = "i" * 128
ID_129 = "i" * 129


@pytest.mark.parametrize(
    ("message", "request_id"),
    [
        # unified shape
        ({"type": "REQUEST", "id": "r1", "action": ""}, "r1"),
        ({"type": "REQUEST", "id": "r1"}, "r1"),
        ({"type": "REQUEST", "id": "r1", "action": "x", "timeout": 0}, "r1"),
        ({"type": "REQUEST", "id": "r1", "action": "x", "priority": 2**31}, "r1"),
        ({"type": "REQUEST", "id": ID_128, "action": ""}, ID_128),
        ({"type": "REQUEST", "id": "é", "action": ""}, "é"),
        # legacy shape
        ({"type": "REQUEST", "request": {"id": "r2", "action": ""}}, "r2"),
        ({"type": "REQUEST", "request": {"id": "r2"}}, "r2"),
        ({"type": "REQUEST", "request": {"id": "r2", "action": "x"}, "timeout": -1}, "r2"),
        # REQ-10: with a `request` member, only its id is read; a flat id beside a
        # `request` that is not an object is not readable
        ({"type": "REQUEST", "request": None, "id": "m1", "action": "add"}, None),
        ({"type": "REQUEST", "request": [], "id": "m1", "action": "add"}, None),
        # the id itself is bad
        ({"type": "REQUEST", "id": "", "action": "x"}, None),
        ({"type": "REQUEST", "id": ID_129, "action": "x"}, None),
        ({"type": "REQUEST", "id": 5, "action": "x"}, None),
        ({"type": "REQUEST", "id": None, "action": "x"}, None),
        ({"type": "REQUEST", "id": ["r1"], "action": "x"}, None),
        ({"type": "REQUEST", "action": "x"}, None),
        ({"type": "REQUEST", "request": {"id": "", "action": "x"}}, None),
        ({"type": "REQUEST", "request": {"id": 3, "action": "x"}}, None),
        ({"type": "REQUEST", "request": {"action": "x"}, "id": "top"}, None),
        ({"type": "REQUEST", "request": "r1"}, None),
        # not a REQUEST
        ({"type": "RESPONSE", "id": "r1", "status": "200"}, None),
        ({"type": "INIT", "id": "r1"}, None),
        ({"type": "request", "id": "r1", "action": ""}, None),
        ({"id": "r1", "action": ""}, None),
    ],
)
def test_request_id_of_a_broken_line(message: dict[str, Any], request_id: str | None) -> None:
    line = json.dumps(message, ensure_ascii=False)
    for form in (line.encode(), line):
        error = raises(form)
        assert isinstance(error, InvalidMessage)
        assert error.request_id == request_id


def test_valid_json_that_is_not_an_object_has_no_request_id() -> None:
    assert raises(b'["REQUEST","r1"]').request_id is None


# --- the error classes -------------------------------------------------------------


def test_error_hierarchy() -> None:
    assert issubclass(InvalidJson, RemoteProtocolError)
    assert issubclass(UnknownMessageType, InvalidMessage)
    assert issubclass(RemoteProtocolError, ProtocolError)
    assert issubclass(EncodeError, LocalProtocolError)
    assert not issubclass(EncodeError, RemoteProtocolError)


def test_remote_error_fields() -> None:
    issue = Issue("$.a[0]", "bad")
    assert str(issue) == "$.a[0]: bad"
    error = RemoteProtocolError("boom", line=3, request_id="m1", issues=(issue,))
    assert str(error) == "line 3: boom"
    assert (error.reason, error.line, error.request_id, error.issues) == ("boom", 3, "m1", (issue,))
    assert error.rule == "MSG-1"
    assert error.code == "PEEPSY_REMOTE_PROTOCOL"
    bare = RemoteProtocolError("boom")
    assert str(bare) == "boom"
    assert (bare.line, bare.request_id, bare.issues) == (None, None, ())


def test_line_zero_is_still_a_line() -> None:
    assert str(RemoteProtocolError("boom", line=0)) == "line 0: boom"
    assert raises(b"x", 0).line == 0


# --- encode -----------------------------------------------------------------------------

PAYLOAD = ErrorPayload(
    name="PeepsyValidationError",
    message="bad data",
    code="PEEPSY_VALIDATION",
    details=[{"path": "$.a", "message": "required"}],
    stack="Traceback ...",
)

ENCODED: list[tuple[Message, bytes]] = [
    (Init(type="INIT", mode="sequential"), b'{"type":"INIT","mode":"sequential"}\n'),
    (
        Init(type="INIT", mode="concurrent", protocol="1.0", target="w1", heartbeat_interval=2000),
        b'{"type":"INIT","mode":"concurrent","protocol":"1.0","target":"w1",'
        b'"heartbeatInterval":2000}\n',
    ),
    (Ready(type="READY", pid=4242), b'{"type":"READY","pid":4242}\n'),
    (
        Ready(
            type="READY",
            pid=4242,
            protocol="1.0",
            mode="sequential",
            actions=["add", "echo"],
            implementation="peepsy-python/0.1.0",
        ),
        b'{"type":"READY","pid":4242,"protocol":"1.0","mode":"sequential",'
        b'"actions":["add","echo"],"implementation":"peepsy-python/0.1.0"}\n',
    ),
    (
        RequestUnified(type="REQUEST", id="m1", action="add"),
        b'{"type":"REQUEST","id":"m1","action":"add"}\n',
    ),
    (
        RequestUnified(
            type="REQUEST", id="m1", action="add", data={"a": 1}, timeout=5000, priority=-2
        ),
        b'{"type":"REQUEST","id":"m1","action":"add","data":{"a":1},"timeout":5000,'
        b'"priority":-2}\n',
    ),
    (
        RequestLegacy(type="REQUEST", request=RequestBody(id="m2", action="add")),
        b'{"type":"REQUEST","request":{"id":"m2","action":"add"}}\n',
    ),
    (
        RequestLegacy(
            type="REQUEST",
            request=RequestBody(id="m2", action="add", data=[1, 2]),
            timeout=10,
            priority=3,
        ),
        b'{"type":"REQUEST","request":{"id":"m2","action":"add","data":[1,2]},"timeout":10,'
        b'"priority":3}\n',
    ),
    (
        Response(type="RESPONSE", id="m1", status=200),
        b'{"type":"RESPONSE","id":"m1","status":200}\n',
    ),
    (
        Response(type="RESPONSE", id="m1", status=200, data={"sum": 3}),
        b'{"type":"RESPONSE","id":"m1","status":200,"data":{"sum":3}}\n',
    ),
    (
        Response(type="RESPONSE", id="m1", status=422, error="bad data", error_payload=PAYLOAD),
        b'{"type":"RESPONSE","id":"m1","status":422,"error":"bad data","errorPayload":'
        b'{"name":"PeepsyValidationError","message":"bad data","code":"PEEPSY_VALIDATION",'
        b'"details":[{"path":"$.a","message":"required"}],"stack":"Traceback ..."}}\n',
    ),
    (
        Heartbeat(type="HEARTBEAT", pid=1, timestamp=1764310000000),
        b'{"type":"HEARTBEAT","pid":1,"timestamp":1764310000000}\n',
    ),
    (
        Heartbeat(type="HEARTBEAT", pid=1, timestamp=2, requests_active=0),
        b'{"type":"HEARTBEAT","pid":1,"timestamp":2,"requestsActive":0}\n',
    ),
    (Shutdown(type="SHUTDOWN"), b'{"type":"SHUTDOWN"}\n'),
    (Shutdown(type="SHUTDOWN", timeout=5000), b'{"type":"SHUTDOWN","timeout":5000}\n'),
]

ENCODED_IDS = [f"{message.type}-{i}" for i, (message, _) in enumerate(ENCODED)]


@pytest.mark.parametrize(("message", "expected"), ENCODED, ids=ENCODED_IDS)
def test_encode_exact_bytes(message: Message, expected: bytes) -> None:
    assert encode(message) == expected


@pytest.mark.parametrize(("message", "expected"), ENCODED, ids=ENCODED_IDS)
def test_encoded_line_parses_back(message: Message, expected: bytes) -> None:
    line = encode(message)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert parse(line[:-1]) == message
    assert parse(line) == message  # the newline is JSON whitespace


def test_key_order_is_the_schema_order_not_the_input_order() -> None:
    scrambled = {
        "priority": 1,
        "timeout": 2,
        "data": None,
        "action": "a",
        "id": "i",
        "type": "REQUEST",
    }
    message = parse(json.dumps(scrambled).encode())
    assert encode(message) == (
        b'{"type":"REQUEST","id":"i","action":"a","data":null,"timeout":2,"priority":1}\n'
    )
    response = parse(
        b'{"errorPayload":{"code":"C","message":"m","name":"N"},"error":"m","status":500,'
        b'"id":"i","type":"RESPONSE"}'
    )
    assert encode(response) == (
        b'{"type":"RESPONSE","id":"i","status":500,"error":"m",'
        b'"errorPayload":{"name":"N","message":"m","code":"C"}}\n'
    )


def test_unknown_members_are_not_written_back() -> None:
    message = parse(b'{"x-trace":1,"type":"SHUTDOWN","later":{"a":1}}')
    assert encode(message) == b'{"type":"SHUTDOWN"}\n'


def test_absent_data_is_omitted_but_null_data_is_written() -> None:
    absent = RequestUnified(type="REQUEST", id="m1", action="a")
    null = RequestUnified(type="REQUEST", id="m1", action="a", data=None)
    assert encode(absent) == b'{"type":"REQUEST","id":"m1","action":"a"}\n'
    assert encode(null) == b'{"type":"REQUEST","id":"m1","action":"a","data":null}\n'
    assert encode(Response(type="RESPONSE", id="m1", status=200, data=None)) == (
        b'{"type":"RESPONSE","id":"m1","status":200,"data":null}\n'
    )
    details = ErrorPayload(name="E", message="m", details=None)
    assert encode(
        Response(type="RESPONSE", id="m1", status=500, error="m", error_payload=details)
    ) == (
        b'{"type":"RESPONSE","id":"m1","status":500,"error":"m",'
        b'"errorPayload":{"name":"E","message":"m","details":null}}\n'
    )


def test_non_ascii_is_written_as_utf8() -> None:
    line = encode(RequestUnified(type="REQUEST", id="é", action="grüß", data={"ключ": "日本 😀"}))
    assert line == (
        '{"type":"REQUEST","id":"é","action":"grüß","data":{"ключ":"日本 😀"}}\n'.encode()
    )
    assert b"\\u" not in line


def test_newlines_in_strings_are_escaped() -> None:
    line = encode(Response(type="RESPONSE", id="m1", status=200, data="a\nb\r\n\u2028"))
    assert (
        line == '{"type":"RESPONSE","id":"m1","status":200,"data":"a\\nb\\r\\n\u2028"}\n'.encode()
    )
    assert line.count(b"\n") == 1


def test_nan_float_is_written_as_null() -> None:
    line = encode(
        Response(type="RESPONSE", id="m1", status=200, data=[float("nan"), float("-inf")])
    )
    assert line == b'{"type":"RESPONSE","id":"m1","status":200,"data":[null,null]}\n'


@pytest.mark.parametrize("value", [object(), {1, object()}, b"\xff"])
def test_unserializable_data_raises_encode_error(value: object) -> None:
    message = Response(type="RESPONSE", id="m1", status=200, data=value)
    with pytest.raises(EncodeError) as info:
        encode(message)
    assert isinstance(info.value, LocalProtocolError)
    assert info.value.code == "PEEPSY_ENCODE"
    assert str(info.value).startswith("cannot write RESPONSE as JSON: ")
    assert isinstance(info.value.__cause__, PydanticSerializationError)


def test_unserializable_details_raise_encode_error() -> None:
    payload = ErrorPayload(name="E", message="m", details=object())
    message = Response(type="RESPONSE", id="m1", status=500, error="m", error_payload=payload)
    with pytest.raises(EncodeError, match="cannot write RESPONSE as JSON"):
        encode(message)


def test_unserializable_request_data_names_the_type() -> None:
    message = RequestLegacy(type="REQUEST", request=RequestBody(id="m1", action="a", data=object()))
    with pytest.raises(EncodeError, match="cannot write REQUEST as JSON"):
        encode(message)


# --- json_path --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        ((), "$"),
        (("status",), "$.status"),
        (("request", "id"), "$.request.id"),
        (("actions", 0), "$.actions[0]"),
        (("actions", 3), "$.actions[3]"),
        ((0,), "$[0]"),
        (("a", 1, "b", 12, 0), "$.a[1].b[12][0]"),
        (("errorPayload", "message"), "$.errorPayload.message"),
    ],
)
def test_json_path(loc: tuple[int | str, ...], path: str) -> None:
    assert json_path(loc) == path


def _frames() -> int:
    frame: FrameType | None = sys._getframe()
    count = 0
    while frame is not None:
        frame, count = frame.f_back, count + 1
    return count


def _with_little_stack(call: Callable[[], T], spare: int) -> T:
    """Run ``call`` with only about ``spare`` frames left before the recursion limit."""

    def down(n: int) -> T:
        return call() if n <= 0 else down(n - 1)

    return down(sys.getrecursionlimit() - _frames() - spare)


@pytest.mark.skipif(
    sys.version_info >= (3, 12),
    reason="from 3.12 the recursion limit counts Python frames only; json's C parser has its own",
)
def test_id_recovery_gives_up_quietly_when_the_stack_is_nearly_spent() -> None:
    """The parser takes 150 levels without Python recursion; the stdlib re-read that
    recovers the id needs one frame per level. Without them, the line is still rejected,
    only without its id."""
    line = b'{"type":"REQUEST","id":"r1","action":"","data":' + nested(150) + b"}"
    assert raises(line).request_id == "r1"  # with the stack to spare
    error = _with_little_stack(lambda: raises(line), spare=60)
    assert type(error) is InvalidMessage
    assert error.request_id is None


# --- legacy <-> unified (REQ-3) --------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b'{"type":"REQUEST","id":"m1","action":"add","data":{"a":1},"timeout":9,"priority":2}',
        b'{"type":"REQUEST","id":"m1","action":"add"}',
        b'{"type":"REQUEST","id":"m1","action":"add","data":null}',
    ],
)
def test_shapes_convert_both_ways_without_loss(line: bytes) -> None:
    from peepsy.protocol import RequestLegacy, RequestUnified, to_legacy, to_unified

    unified = parse(line)
    assert isinstance(unified, RequestUnified)
    legacy = to_legacy(unified)
    assert isinstance(legacy, RequestLegacy)
    assert to_legacy(legacy) is legacy
    back = to_unified(legacy)
    assert to_unified(back) is back
    assert encode(back) == line + b"\n"
    # The legacy form carries the same fields, nested.
    nested = json.loads(encode(legacy))
    flat = json.loads(line)
    assert nested["request"] == {k: flat[k] for k in ("id", "action", "data") if k in flat}
    assert {k: v for k, v in nested.items() if k != "request"} == {
        k: v for k, v in flat.items() if k not in ("id", "action", "data")
    }
