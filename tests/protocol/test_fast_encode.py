"""The hot-path encoders in Connection write exactly what the generated models write."""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from pydantic_core import to_json

from peepsy.protocol import Connection, RequestUnified, Response, Role, encode
from peepsy.protocol._codec import dumps
from peepsy.protocol._plain_json import FAST_OPTIONS, FAST_REFUSED, fast_dumps, refuse
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


# --- orjson writes plain data; whatever it writes is pydantic's bytes --------------------


class _Color(enum.Enum):
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


class _Tag(str):
    __slots__ = ()


@dataclasses.dataclass
class _Point:
    x: int
    y: float


class _Aliased(BaseModel):
    value: int = Field(alias="v")


_others = st.one_of(
    st.uuids(),
    st.datetimes(),
    st.dates(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from([_Color.RED, _Level.HIGH]),
    st.text(max_size=4).map(_Tag),
    st.builds(_Point, st.integers(), st.floats()),
    st.integers(1, 9).map(lambda v: _Aliased(v=v)),
    st.frozensets(st.integers(-9, 9), max_size=3),
    st.text(max_size=4).map(str.encode),
    st.integers(min_value=2**64) | st.integers(max_value=-(2**63) - 1),
    st.text(alphabet=st.characters(codec=None, categories=["Cs"]), min_size=1, max_size=2),
)
_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | _others,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


def _fast(value: Any) -> bytes | None:
    try:
        return fast_dumps(value, refuse, FAST_OPTIONS)
    except FAST_REFUSED:
        return None


@settings(max_examples=500, deadline=None)
@given(value=_values)
def test_what_orjson_writes_is_what_pydantic_writes(value: Any) -> None:
    written = _fast(value)
    if written is not None:  # else pydantic writes it, as before
        assert written == to_json(value, by_alias=True, inf_nan_mode="null")
        assert dumps(value, "REQUEST") == written


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_orjson_takes_plain_json_data(value: Any) -> None:
    leaves = list(_leaves(value))
    if any(isinstance(leaf, int) and not -(2**63) <= leaf < 2**64 for leaf in leaves):
        return  # beyond 64 bits: pydantic's to write
    if any(isinstance(leaf, str) and _SURROGATE.search(leaf) for leaf in leaves):
        return  # a lone surrogate: pydantic's to write (escaped, FRAME-9)
    assert _fast(value) is not None


def test_orjson_refuses_what_pydantic_writes_its_own_way() -> None:
    # bytes, datetimes, dataclasses, subclasses, models, sets and big integers all go to
    # pydantic (which writes bytes as text, models by alias, sets as lists).
    for value in (b"x", _Point(1, 2.0), _Tag("t"), _Aliased(v=1), {1, 2}, 2**64):
        assert _fast(value) is None, value
    assert dumps(_Aliased(v=1), "REQUEST") == b'{"v":1}'
    nested: Any = 0
    for _ in range(254):
        nested = [nested]
    assert _fast(nested) is not None  # the deepest either writes
    assert _fast([nested]) is None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _leaves(value: Any) -> Iterator[Any]:
    """Every scalar in ``value``, dict keys included."""
    if isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _leaves(item)
    else:
        yield value
