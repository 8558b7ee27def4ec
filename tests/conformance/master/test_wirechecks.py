"""The wire checks of a master, judged on channel records built by hand: each passes a
clean record, fails a record with exactly its fault (and only it: one defect, one
failure), and has nothing to judge on a record without what it judges."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from peepsy.conformance.master._record import ChannelRecord, Event, EventKind
from peepsy.conformance.master._wirechecks import WIRE_CHECKS, WireResult, judge_wire
from peepsy.conformance.master._wirelines import read_child_line, read_master_line

CHECK_LIST = [
    "m.frame.json",
    "m.frame.terminated",
    "m.frame.no-cr",
    "m.frame.no-bom",
    "m.msg.schema-valid",
    "m.msg.role",
    "m.init.first-once",
    "m.id.unique-outstanding",
    "m.id.not-reused",
    "m.cancel.only-when-allowed",
    "m.resp.matches-request",
]
BOM = b"\xef\xbb\xbf"
INIT = {"type": "INIT", "mode": "sequential", "protocol": "1.1", "target": "w1"}
READY = {"type": "READY", "pid": 42, "protocol": "1.1"}


def encode(message: Any) -> bytes:
    if isinstance(message, bytes):
        return message
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def ev(kind: EventKind, message: Any = b"") -> Event:
    return Event(kind, 0.0, encode(message))


def line(message: Any) -> Event:
    return ev("line", message)


def sent(message: Any) -> Event:
    return ev("sent", message)


def req(rid: str, **extra: Any) -> dict[str, Any]:
    return {"type": "REQUEST", "id": rid, "action": "echo", "data": 1, **extra}


def resp(rid: Any, status: Any = 200, **extra: Any) -> dict[str, Any]:
    return {"type": "RESPONSE", "id": rid, "status": status, **extra}


def cancel(rid: str) -> dict[str, Any]:
    return {"type": "CANCEL", "id": rid, "reason": "timeout"}


def clean() -> list[Event]:
    """A channel on which every wire check has something to judge, and all hold."""
    return [
        line(INIT),
        sent(READY),
        line(req("m1", timeout=300)),
        sent(resp("m1", data=1)),
        line(req("m2")),
        line(cancel("m2")),
        sent(resp("m2", 499, error="cancelled")),
        sent({"type": "REQUEST", "id": "c1", "action": "echo", "data": [1]}),
        line(resp("c1", data=[1])),
        line({"type": "SHUTDOWN", "timeout": 1000}),
        ev("eof"),
        Event("signal", 0.0, value=15),
        Event("exit", 0.0, value=0),
    ]


def record(events: list[Event], name: str = "w1", incarnation: int = 1) -> ChannelRecord:
    return ChannelRecord("m.req.echo", name, incarnation, 4242, events)


def judged(*records: ChannelRecord) -> dict[str, WireResult]:
    return {result.check: result for result in judge_wire(records)}


def verdicts(*records: ChannelRecord) -> dict[str, str]:
    return {check: result.verdict for check, result in judged(*records).items()}


def test_the_checks_are_the_wire_rows_of_the_check_list_in_order() -> None:
    assert [c.check for c in WIRE_CHECKS] == CHECK_LIST
    assert {c.level for c in WIRE_CHECKS} == {"wire"}
    assert [c.check for c in WIRE_CHECKS if c.severity == "SHOULD"] == ["m.id.not-reused"]
    assert WIRE_CHECKS[4].requirement == ("MSG-2", "MSG-3", "MSG-7", "ID-1")
    check, level, severity, requirement, description = WIRE_CHECKS[0]
    assert (check, level, severity, requirement) == (
        "m.frame.json",
        "wire",
        "MUST",
        ("FRAME-1", "FRAME-3"),
    )
    assert description
    results = judge_wire([record(clean())])
    assert [r.check for r in results] == CHECK_LIST
    for result, listed in zip(results, WIRE_CHECKS, strict=True):
        assert (result.requirement, result.severity, result.description) == (
            listed.requirement,
            listed.severity,
            listed.description,
        )


def test_a_clean_channel_passes_every_check() -> None:
    results = judged(record(clean()))
    assert {r.verdict for r in results.values()} == {"pass"}
    assert {(r.message, r.count) for r in results.values()} == {("", 0)}


def test_nothing_to_judge_is_untestable_never_pass() -> None:
    for records in ([], [record([])], [record([sent(READY.copy() | {"protocol": "1.0"})])]):
        results = judged(*records)
        assert {r.verdict for r in results.values()} == {"untestable"}, records
    assert judged()["m.frame.json"].message == "not testable: no line from the master in any case"
    # Lines, but none of what some checks judge: no REQUEST, RESPONSE, CANCEL, end of input.
    only_init = verdicts(record([line(INIT)]))
    assert [c for c, v in only_init.items() if v == "pass"] == [
        "m.frame.json",
        "m.frame.no-cr",
        "m.frame.no-bom",
        "m.msg.schema-valid",
        "m.msg.role",
        "m.init.first-once",
    ]
    # Lines that are no message give the message checks nothing.
    garbage = verdicts(record([line(b"nope\n")]))
    assert garbage["m.msg.schema-valid"] == garbage["m.init.first-once"] == "untestable"


def place(where: int) -> str:
    return f"case m.req.echo, child w1 (incarnation 1), line {where}: "


def with_line(at: int, message: Any) -> Callable[[list[Event]], None]:
    return lambda events: events.insert(at, line(message))


def replace_line(at: int, message: Any) -> Callable[[list[Event]], None]:
    def edit(events: list[Event]) -> None:
        events[at] = line(message)

    return edit


def cancel_before_ready(events: list[Event]) -> None:
    events[1:1] = [line(req("m0")), line(cancel("m0"))]


#: Faults: how to put each into the clean channel, the check it fails, words of its message.
FAULTS: list[Any] = [
    pytest.param(
        with_line(1, b'{"type":"SHUTDOWN","x-a":"\xff"}\n'), "m.frame.json", "UTF-8", id="not UTF-8"
    ),
    pytest.param(with_line(1, b"hello\n"), "m.frame.json", "not JSON", id="not JSON"),
    pytest.param(
        with_line(1, b'{"type":"SHUTDOWN"} {}\n'), "m.frame.json", "Extra data", id="two values"
    ),
    pytest.param(
        with_line(1, b"[1]\n"), "m.frame.json", "a JSON list, not one object", id="an array"
    ),
    pytest.param(
        with_line(1, b'{"type":"SHUTDOWN","x-a":NaN,"x-b":Infinity}\n'),
        "m.frame.json",
        "NaN is not JSON (FRAME-3): ",
        id="NaN twice",
    ),
    pytest.param(
        with_line(1, b'{"type":"REQUEST","id":"m9","action":"a","data":NaN}\n'),
        "m.frame.json",
        "NaN is not JSON",
        id="NaN",
    ),
    pytest.param(
        with_line(1, b'{"type":"REQUEST","id":"m9","action":"a","data":1e400}\n'),
        "m.frame.json",
        "beyond the range",
        id="1e400",
    ),
    pytest.param(
        with_line(1, b'{"type":"REQUEST","id":"m9","action":"a","data":' + b"9" * 400 + b"}\n"),
        "m.frame.json",
        "beyond the range",
        id="a huge integer",
    ),
    pytest.param(
        with_line(1, b'{"type":"SHUTDOWN","timeout":1,"timeout":2}\n'),
        "m.frame.json",
        "'timeout' appears twice",
        id="a name twice",
    ),
    pytest.param(
        lambda e: e.append(ev("partial", b'{"type":"SHUT')),
        "m.frame.terminated",
        "without its LF",
        id="a partial line",
    ),
    pytest.param(
        replace_line(0, encode(INIT)[:-1] + b"\r\n"),
        "m.frame.no-cr",
        "a CR before the LF",
        id="CR LF",
    ),
    pytest.param(with_line(1, b"\r\n"), "m.frame.no-cr", "line 2", id="a blank CR LF line"),
    pytest.param(
        replace_line(0, BOM + encode(INIT)), "m.frame.no-bom", "a byte-order mark", id="a BOM"
    ),
    pytest.param(
        replace_line(8, resp("c1", "200")),
        "m.msg.schema-valid",
        "RESPONSE $.status",
        id="a string status",
    ),
    pytest.param(
        with_line(1, b'{"type":"SHUTDOWN","timeout":1000.0}\n'),
        "m.msg.schema-valid",
        "MSG-7",
        id="200.0",
    ),
    pytest.param(
        with_line(1, b'{"type":"SHUTDOWN","timeout":2e2}\n'),
        "m.msg.schema-valid",
        "MSG-7",
        id="2e2",
    ),
    pytest.param(
        with_line(1, req("m" * 129)), "m.msg.schema-valid", "$.id", id="a 129-character id"
    ),
    pytest.param(
        with_line(1, {"type": "SHUTDOWN", "foo": 1}),
        "m.msg.schema-valid",
        "foo (MSG-3)",
        id="an unknown member",
    ),
    pytest.param(
        replace_line(
            8, resp("c1", 500, error="x", errorPayload={"name": "E", "message": "x", "bar": 1})
        ),
        "m.msg.schema-valid",
        "errorPayload.bar",
        id="an unknown nested member",
    ),
    pytest.param(
        with_line(1, {"type": "REQUEST", "request": {"id": "m9", "action": "a", "baz": 1}}),
        "m.msg.schema-valid",
        "request.baz",
        id="an unknown legacy member",
    ),
    pytest.param(
        with_line(1, {"type": "SHUTDOWN", "timeout": None}),
        "m.msg.schema-valid",
        "SHUTDOWN $.timeout",
        id="null for an optional member",
    ),
    pytest.param(
        with_line(1, {"id": "m9"}),
        "m.msg.schema-valid",
        "without a string member `type`",
        id="no type",
    ),
    pytest.param(
        with_line(1, {"type": 5}), "m.msg.schema-valid", "MSG-1", id="a type that is no string"
    ),
    pytest.param(
        with_line(1, {"type": "READY", "pid": 1}), "m.msg.role", "a 'READY' message", id="a READY"
    ),
    pytest.param(
        with_line(1, {"type": "request"}), "m.msg.role", "'request'", id="an unknown type"
    ),
    pytest.param(
        lambda e: e.insert(0, line(req("m0"))),
        "m.init.first-once",
        "is REQUEST, not INIT",
        id="REQUEST before INIT",
    ),
    pytest.param(
        with_line(1, INIT),
        "m.init.first-once",
        "a second INIT (the first was line 1)",
        id="INIT twice",
    ),
    pytest.param(
        with_line(3, req("m1")),
        "m.id.unique-outstanding",
        "awaits its RESPONSE",
        id="an id while outstanding",
    ),
    pytest.param(with_line(4, req("m1")), "m.id.not-reused", "'m1' used again", id="an id again"),
    pytest.param(
        cancel_before_ready,
        "m.cancel.only-when-allowed",
        "has not stated protocol 1.1",
        id="CANCEL before READY",
    ),
    pytest.param(
        with_line(9, cancel("zz")),
        "m.cancel.only-when-allowed",
        "names no REQUEST",
        id="CANCEL of no REQUEST",
    ),
    pytest.param(
        with_line(9, cancel("m1")),
        "m.cancel.only-when-allowed",
        "after the master had read its RESPONSE",
        id="CANCEL of a read answer",
    ),
    pytest.param(
        with_line(9, resp("c7")),
        "m.resp.matches-request",
        "which the child never asked",
        id="RESPONSE to no REQUEST",
    ),
    pytest.param(
        with_line(9, resp("c1")), "m.resp.matches-request", "a second RESPONSE", id="RESPONSE twice"
    ),
    pytest.param(
        with_line(4, resp("m1")),
        "m.resp.matches-request",
        "never asked",
        id="RESPONSE to its own id",
    ),
]


@pytest.mark.parametrize(("edit", "check", "words"), FAULTS)
def test_one_fault_fails_its_check_alone(
    edit: Callable[[list[Event]], None], check: str, words: str
) -> None:
    events = clean()
    edit(events)
    results = judged(record(events))
    failed = {c: r.verdict for c, r in results.items() if r.verdict != "pass"}
    assert failed == {check: "warn" if check == "m.id.not-reused" else "fail"}
    assert results[check].count == 1
    assert results[check].message.startswith("case m.req.echo, child w1 (incarnation 1), line ")
    assert words in results[check].message


def test_the_message_names_the_first_place_and_counts_the_rest() -> None:
    events = clean()
    events.insert(1, line(b"nope\n"))
    second = clean()
    second[0] = line(b"[]\n")
    third = clean()
    third.insert(2, line(b"{\n"))
    result = judged(record(events), record(second, "w2", 2), record(third, "w1", 2))["m.frame.json"]
    assert result.count == 3
    assert result.message.startswith(place(2) + "not JSON: ")
    assert result.message.endswith("b'nope\\n' (and 2 more)")
    long_data = {"type": "INIT", "mode": "x" * 500}
    events = clean()
    events.insert(1, line(long_data))
    message = judged(record(events))["m.msg.schema-valid"].message
    assert "..." in message
    assert len(message) < 300


def test_lines_that_are_no_fault() -> None:
    events = clean()
    events[2:2] = [
        line(b"\n"),  # blank (FRAME-5 is a SHOULD; not judged here)
        line({"type": "SHUTDOWN", "x-trace": {"any": [1]}}),  # an extension member
        line(req("m\ud800", data="\ud800")),  # lone surrogate escapes (FRAME-9)
        line({"type": "REQUEST", "request": {"id": "m8", "action": "a", "data": None}}),
        line(b'{"type":"REQUEST","id":"m7","action":"a","data":' + b"9" * 305 + b"}\n"),
        line(b'{"type":"REQUEST","id":"m6","action":"a","data":' + b"[" * 5000 + b"\n"),
    ]
    events.append(ev("partial", b"  "))  # nothing but whitespace was cut off
    assert set(verdicts(record(events)).values()) == {"pass"}


def test_a_garbage_line_before_init_fails_only_its_framing() -> None:
    events = clean()
    events.insert(0, line(b"garbage\n"))
    assert {c for c, v in verdicts(record(events)).items() if v != "pass"} == {"m.frame.json"}


def test_each_incarnation_is_its_own_channel() -> None:
    again = clean()  # the same ids and the INIT again, to a new incarnation: all fine
    assert set(verdicts(record(clean()), record(again, incarnation=2)).values()) == {"pass"}
    # INIT judged per incarnation: one without any message is not judged
    assert verdicts(record([]), record([line(INIT)]))["m.init.first-once"] == "pass"


def test_end_of_input_is_what_the_terminated_check_judges() -> None:
    events = [e for e in clean() if e.kind != "eof"]
    assert verdicts(record(events))["m.frame.terminated"] == "untestable"
    assert verdicts(record([ev("partial", b"{")]))["m.frame.terminated"] == "fail"


def test_an_answer_to_a_timed_out_request_makes_the_id_free_again() -> None:
    events = [line(INIT), line(req("m1")), sent(resp("m1", 504, error="late")), line(req("m1"))]
    result = verdicts(record(events))
    assert (result["m.id.unique-outstanding"], result["m.id.not-reused"]) == ("pass", "warn")
    # Without the answer, the id is still outstanding on the wire (the child runs it).
    events = [line(INIT), line(req("m1")), line(req("m1"))]
    assert verdicts(record(events))["m.id.unique-outstanding"] == "fail"
    # An invalid RESPONSE that names the id settles it too (MSG-9).
    events = [line(INIT), line(req("m1")), sent(resp("m1", "x")), line(req("m1"))]
    assert verdicts(record(events))["m.id.unique-outstanding"] == "pass"
    # A legacy REQUEST's id is its request.id.
    legacy = {"type": "REQUEST", "request": {"id": "m1", "action": "a"}}
    assert (
        verdicts(record([line(INIT), line(legacy), line(req("m1"))]))["m.id.unique-outstanding"]
        == "fail"
    )


@pytest.mark.parametrize(
    "ready",
    [
        None,
        {"type": "READY", "pid": 1},  # no protocol: 1.0 (VER-1)
        {"type": "READY", "pid": 1, "protocol": "1.0"},
        {"type": "READY", "protocol": "1.1"},  # invalid (no pid): as if it had not come
        {"type": "READY", "pid": 1, "protocol": 1.1},
        {"type": "HEARTBEAT", "pid": 1},
    ],
)
def test_cancel_to_a_child_that_did_not_state_1_1(ready: dict[str, Any] | None) -> None:
    events = [line(INIT), *([sent(ready)] if ready else []), line(req("m1")), line(cancel("m1"))]
    result = judged(record(events))["m.cancel.only-when-allowed"]
    assert (result.verdict, result.count) == ("fail", 1)
    assert "CANCEL 'm1' to a child whose READY has not stated protocol 1.1" in result.message


def test_cancel_judged_only_on_what_the_master_provably_read() -> None:
    later = {"type": "READY", "pid": 1, "protocol": "2.0"}
    base = [line(INIT), sent(later), line(req("m1")), sent(resp("m1"))]
    # The answer came, but nothing shows the master had read it: CANCEL-1 allows it.
    assert verdicts(record([*base, line(cancel("m1"))]))["m.cancel.only-when-allowed"] == "pass"
    # The master answered a REQUEST the child wrote after the answer: it had read it.
    read = [*base, sent(req("c1")), line(resp("c1")), line(cancel("m1"))]
    assert verdicts(record(read))["m.cancel.only-when-allowed"] == "fail"
    # A CANCEL without an id is the schema check's.
    no_id = [*base, line({"type": "CANCEL"})]
    assert verdicts(record(no_id))["m.cancel.only-when-allowed"] == "pass"


def test_a_child_stating_1_1_gives_the_cancel_check_something_to_judge() -> None:
    assert verdicts(record([line(INIT), sent(READY)]))["m.cancel.only-when-allowed"] == "pass"
    twice = [line(INIT), sent(READY), sent(READY)]
    assert judged(record(twice))["m.cancel.only-when-allowed"].verdict == "pass"


@pytest.mark.parametrize(
    ("asked", "answer"),
    [
        # the legacy shape: the id is request.id
        ([{"type": "REQUEST", "request": {"id": "c1", "action": "echo"}}], "c1"),
        # REQ-10's allowance: the flat id beside a `request` that is no object (a 400)
        ([{"type": "REQUEST", "id": "c1", "request": 5}], "c1"),
        # a leading BOM, a CR LF: the id is still read
        ([BOM + encode(req("c1"))[:-1] + b"\r\n"], "c1"),
        # a duplicate while outstanding is answered once (ID-2)
        ([req("c1"), req("c1")], "c1"),
        # one line in two writes, two lines in one
        ([encode(req("c1"))[:10], encode(req("c1"))[10:] + encode(req("c2"))], "c2"),
        # an over-long line: FRAME-12 lets the master answer 413 by the id at its start
        ([b'{"type":"REQUEST","id":"c1","data":"' + b"x" * (1 << 20) + b"\n"], "c1"),
        ([encode(req("c1", data="x" * (1 << 20)))], "c1"),
        ([b'{"id":"c1","type":"REQUEST","data":' + b"[" * 100000 + b"\n"], "c1"),
        ([b'{"type":"REQUEST","id":"c1","data":' + b"9" * 5000 + b"}\n"], "c1"),
    ],
)
def test_answers_to_whatever_a_master_may_read(asked: list[Any], answer: str) -> None:
    events = [line(INIT), *(sent(a) for a in asked), line(resp(answer, 400, error="bad"))]
    assert verdicts(record(events))["m.resp.matches-request"] == "pass"


@pytest.mark.parametrize(
    "asked",
    [
        b'{"type":"REQUEST","id":"c1"\n',  # not JSON, and short: no id (REQ-9)
        {"type": "REQUEST", "id": "c" * 129},  # no id of ID-1
        {"type": "REQUEST", "request": {"action": "a"}, "id": "c1"},  # flat id beside an object
        b'{"type":"REQUEST","data":"' + b"x" * (1 << 20) + b"\n",  # over-long, no id
        b'{"type":"RESPONSE","id":"c1","data":' + b"[" * 100000 + b"\n",  # deep, no REQUEST
        b'{"type":"REQUEST","id":"\\q","data":"' + b"x" * (1 << 20) + b"\n",  # long, bad escape
        b'{"type":"REQUEST","id":"' + b"c" * 129 + b'","data":' + b"[" * 100000 + b"\n",
        encode(req("c1"))[:-1],  # never terminated
    ],
)
def test_answers_to_what_no_master_may_read(asked: Any) -> None:
    events = [line(INIT), sent(asked), line(resp("c1", 400, error="bad"))]
    assert verdicts(record(events))["m.resp.matches-request"] == "fail"


def test_answers_the_master_did_not_wait_for_change_nothing() -> None:
    events = [line(INIT), sent(resp("m9")), sent(resp(7)), line(req("m9")), line(req("m9"))]
    assert verdicts(record(events))["m.id.unique-outstanding"] == "fail"


def test_a_child_may_reuse_an_answered_id() -> None:
    events = [line(INIT), sent(req("c1")), line(resp("c1")), sent(req("c1")), line(resp("c1"))]
    assert verdicts(record(events))["m.resp.matches-request"] == "pass"
    # a RESPONSE without a string id is judged by the schema check, not here
    odd = [line(INIT), sent(req("c1")), line(resp("c1")), line({"type": "RESPONSE", "id": 1})]
    assert verdicts(record(odd))["m.resp.matches-request"] == "pass"


def test_the_engines_parse_is_not_trusted() -> None:
    """A line's ``message`` may come from a lenient parser: the bytes are judged."""
    events = clean()
    events.insert(
        1, Event("line", 0.0, b'{"type":"SHUTDOWN","timeout":NaN}\n', message={"type": "X"})
    )
    assert verdicts(record(events))["m.frame.json"] == "fail"


def test_readers_directly() -> None:
    assert read_master_line(1, b'{"type":"SHUTDOWN"}').value == {"type": "SHUTDOWN"}
    assert read_master_line(1, b"\xef\xbb\xbf\n").blank
    deep = read_master_line(1, b"[" * 100000 + b"\n")
    assert (deep.value, deep.problem) == (None, None)
    assert read_child_line(0, b"").request_id is None


def test_thousands_of_lines_are_judged_quickly() -> None:
    events = [line(INIT)]
    for n in range(3000):
        events += [line(req(f"m{n}", data={"n": n})), sent(resp(f"m{n}", data=n))]
    start = time.perf_counter()
    assert set(verdicts(record(events)).values()) == {"pass", "untestable"}
    # generous: the point is a compiled validator, not a schema compiled per line
    assert time.perf_counter() - start < 20
