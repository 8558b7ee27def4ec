"""A lambda callback of Master.on gets the event of that name: ExitEvent has no
silent_for (HeartbeatMissedEvent has)."""

from peepsy import Master

master = Master()
master.on("exit", lambda event: print(event.silent_for))  # E: call-overload
