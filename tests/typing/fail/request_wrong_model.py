"""Passing another model as the data of a typed Action.

mypy words it "Cannot infer value of type parameter" because ``Action`` is invariant in
its request type: the action says AddParams, the data says MulParams.
"""

from peepsy import Master
from tests.typing.models import MulParams, add


async def main(master: Master) -> None:
    await master.request(add, "w1", MulParams(x=1, y=2))  # E: misc "Cannot infer value of type parameter"
