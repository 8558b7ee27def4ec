"""Regression test for a fixed typing bug.

the response of a typed Action should be usable wherever a supertype of it
is expected. Before the fix, mypy infers the Action's response type from the surrounding context
(BaseModel, object) and then rejects the Action, which is invariant in its response type:
'Argument 1 to "request" has incompatible type "Action[AddParams, AddResult]"; expected
"Action[AddParams, BaseModel]"'. Assigning to a plain local first works.

This file must type-check without errors (the normal mypy run and test_typing.py check it).
"""

from pydantic import BaseModel

from peepsy import Child, Master
from tests.typing.models import AddParams, add


async def collect(master: Master, child: Child) -> list[BaseModel]:
    results: list[BaseModel] = []
    results.append(await master.request(add, "w1", AddParams(a=1, b=2)))
    first: BaseModel = await master.request(add, "w1", AddParams(a=1, b=2))
    by_name: dict[str, object] = {}
    by_name["add"] = await master.request(add, "w1", AddParams(a=1, b=2))
    from_master: BaseModel = await child.request(add, AddParams(a=1, b=2))
    return [*results, first, from_master]
