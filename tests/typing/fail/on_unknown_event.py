"""Master.on knows its event names; a wrong one is an error."""

from peepsy import ExitEvent, Master

master = Master()


def on_exit(event: ExitEvent) -> None:
    print(event.returncode)


master.on("exited", on_exit)  # E: call-overload
