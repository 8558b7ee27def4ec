"""register_handler with a plain function of the wrong return type: the message names
the plain signature it was meant for, not an Awaitable."""

from peepsy import Master
from tests.typing.models import AddParams, MulResult, add

master = Master()


def add_numbers(params: AddParams) -> MulResult:
    return MulResult(product=params.a * params.b)


master.register_handler(add, add_numbers)  # E: arg-type 'expected "Callable[[AddParams], AddResult]"'
