"""Typed use of the fan-out and the sync facade, which ``mypy --strict`` must accept.

The project's own mypy run checks this file; ``assert_type`` pins what each call gives:
an Action gives its response type, a string action a Reply, ``on_error="return"`` adds
Exception, ``as_completed`` pairs each with its index.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import AsyncGenerator, Generator
from typing import Any, assert_type

import peepsy.sync
from peepsy import Master, Reply
from tests.typing.models import AddParams, AddResult, add


async def fan_out(master: Master[int, str]) -> None:
    params = [AddParams(a=1, b=2)]
    assert_type(master.map(add, "w", params), AsyncGenerator[AddResult, None])
    assert_type(
        master.map(add, "w", params, on_error="return"),
        AsyncGenerator[AddResult | Exception, None],
    )
    assert_type(master.map("describe", "w", [1, 2]), AsyncGenerator[Reply[str], None])
    assert_type(
        master.as_completed(add, "w", params, concurrency=4, timeout=1000),
        AsyncGenerator[tuple[int, AddResult], None],
    )
    assert_type(
        master.as_completed("describe", "w", range(3), on_error="return"),
        AsyncGenerator[tuple[int, Reply[str] | Exception], None],
    )
    async for result in master.map(add, "w", (AddParams(a=i, b=i) for i in range(10))):
        assert_type(result.sum, int)


def script() -> None:
    with peepsy.sync.Master[int, str](timeout=1000) as master:
        assert_type(master, peepsy.sync.Master[int, str])
        assert_type(master.request(add, "w", AddParams(a=1, b=2)), AddResult)
        assert_type(master.request("describe", "w", 1), Reply[str])
        assert_type(master.map(add, "w", [AddParams(a=1, b=2)]), Generator[AddResult, None, None])
        assert_type(
            master.map("describe", "w", [1], on_error="return"),
            Generator[Reply[str] | Exception, None, None],
        )
        assert_type(
            master.as_completed(add, "w", [AddParams(a=1, b=2)]),
            Generator[tuple[int, AddResult], None, None],
        )
    untyped = peepsy.sync.Master()
    assert_type(untyped.request("anything", "w", {"x": 1}), Reply[Any])
    untyped.close()


def square(x: int) -> int:
    return x * x


def executor() -> None:
    with peepsy.sync.Executor(max_workers=2) as pool:
        assert_type(pool.submit(square, 3), concurrent.futures.Future[int])
        assert_type(list(pool.map(square, range(10), chunksize=5)), list[int])
