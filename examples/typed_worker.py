from typed import AddParams, AddResult, add

from peepsy import Child

child = Child("concurrent")


@child.handler(add)
async def add_typed(params: AddParams) -> AddResult:
    return AddResult(sum=params.a + params.b)


if __name__ == "__main__":
    child.run()
