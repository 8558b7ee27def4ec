"""The error policy of map is "raise" or "return", nothing else."""

from peepsy import Master


async def main(master: Master) -> None:
    master.map("add", "w1", [1], on_error="ignore")  # E: call-overload
