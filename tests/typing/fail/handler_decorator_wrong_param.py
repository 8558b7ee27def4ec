"""The decorator form checks the handler's parameter type too."""

from peepsy import Child
from tests.typing.models import AddResult, MulParams, add

child = Child()


@child.handler(add)  # E: arg-type
def add_numbers(params: MulParams) -> AddResult:
    return AddResult(sum=params.x + params.y)
