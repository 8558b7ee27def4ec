"""A worker that breaks its protocol channel while its process lives on (issue 10).

Without peepsy, on the wire alone. Actions: ``echo``, and ``close_stdout`` (closes
its stdout, the protocol stream, and sleeps on without answering). Flags:

``--close-stdin``   close stdin once INIT is read, then send READY: the master's next
                    write to it fails (EPIPE)
``--ignore-term``   ignore SIGTERM (the master must SIGKILL it)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any


def send(message: dict[str, Any]) -> None:
    data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def main() -> None:
    if "--ignore-term" in sys.argv:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        message = json.loads(line)
        kind = message.get("type")
        if kind == "INIT":
            if "--close-stdin" in sys.argv:
                os.close(0)
                send({"type": "READY", "pid": os.getpid(), "actions": ["echo"]})
                time.sleep(600)
                return
            send({"type": "READY", "pid": os.getpid(), "actions": ["echo", "close_stdout"]})
        elif kind == "SHUTDOWN":
            return
        elif kind == "REQUEST":
            if message["action"] == "close_stdout":
                os.close(1)
                time.sleep(600)
                return
            send(
                {
                    "type": "RESPONSE",
                    "id": message["id"],
                    "status": 200,
                    "data": message.get("data"),
                }
            )


if __name__ == "__main__":
    main()
