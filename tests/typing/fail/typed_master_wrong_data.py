"""Master[int, str] types the data of string actions: requests carry an int."""

from peepsy import Master

master = Master[int, str]()


async def main() -> None:
    await master.request("describe", "w1", "not an int")  # E: call-overload
