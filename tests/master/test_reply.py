"""The Reply a request resolves to: built by the router's fast path (``make_reply``),
it must be the very record the class builds, as frozen, equal and hashable."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peepsy import Reply
from peepsy.master._stats import make_reply
from tests.master._support import Farm, echo, run

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@given(
    status=st.integers(100, 399),
    data=_json,
    rid=st.text(max_size=12),
    target=st.text(max_size=12),
    action=st.text(max_size=12),
)
def test_make_reply_is_what_the_class_builds(
    status: int, data: Any, rid: str, target: str, action: str
) -> None:
    fast = make_reply(status, data, rid, target, action)
    slow = Reply(status, data, rid, target, action)
    assert type(fast) is Reply
    assert fast == slow
    assert repr(fast) == repr(slow)
    assert dataclasses.astuple(fast) == (status, data, rid, target, action)


def test_make_reply_is_frozen_and_hashable() -> None:
    reply = make_reply(200, 1, "m1", "w1", "echo")
    with pytest.raises(dataclasses.FrozenInstanceError):
        reply.status = 201  # type: ignore[misc]
    assert hash(reply) == hash(Reply(200, 1, "m1", "w1", "echo"))


def test_a_request_resolves_to_a_frozen_reply() -> None:
    async def main() -> None:
        farm = Farm(auto=echo)
        async with farm.master() as master:
            await farm.spawn(master, "w1")
            reply = await master.request("echo", "w1", {"n": 1})
            assert reply == Reply(200, {"n": 1}, reply.id, "w1", "echo")
            with pytest.raises(dataclasses.FrozenInstanceError):
                reply.data = None  # type: ignore[misc]

    run(main())
