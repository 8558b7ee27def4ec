"""A plain handler with the wrong return type is told about the plain signature.

mypy reports a call that fits no overload against the first one; the typed decorator
lists the plain signature first, so the message does not ask for an Awaitable.
"""

from peepsy import Child
from tests.typing.models import AddParams, MulResult, add

child = Child()


@child.handler(add)  # E: arg-type 'expected "Callable[[AddParams], AddResult]"'
def add_numbers(params: AddParams) -> MulResult:
    return MulResult(product=params.a * params.b)
