"""A Python peepsy child for the Node master test (tests/node/node_master.js)."""

from typing import Any

from peepsy import Child

child = Child(heartbeat_interval=500)


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
