"""peepsy child with one echo action, for benchmarks."""

from peepsy import Child

child = Child("concurrent")


@child.handler("echo")
async def echo(data: object) -> object:
    return data


if __name__ == "__main__":
    child.run()
