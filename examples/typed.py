import asyncio
import sys

from pydantic import BaseModel

from peepsy import Action, Master


class AddParams(BaseModel):
    a: int
    b: int


class AddResult(BaseModel):
    sum: int


add = Action("add_typed", AddParams, AddResult)


async def main() -> None:
    async with Master() as master:
        await master.spawn_child("w1", [sys.executable, "examples/typed_worker.py"])
        result = await master.request(add, "w1", AddParams(a=1, b=2))
        print(result.sum)  # 3: `result` is an AddResult, checked by mypy and pydantic


if __name__ == "__main__":
    asyncio.run(main())
