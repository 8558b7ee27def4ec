"""Regression test for a fixed typing bug.

``@handler(action)`` with a typed Action should return the function as it
was, as ``@handler("name")`` does. Today it returns the union
``Callable[[Req], Resp] | Callable[[Req], Awaitable[Resp]]``, so calling the decorated
handler directly (as a unit test does) no longer type-checks.

This file must type-check without errors (the normal mypy run and test_typing.py check it).
"""

from typing import assert_type

from peepsy import Child
from tests.typing.models import AddParams, AddResult, MulParams, MulResult, add, mul

child = Child()


@child.handler(add)
async def add_numbers(params: AddParams) -> AddResult:
    return AddResult(sum=params.a + params.b)


@child.handler(mul)
def multiply(params: MulParams) -> MulResult:
    return MulResult(product=params.x * params.y)


async def call_handlers_directly() -> None:
    assert_type(await add_numbers(AddParams(a=1, b=2)), AddResult)
    assert_type(multiply(MulParams(x=2, y=3)), MulResult)
