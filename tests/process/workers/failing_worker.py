"""A peepsy Child whose handlers fail: ``div`` divides by zero two frames down (so its
traceback has frames to look for), ``refuse`` answers 404 on purpose.

Run as ``python failing_worker.py [--stack]``: ``--stack`` sends the stack with each
failure (``include_stack=True``). Logging is left unconfigured, as in a user's script.
"""

from __future__ import annotations

import sys
from typing import Any

from peepsy import Child, HandlerError


def ratio_of(data: dict[str, int]) -> float:
    return data["a"] / data["b"]


def main() -> None:
    child = Child(include_stack="--stack" in sys.argv[1:])

    @child.handler("div")
    def div(data: dict[str, int]) -> float:
        return ratio_of(data)

    @child.handler("refuse")
    def refuse(data: Any) -> None:
        raise HandlerError("no such user", status=404, code="E_NO_USER")

    child.run()


if __name__ == "__main__":
    main()
