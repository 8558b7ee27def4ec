"""RemoteError.payload is None when the peer sent no errorPayload (Node children)."""

from peepsy import Master, RemoteError


async def main(master: Master) -> str:
    try:
        await master.request("add", "w1", {"a": 1})
    except RemoteError as exc:
        return exc.payload.name  # E: union-attr
    return ""
