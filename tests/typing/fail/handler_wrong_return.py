"""A handler for a typed Action must return the Action's response type (async too)."""

from peepsy import Master
from tests.typing.models import AddParams, MulResult, add

master = Master()


@master.handler(add)  # E: arg-type
async def add_numbers(params: AddParams) -> MulResult:
    return MulResult(product=params.a * params.b)
