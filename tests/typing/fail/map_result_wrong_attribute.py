"""Master.map over a typed Action yields its response model: a misspelt field is caught."""

from peepsy import Master
from tests.typing.models import AddParams, add


async def main(master: Master) -> None:
    async for result in master.map(add, "w1", [AddParams(a=1, b=2)]):
        print(result.total)  # E: attr-defined
