"""The callback of Master.on must take the event record of that name."""

from peepsy import Master, SpawnEvent

master = Master()


def on_spawn(event: SpawnEvent) -> None:
    print(event.pid)


master.on("exit", on_spawn)  # E: call-overload
