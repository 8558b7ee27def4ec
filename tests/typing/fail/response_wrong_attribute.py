"""The response of a typed Action is its model, not Any: a wrong attribute is an error."""

from peepsy import Master
from tests.typing.models import AddParams, add


async def main(master: Master) -> None:
    result = await master.request(add, "w1", AddParams(a=1, b=2))
    print(result.product)  # E: attr-defined
