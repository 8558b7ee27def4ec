"""A handler for a typed Action must take the Action's request type."""

from peepsy import Child
from tests.typing.models import AddResult, MulParams, add

child = Child()


def add_numbers(params: MulParams) -> AddResult:
    return AddResult(sum=params.x + params.y)


child.register_handler(add, add_numbers)  # E: arg-type
