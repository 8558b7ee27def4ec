"""A script whose own functions go to an Executor, as with ProcessPoolExecutor."""

from __future__ import annotations

import sys

import peepsy.sync

RAN_AS_MAIN = []


def cube(x: int) -> int:
    # In a child the script is imported, not run: its __main__ block must not run again.
    return x * x * x + len(RAN_AS_MAIN)


if __name__ == "__main__":
    RAN_AS_MAIN.append(True)
    with peepsy.sync.Executor(max_workers=2) as pool:
        print(list(pool.map(cube, range(5), chunksize=2)))
    sys.exit(0)
