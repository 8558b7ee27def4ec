"""Regression test for a fixed typing bug.

Action's docstring says any type pydantic can validate works, and at run
time it does, but its constructor takes ``type[Req]``, which rejects a union, a Literal
or an Annotated type: 'Argument 2 to "Action" has incompatible type "UnionType |
type[int]"; expected "type[int]"'. (Python has no annotation for "a type expression"
until PEP 747's TypeForm.) A fallback overload that returns ``Action[Any, Any]`` would
let users write the annotated form below.

This file must type-check without errors (the normal mypy run and test_typing.py check it).
"""

from typing import Annotated, Literal

from pydantic import Field

from peepsy import Action

maybe: Action[int | None, str] = Action("maybe", int | None, str)
color: Action[Literal["red", "green"], int] = Action("color", Literal["red", "green"], int)
positive: Action[Annotated[int, Field(gt=0)], int] = Action(
    "positive", Annotated[int, Field(gt=0)], int
)
