"""A subscripted master against a real child: what mypy believes is what arrives."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from peepsy import Master, PeepsyValidationError
from tests.process._support import peepsy_worker, run


class Pair(BaseModel):
    a: int
    b: int


class Sum(BaseModel):
    sum: int


def test_a_typed_master_holds_a_real_child_to_its_types() -> None:
    async def main() -> None:
        async with Master[Pair, Sum]() as master:
            await master.spawn_child("w1", peepsy_worker())
            # The worker's echo answers {"a": 1, "b": 2}: not a Sum.
            with pytest.raises(PeepsyValidationError) as caught:
                await master.request("echo", "w1", Pair(a=1, b=2))
            assert str(caught.value) == (
                "the reply to 'echo' from 'w1' is not a valid Sum (Master[Pair, Sum]): "
                "$.sum: Field required"
            )
            # Wrong data never reaches the child.
            with pytest.raises(PeepsyValidationError, match="nothing was sent"):
                await master.request("echo", "w1", {"a": 1})  # type: ignore[call-overload]
            assert master.get_process_stats("w1").requests_handled == 1
        async with Master[Pair, Pair]() as master:
            await master.spawn_child("w1", peepsy_worker())
            reply = await master.request("echo", "w1", Pair(a=1, b=2))
            assert type(reply.data) is Pair
            assert reply.data == Pair(a=1, b=2)
        async with Master[Pair, Sum](validate_types=False) as master:
            await master.spawn_child("w1", peepsy_worker())
            raw = await master.request("echo", "w1", {"a": 1})  # type: ignore[call-overload]
            assert raw.data == {"a": 1}  # trusted, unlike what mypy believes

    run(main())
