"""The sync as_completed pairs an index with the Action's response model."""

import peepsy.sync
from tests.typing.models import AddParams, add


def main(master: peepsy.sync.Master) -> None:
    for index, result in master.as_completed(add, "w1", [AddParams(a=1, b=2)]):
        print(index + result.product)  # E: attr-defined
