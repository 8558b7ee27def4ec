"""Master[int, str] types the data of replies to string actions: it is a str."""

from peepsy import Master

master = Master[int, str]()


async def main() -> int:
    reply = await master.request("describe", "w1", 1)
    return reply.data  # E: return-value
