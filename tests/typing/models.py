"""Request and response models shared by the typing tests (pass_api.py and fail/*.py)."""

from __future__ import annotations

from pydantic import BaseModel

from peepsy import Action


class AddParams(BaseModel):
    a: int
    b: int


class AddResult(BaseModel):
    sum: int


class MulParams(BaseModel):
    x: int
    y: int


class MulResult(BaseModel):
    product: int


add = Action("add", AddParams, AddResult)
mul = Action("mul", MulParams, MulResult)
