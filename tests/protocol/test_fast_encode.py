"""The hot-path encoders in Connection write exactly what the generated models write."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from peepsy.protocol import Connection, RequestUnified, Response, Role, encode
from peepsy.protocol._writing import ACTION_CACHE, ACTION_JSON

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=15,
)
actions = st.text(min_size=1, max_size=256)
prefixes = st.text(max_size=8)


@settings(max_examples=300, deadline=None)
@given(
    data=json_values,
    action=actions,
    prefix=prefixes,
    timeout=st.none() | st.integers(1, 300_000),
    priority=st.none() | st.integers(-(2**31), 2**31 - 1),
)
def test_request_fast_path_matches_the_model(
    data: Any, action: str, prefix: str, timeout: int | None, priority: int | None
) -> None:
    conn = Connection(Role.MASTER, id_prefix=prefix)
    rid, line = conn.send_request(action, data, timeout=timeout, priority=priority)
    extra = {k: v for k, v in (("timeout", timeout), ("priority", priority)) if v is not None}
    model = RequestUnified(type="REQUEST", id=rid, action=action, data=data, **extra)
    assert line == encode(model)


@settings(max_examples=300, deadline=None)
@given(data=json_values, rid=st.text(min_size=1, max_size=128))
def test_response_fast_path_matches_the_model(data: Any, rid: str) -> None:
    master, child = Connection(Role.MASTER), Connection(Role.CHILD)
    # Owe an answer to `rid` by receiving a request that carries it.
    line = encode(RequestUnified(type="REQUEST", id=rid, action="a"))
    child.receive_data(line)
    assert master.outstanding == 0
    out = child.send_response(rid, 200, data)
    assert out == encode(Response(type="RESPONSE", id=rid, status=200, data=data))


def test_action_cache_is_bounded_and_stays_correct() -> None:
    conn = Connection(Role.MASTER)
    lines = [conn.send_request(f"action-{i}")[1] for i in range(3000)]
    # Past the cache size the cache is emptied and refilled; lines stay right throughout.
    for i, line in enumerate(lines):
        assert f'"action":"action-{i}"'.encode() in line
    assert len(ACTION_JSON) <= ACTION_CACHE
