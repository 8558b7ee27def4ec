"""A Python peepsy child for the Node master test (tests/node/node_master.js).

``CHILD_HEARTBEAT_MS`` fixes its heartbeat interval (500 unless set); ``default`` leaves
it to the child's own rule for a master that states none (HB-1).
"""

import os
from typing import Any

from peepsy import Child

_FIXED = os.environ.get("CHILD_HEARTBEAT_MS", "500")
child = Child(heartbeat_interval=None if _FIXED == "default" else int(_FIXED))


@child.handler("add")
def add(data: dict[str, int]) -> int:
    print("a print inside a handler: a log line on the Node channel's stdout")
    return data["a"] + data["b"]


@child.handler("boom")
def boom(data: Any) -> Any:
    raise ValueError("boom")


@child.handler("askMaster")
async def ask_master(data: Any) -> Any:
    return await child.request("getMasterInfo", data)


if __name__ == "__main__":
    child.run()
