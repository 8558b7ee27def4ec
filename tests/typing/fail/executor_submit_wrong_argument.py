"""Executor.submit checks the arguments against the function's signature."""

import peepsy.sync


def square(x: int) -> int:
    return x * x


def main(pool: peepsy.sync.Executor) -> None:
    pool.submit(square, "three")  # E: arg-type
