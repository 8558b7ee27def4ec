"""A lambda handler for a typed Action gets the request type as its parameter.

A fixed bug: mypy used to accept this line, because the handler parameter was typed as a
union of two callables (sync or async) and mypy cannot infer a lambda's parameter from a
union, so ``params`` was Any. ``register_handler`` now has a sync and an async overload.
"""

from peepsy import Child
from tests.typing.models import AddResult, add

child = Child()
child.register_handler(add, lambda params: AddResult(sum=params.a + params.c))  # E: attr-defined
