"""The hot path (msgspec and a glance at a few members) agrees with the models.

Whenever ``_hot`` takes a line, the full validation through the generated models must
accept it too and read the same values; a line the models refuse must never be taken.
Checked on every vector, on lines hypothesis-jsonschema draws from the schemas, and on
targeted edge cases of each member the glance checks.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from pydantic import MISSING

from peepsy.protocol import (
    Connection,
    MessageRejected,
    RemoteProtocolError,
    RequestReceived,
    RequestUnified,
    Response,
    ResponseReceived,
    Role,
    _hot,
    parse,
)
from tests._paths import SCHEMA_DIR, load_json, vectors


def _hot_verdict(line: bytes) -> dict[str, Any] | None:
    """What the hot path took, as the JSON object it read (absent members left out)."""
    taken = _hot.read(line)
    if taken is None:
        return None
    kind = "RESPONSE" if isinstance(taken, _hot.HotResponse) else "REQUEST"
    members = {name: getattr(taken, name) for name in taken.__struct_fields__}
    return {"type": kind} | {k: v for k, v in members.items() if v is not MISSING}


def _agrees(line: bytes) -> bool:
    """Assert the hot path's reading of ``line`` is the models'; returns whether the
    hot path took it."""
    taken = _hot_verdict(line)
    if taken is None:
        return False
    try:
        model = parse(line)
    except RemoteProtocolError as exc:  # pragma: no cover - the failure being tested for
        pytest.fail(f"the hot path took a line the models refuse: {line!r}: {exc}")
    if isinstance(model, Response):
        assert model.status < 400
        assert (model.id, model.status) == (taken["id"], taken["status"])
        assert model.data == taken.get("data", MISSING)
        assert model.error is MISSING
        assert model.error_payload is MISSING
    else:
        assert isinstance(model, RequestUnified)
        assert (model.id, model.action) == (taken["id"], taken["action"])
        assert model.data == taken.get("data", MISSING)
        assert model.timeout == taken.get("timeout", MISSING)
        assert model.priority == taken.get("priority", MISSING)
    return True


def _lines() -> list[bytes]:
    out = []
    for vector in vectors():
        if "message" in vector:
            out.append(json.dumps(vector["message"], ensure_ascii=False).encode())
        if "line" in vector:
            line = vector["line"]
            out.append(line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line)
    return out


@pytest.mark.parametrize("line", _lines())
def test_the_hot_path_agrees_with_the_models_on_every_vector(line: bytes) -> None:
    _agrees(line)


def test_numbers_are_read_as_the_models_read_them() -> None:
    big = b"123456789012345678901234567890"
    assert _agrees(b'{"type":"RESPONSE","id":"m1","status":200,"data":[%s,-0,1E2,5e-324]}' % big)
    assert _agrees(b'{"type":"RESPONSE","id":"a","id":"b","status":200,"data":1,"data":2}')


def test_the_hot_path_takes_the_common_lines() -> None:
    # Without this the agreement above could hold by the hot path taking nothing.
    assert _agrees(b'{"type":"RESPONSE","id":"m1","status":200,"data":{"a":[1,2.5,null]}}')
    assert _agrees(b'{"type":"RESPONSE","id":"m1","status":204}')
    assert _agrees(b'{"type":"REQUEST","id":"c9","action":"echo","data":1,"timeout":5000}')
    assert _agrees(b'{"type":"REQUEST","id":"c9","action":"echo","priority":-3}')


@pytest.mark.parametrize(
    "line",
    [
        b'{"type":"RESPONSE","id":"m1","status":500,"error":"x"}',  # failures: the models
        b'{"type":"RESPONSE","id":"m1","status":200,"extra":1}',
        b'{"type":"RESPONSE","id":"m1","status":200,"data":1,"error":"x"}',
        b'{"type":"RESPONSE","id":"","status":200}',
        b'{"type":"RESPONSE","id":"' + b"i" * 129 + b'","status":200}',
        b'{"type":"RESPONSE","id":1,"status":200}',
        b'{"type":"RESPONSE","id":"m1","status":true}',
        b'{"type":"RESPONSE","id":"m1","status":200.0}',
        b'{"type":"RESPONSE","id":"m1","status":99}',
        b'{"type":"RESPONSE","id":"m1","status":"200"}',
        b'{"type":"RESPONSE","id":"m1","status":200,"data":NaN}',
        b'{"type":"RESPONSE","id":"\\ud800","status":200}',
        b'{"type":"RESPONSE","id":"m1","status":200,"data":1e400}',
        b'{"type":"REQUEST","id":"m1","action":"a","timeout":null}',
        b'{"type":"REQUEST","id":"m1","action":"a","priority":null}',
        b'{"type":"REQUEST","id":"m1","action":"a","timeout":0}',
        b'{"type":"REQUEST","id":"m1","action":"a","timeout":300001}',
        b'{"type":"REQUEST","id":"m1","action":"a","timeout":true}',
        b'{"type":"REQUEST","id":"m1","action":"a","priority":2147483648}',
        b'{"type":"REQUEST","id":"m1","action":"","data":1}',
        b'{"type":"REQUEST","id":"m1","action":"' + b"a" * 257 + b'"}',
        b'{"type":"REQUEST","id":"m1","action":"a","request":{}}',
        b'{"type":"REQUEST","id":"m1","action":"a","other":1}',
        b'{"type":"REQUEST","request":{"id":"m1","action":"a"}}',
        b"[1]",
        b'{"type":"REQUEST","id":"m1","action":"a","data":' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b"\xef\xbb\xbf{}",
        b'{"type":"REQUEST","id":"m1","action":"\xff"}',
    ],
)
def test_lines_outside_the_common_shape_are_left_to_the_models(line: bytes) -> None:
    assert _hot_verdict(line) is None


_SCHEMAS = {
    name: load_json(SCHEMA_DIR / "bundle.json") | {"$ref": f"#/$defs/{name}"}
    for name in ("Response", "RequestUnified")
}


# Built once: from_schema inside a flatmap would resolve the whole bundle per example.
_DRAWN = st.one_of(*(from_schema(_SCHEMAS[name]) for name in sorted(_SCHEMAS)))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_DRAWN)
def test_the_hot_path_agrees_with_the_models_on_drawn_messages(message: Any) -> None:
    _agrees(json.dumps(message, ensure_ascii=False).encode())


def test_the_connection_gives_the_same_events_either_way() -> None:
    lines = [
        b'{"type":"REQUEST","id":"c1","action":"echo","data":[1],"timeout":10,"priority":2}',
        b'{"type":"REQUEST","id":"c1","action":"echo"}',  # a duplicate id: rejected
    ]
    fast = Connection(Role.MASTER).receive_data(b"\n".join(lines) + b"\n")
    assert fast[0] == RequestReceived("c1", "echo", [1], 10, 2, False)
    assert isinstance(fast[1], MessageRejected)
    master = Connection(Role.MASTER)
    mine = SimpleNamespace(action="echo")
    rid, _ = master.send_request("echo", None, ticket=mine)
    (answer,) = master.receive_data(b'{"type":"RESPONSE","id":"%s","status":200}\n' % rid.encode())
    assert isinstance(answer, ResponseReceived)
    assert (answer.ticket, answer.data, answer.action) == (mine, MISSING, "echo")
    assert answer.response == Response(type="RESPONSE", id=rid, status=200)
