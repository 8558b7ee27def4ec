"""Treating the typed response of an Action as another model."""

from peepsy import Master
from tests.typing.models import AddParams, MulResult, add


async def main(master: Master) -> None:
    # mypy infers the response type from the annotation, so it names the action.
    product: MulResult = await master.request(add, "w1", AddParams(a=1, b=2))  # E: arg-type
    result = await master.request(add, "w1", AddParams(a=1, b=2))
    also_product: MulResult = result  # E: assignment
