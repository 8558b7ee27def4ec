import asyncio
import sys

from peepsy import Master


async def main() -> None:
    async with Master(timeout=5000) as master:
        await master.spawn_child("w1", [sys.executable, "examples/worker.py"])
        reply = await master.request("add", "w1", {"a": 1, "b": 2})
        print(reply.data)  # 3


if __name__ == "__main__":
    asyncio.run(main())
