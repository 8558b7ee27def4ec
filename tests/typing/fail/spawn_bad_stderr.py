"""spawn_child's stderr is one of inherit, log, capture, discard."""

from peepsy import Master


async def main(master: Master) -> None:
    await master.spawn_child("w1", ["python", "worker.py"], stderr="pipe")  # E: arg-type
