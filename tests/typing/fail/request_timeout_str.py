"""Timeouts are integer milliseconds, never strings."""

from peepsy import Master


async def main(master: Master) -> None:
    await master.request("add", "w1", {"a": 1}, timeout="5000")  # E: call-overload
