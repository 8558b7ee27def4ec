"""No silent limits (issue 10): what a receiver cannot read is refused when sent, with an
error naming the limit, and what a receiver must drop is answered when its id shows.
Lines are written as a Node peer writes them (compact ``JSON.stringify``)."""

from __future__ import annotations

import functools
import json
from typing import Any

import msgspec
import pytest
from pydantic_core import from_json, to_json

from peepsy import EncodeError, LocalProtocolError, PeepsyError
from peepsy._failures import error_to_wire
from peepsy.protocol import (
    DEFAULT_MAX_LINE_BYTES,
    Connection,
    ErrorPayload,
    InvalidJson,
    InvalidResponseReceived,
    LineTooLong,
    LineTooLongForPeer,
    MessageRejected,
    NestingTooDeepForPeer,
    NumberTooLongForPeer,
    Ready,
    RequestLegacy,
    RequestReceived,
    RequestUnified,
    Response,
    ResponseReceived,
    Role,
    _hot,
    encode,
    parse,
)
from peepsy.protocol._limits import MAX_DEPTH, MAX_INT_DIGITS, depth, has_long_integer

MIB = 1024 * 1024


def nested(levels: int, inner: Any = 1) -> Any:
    """``inner`` inside ``levels`` lists."""
    return functools.reduce(lambda value, _: [value], range(levels), inner)


def deep_json(levels: int) -> bytes:
    return b"[" * levels + b"1" + b"]" * levels


def one(events: list[Any]) -> Any:
    assert len(events) == 1, events
    return events[0]


def master_with(*actions: str) -> tuple[Connection, list[str]]:
    master = Connection(Role.MASTER)
    return master, [master.send_request(action)[0] for action in actions]


# --- the numbers are the decoders' own ------------------------------------------------------


def test_max_depth_is_what_pydantics_serializer_writes() -> None:
    to_json(nested(MAX_DEPTH))
    with pytest.raises(ValueError, match="depth"):
        to_json(nested(MAX_DEPTH + 1))


@pytest.mark.parametrize("decode", [from_json, msgspec.json.Decoder().decode])
def test_max_int_digits_is_what_both_decoders_read(decode: Any) -> None:
    decode(b"9" * MAX_INT_DIGITS)
    with pytest.raises((ValueError, msgspec.DecodeError)):
        decode(b"9" * (MAX_INT_DIGITS + 1))


def test_a_negative_integer_msgspec_refuses_is_read_by_the_models() -> None:
    # msgspec counts the sign as a digit; the line then goes to the models, which judge.
    line = b'{"type":"RESPONSE","id":"m1","status":200,"data":-' + b"9" * MAX_INT_DIGITS + b"}"
    assert _hot.read(line) is None
    message = parse(line)
    assert isinstance(message, Response)
    assert message.data == -int("9" * MAX_INT_DIGITS)


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        (b"1", 0),
        (b"[]", 1),
        (b'{"a":[{"b":[]}],"c":{}}', 4),
        (b'["[[[[", "]", "\\\\", "\\"[["]', 1),
        (b'{"k\\\\\\"[":[1]}', 2),
    ],
)
def test_depth_counts_containers_and_not_brackets_in_strings(text: bytes, levels: int) -> None:
    assert depth(text) == levels


# --- nesting: every receiver reads what a sender writes ------------------------------------

DEEPEST = nested(MAX_DEPTH)


@pytest.mark.parametrize("legacy", [False, True])
def test_the_deepest_request_written_is_read_on_both_paths(legacy: bool) -> None:
    # The flat shape is read on the hot path (msgspec), the legacy one by the models,
    # whose parser stops at 200 levels: both take what the serializer writes.
    _, line = Connection(Role.MASTER).send_request("echo", DEEPEST, legacy=legacy)
    event = one(Connection(Role.CHILD).receive_data(line))
    assert isinstance(event, RequestReceived)
    assert event.data == DEEPEST
    message = parse(line.rstrip(b"\n"))
    assert isinstance(message, RequestLegacy if legacy else RequestUnified)
    body = message.request if isinstance(message, RequestLegacy) else message
    assert body.data == DEEPEST


def test_the_deepest_failure_details_and_a_deep_line_with_a_surrogate_are_read() -> None:
    child = Connection(Role.CHILD)
    child.receive_data(b'{"type":"REQUEST","id":"m1","action":"echo"}\n')
    payload = ErrorPayload(name="E", message="m", details=nested(MAX_DEPTH - 1))
    line = child.send_response("m1", 500, error_payload=payload)
    master, _ = master_with("echo")
    event = one(master.receive_data(line))
    assert isinstance(event, ResponseReceived)
    assert event.response.error_payload == payload
    # A lone surrogate sends the line to the stdlib's parser: it reads as deep.
    _, line = Connection(Role.MASTER).send_request("echo", nested(MAX_DEPTH, "\ud800"))
    assert b"\\ud800" in line
    event = one(Connection(Role.CHILD).receive_data(line))
    assert isinstance(event, RequestReceived)
    assert event.data == nested(MAX_DEPTH, "\ud800")


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("inner", [1, "\ud800"], ids=["plain", "surrogate"])
@pytest.mark.parametrize("extra", [1, 500])
def test_data_deeper_than_peepsy_writes_is_refused(legacy: bool, inner: Any, extra: int) -> None:
    master = Connection(Role.MASTER)
    with pytest.raises(NestingTooDeepForPeer) as caught:
        master.send_request("echo", nested(MAX_DEPTH + extra, inner), legacy=legacy)
    assert caught.value.limit == MAX_DEPTH
    assert str(MAX_DEPTH) in str(caught.value)
    assert isinstance(caught.value, EncodeError)
    assert master.outstanding == 0
    # The id was not used up: the next request is m1.
    assert master.send_request("echo")[0] == "m1"


def test_many_containers_side_by_side_are_not_deep() -> None:
    master = Connection(Role.MASTER)
    data = [{"id": i, "tags": [[i]]} for i in range(1000)]
    _, line = master.send_request("echo", data)
    assert one(Connection(Role.CHILD).receive_data(line)).data == data


def test_brackets_inside_strings_are_not_nesting() -> None:
    master = Connection(Role.MASTER)
    data = {"text": "[" * 5000 + "{" * 5000, "quote": '"[\\'}
    _, line = master.send_request("echo", data)
    assert one(Connection(Role.CHILD).receive_data(line)).data == data


def test_an_integer_longer_than_a_receiver_reads_is_refused() -> None:
    master = Connection(Role.MASTER)
    fits = 10**MAX_INT_DIGITS - 1
    _, line = master.send_request("echo", [fits, -fits])
    assert one(Connection(Role.CHILD).receive_data(line)).data == [fits, -fits]
    with pytest.raises(NumberTooLongForPeer) as caught:
        master.send_request("echo", {"n": [1, -(10**MAX_INT_DIGITS)]})
    assert caught.value.limit == MAX_INT_DIGITS
    assert str(MAX_INT_DIGITS) in str(caught.value)
    assert master.outstanding == 1


def test_digits_inside_a_string_are_not_an_integer() -> None:
    master = Connection(Role.MASTER)
    data = ["1" * 10_000, '\\"' + "2" * 5000]
    _, line = master.send_request("echo", data)
    assert not has_long_integer(line)
    assert one(Connection(Role.CHILD).receive_data(line)).data == data


def test_an_answer_the_master_could_not_read_is_refused_and_can_be_replaced() -> None:
    child = Connection(Role.CHILD)
    one(child.receive_data(b'{"type":"REQUEST","id":"m1","action":"echo"}\n'))
    with pytest.raises(NestingTooDeepForPeer):
        child.send_response("m1", 200, nested(MAX_DEPTH + 1))
    with pytest.raises(NumberTooLongForPeer):
        child.send_response("m1", 200, 10**5000)
    # Still owed, so that the failure can be sent instead (the session does so).
    assert child.owed == {"m1"}
    status, payload = error_to_wire(NumberTooLongForPeer("too long", limit=MAX_INT_DIGITS))
    line = child.send_response("m1", status, error_payload=payload)
    assert json.loads(line)["errorPayload"]["code"] == "PEEPSY_NUMBER_TOO_LONG"


def test_each_limit_has_its_own_error_and_code() -> None:
    errors = [
        NestingTooDeepForPeer("x", limit=1),
        NumberTooLongForPeer("x", limit=1),
        LineTooLongForPeer("x", size=2, limit=1),
    ]
    assert len({e.code for e in errors}) == 3
    assert all(isinstance(e, LocalProtocolError) and isinstance(e, PeepsyError) for e in errors)


# --- the peer's line limit is known before its READY ----------------------------------------


def test_before_ready_the_master_assumes_the_child_reads_what_it_reads() -> None:
    master = Connection(Role.MASTER)
    assert master.peer_max_line_bytes == DEFAULT_MAX_LINE_BYTES
    with pytest.raises(LineTooLongForPeer) as caught:
        master.send_request("echo", "x" * DEFAULT_MAX_LINE_BYTES)
    assert caught.value.limit == DEFAULT_MAX_LINE_BYTES
    assert Connection(Role.CHILD, max_line_bytes=32 * MIB).peer_max_line_bytes == 32 * MIB
    # Never less than what every receiver reads (FRAME-6).
    assert Connection(Role.MASTER, max_line_bytes=2048).peer_max_line_bytes == MIB


def test_a_stated_limit_replaces_the_assumed_one() -> None:
    master = Connection(Role.MASTER, peer_max_line_bytes=MIB)
    data = "x" * (MIB + 10)
    with pytest.raises(LineTooLongForPeer):
        master.send_request("echo", data)
    master.receive_data(encode(Ready(type="READY", pid=1, max_line_bytes=2 * MIB)))
    master.send_request("echo", data)


def test_a_ready_without_a_limit_keeps_the_assumed_one() -> None:
    master = Connection(Role.MASTER, peer_max_line_bytes=MIB)
    master.receive_data(b'{"type":"READY","pid":1}\n')
    assert master.peer_max_line_bytes == MIB


# --- the receiver answers what it cannot read ------------------------------------------------


TOO_DEEP_FOR_ANY_PARSER = deep_json(5000)  # beyond Python's recursion limit


@pytest.mark.parametrize(
    "data",
    [TOO_DEEP_FOR_ANY_PARSER, b'["\\ud800",' + TOO_DEEP_FOR_ANY_PARSER + b"]", b"9" * 5000],
    ids=["too-deep", "too-deep-with-a-surrogate", "long-int"],
)
@pytest.mark.parametrize("legacy", [False, True])
def test_a_request_no_parser_reads_is_answered_400(data: bytes, legacy: bool) -> None:
    if legacy:
        line = b'{"type":"REQUEST","request":{"id":"7","action":"echo","data":' + data + b"}}\n"
    else:
        line = b'{"type":"REQUEST","id":"7","action":"echo","data":' + data + b"}\n"
    child = Connection(Role.CHILD)
    event = one(child.receive_data(line))
    assert isinstance(event, MessageRejected)
    assert isinstance(event.error, InvalidJson)
    assert event.error.request_id == "7"
    assert child.owed == {"7"}
    assert error_to_wire(event.error)[0] == 400


@pytest.mark.parametrize(
    "data", [TOO_DEEP_FOR_ANY_PARSER, b'["\\ud800",' + b"9" * 5000 + b"]", b"9" * 5000]
)
def test_an_answer_no_parser_reads_fails_its_request_at_once(data: bytes) -> None:
    master, _ = master_with("echo")
    line = b'{"type":"RESPONSE","id":"m1","status":200,"data":' + data + b"}\n"
    event = one(master.receive_data(line))
    assert isinstance(event, InvalidResponseReceived)
    assert event.id == "m1"
    assert master.outstanding == 0


def test_a_deep_line_that_is_also_bad_json_is_only_rejected() -> None:
    line = b'{"type":"REQUEST","id":"7","action":"echo","data":' + deep_json(300)[:-1] + b"}"
    event = one(Connection(Role.CHILD).receive_data(line + b"\n"))
    assert isinstance(event, MessageRejected)
    assert event.error.request_id is None


def test_an_over_long_answer_with_a_visible_id_fails_its_request_at_once() -> None:
    master = Connection(Role.MASTER, max_line_bytes=MIB)
    master.send_request("a")
    master.send_request("b")
    padding = b"x" * MIB
    events = master.receive_data(
        b'{"type":"RESPONSE","id":"m2","status":200,"data":"' + padding + b'"}\n'
        b'{"type":"RESPONSE","id":"m1","status":200,"data":1}\n'
    )
    assert isinstance(events[0], InvalidResponseReceived)
    assert events[0].id == "m2"
    assert isinstance(events[0].error.__cause__, LineTooLong)
    assert isinstance(events[1], ResponseReceived)


def test_an_over_long_answer_to_nothing_outstanding_is_only_rejected() -> None:
    master = Connection(Role.MASTER, max_line_bytes=MIB)
    line = b'{"type":"RESPONSE","id":"m9","status":200,"data":"' + b"x" * MIB + b'"}\n'
    event = one(master.receive_data(line))
    assert isinstance(event, MessageRejected)
    assert isinstance(event.error, LineTooLong)


# --- 1e999: a number beyond a double is invalid (FRAME-3) ------------------------------------


OVERFLOWS = [b"1e999", b"-1e999", b"1E+400", b"2.5e0309", b"1" + b"0" * 400 + b".0"]


@pytest.mark.parametrize("number", OVERFLOWS)
def test_a_request_with_a_number_beyond_a_double_is_answered_400(number: bytes) -> None:
    child = Connection(Role.CHILD)
    line = b'{"type":"REQUEST","id":"7","action":"echo","data":{"n":[' + number + b"]}}\n"
    event = one(child.receive_data(line))
    assert isinstance(event, MessageRejected)
    assert isinstance(event.error, InvalidJson)
    assert event.error.request_id == "7"
    assert error_to_wire(event.error)[0] == 400


@pytest.mark.parametrize("number", OVERFLOWS)
def test_an_answer_with_a_number_beyond_a_double_fails_its_request(number: bytes) -> None:
    master, _ = master_with("echo")
    line = b'{"type":"RESPONSE","id":"m1","status":200,"data":' + number + b"}\n"
    event = one(master.receive_data(line))
    assert isinstance(event, InvalidResponseReceived)
    assert "double" in str(event.error)


@pytest.mark.parametrize("number", OVERFLOWS)
def test_both_paths_refuse_a_number_beyond_a_double(number: bytes) -> None:
    line = b'{"type":"RESPONSE","id":"m1","status":200,"data":' + number + b"}"
    assert _hot.read(line) is None
    with pytest.raises(InvalidJson):
        parse(line)
    with pytest.raises(InvalidJson):
        parse(line.decode())


@pytest.mark.parametrize(
    "number", [b"1e308", b"1.7976931348623157e308", b"1e-400", b"1e0001", b"123456789" * 40]
)
def test_numbers_within_a_double_or_exact_integers_are_kept(number: bytes) -> None:
    master, _ = master_with("echo")
    line = b'{"type":"RESPONSE","id":"m1","status":200,"data":["e999",' + number + b"]}\n"
    event = one(master.receive_data(line))
    assert isinstance(event, ResponseReceived)
    assert event.data == ["e999", json.loads(number)]


# --- action names -----------------------------------------------------------------------------


@pytest.mark.parametrize("action", [["echo"], {"a": 1}, 5, None, "", "x" * 257])
@pytest.mark.parametrize("legacy", [False, True])
def test_an_action_that_cannot_be_a_name_is_a_peepsy_error(action: Any, legacy: bool) -> None:
    master = Connection(Role.MASTER)
    with pytest.raises(LocalProtocolError, match=r"an action is a string of 1\.\.256"):
        master.send_request(action, legacy=legacy)
    assert master.outstanding == 0


def test_a_line_deeper_than_pydantics_parser_is_read_alike_on_both_paths() -> None:
    # Once, msgspec's hot path took 600 levels and the models dropped them.
    line = b'{"type":"REQUEST","id":"7","action":"echo","data":' + deep_json(600) + b"}"
    fast = _hot.read(line)
    assert isinstance(fast, _hot.HotRequest)
    message = parse(line)
    assert isinstance(message, RequestUnified)
    assert message.data == fast.data


@pytest.mark.parametrize("offset", [0, 1, 2150, 4298, 4299, 4300, 9000, 12_000])
@pytest.mark.parametrize("length", [MAX_INT_DIGITS, MAX_INT_DIGITS + 1])
def test_a_long_run_of_digits_is_found_wherever_it_is(offset: int, length: int) -> None:
    line = b"[" + b"1," * (offset // 2) + b"7" * length + b"]"
    assert has_long_integer(line) is (length > MAX_INT_DIGITS)


def test_many_short_numbers_are_not_a_long_one() -> None:
    line = b"[" + b",".join(b"%d" % (10**15 + i) for i in range(5000)) + b"]"
    assert not has_long_integer(line)


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 5000])
def test_the_stdlibs_writing_of_a_lone_surrogate_is_held_to_the_same_depth(levels: int) -> None:
    # The surrogate comes first, so pydantic's serializer gives up on it before it sees
    # the depth, and the stdlib, which goes deeper, writes the line.
    master = Connection(Role.MASTER)
    with pytest.raises(NestingTooDeepForPeer):
        master.send_request("echo", ["\ud800", nested(levels)])
    _, line = master.send_request("echo", ["\ud800", nested(MAX_DEPTH - 1)])
    assert one(Connection(Role.CHILD).receive_data(line)).data == ["\ud800", nested(MAX_DEPTH - 1)]


@pytest.mark.parametrize("number", [b"1e308", b"-2.5E+300", b"1e0001"])
def test_the_models_keep_a_number_within_a_double(number: bytes) -> None:
    line = b'{"type":"RESPONSE","id":"m1","status":500,"error":"x","errorPayload":'
    message = parse(line + b'{"name":"E","message":"m","details":' + number + b"}}")
    assert isinstance(message, Response)
    assert message.error_payload.details == json.loads(number)  # type: ignore[union-attr]


def test_a_deep_line_with_nan_in_a_string_is_read() -> None:
    # "NaN" in the bytes sends the line to the stdlib's look for constants, deep or not.
    line = b'{"type":"REQUEST","request":{"id":"7","action":"NaN","data":'
    message = parse(line + deep_json(600) + b"}}")
    assert isinstance(message, RequestLegacy)
    assert message.request.action == "NaN"


def test_a_line_too_deep_for_the_stdlib_has_nothing_it_looks_for() -> None:
    from peepsy.protocol import _codec

    # Only msgspec reads so deep, and it takes neither NaN nor 1e999: nothing to find.
    assert not _codec._has_overflow(b"[" * 5000 + b"1e999" + b"]" * 5000)
    assert not _codec._has_constant(b"[" * 5000 + b"NaN" + b"]" * 5000)
