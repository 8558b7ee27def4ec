"""Plain functions for peepsy.sync.Executor and ``python -m peepsy.child MODULE:FUNCTION``."""

from __future__ import annotations

import os
import time


def square(x: int) -> int:
    return x * x


def add(a: int, b: int = 0) -> int:
    return a + b


def fail(message: str) -> None:
    raise ValueError(message)


def sleep_ms(ms: int) -> int:
    time.sleep(ms / 1000)
    return ms


def pid(_: object = None) -> int:
    return os.getpid()


class Box:
    @staticmethod
    def double(x: int) -> int:
        return 2 * x
