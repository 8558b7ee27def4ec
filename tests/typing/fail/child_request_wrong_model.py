"""Child.request checks a typed Action's data the same way as Master.request."""

from peepsy import Child
from tests.typing.models import MulParams, add

child = Child()


async def main() -> None:
    await child.request(add, MulParams(x=1, y=2))  # E: misc "Cannot infer value of type parameter"
