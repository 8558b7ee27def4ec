"""Memory child: holds every REQUEST unanswered until told to release them.

    python holding.py N

Once N requests are held it sends SIGUSR1 to its parent (the master being measured), so
that the master reads its RSS with N requests in flight and all of them written out; a
REQUEST with action ``release`` then gets every held request answered, itself last.
Stdlib json only: this child's speed is not what is measured.
"""

import json
import os
import signal
import sys


def main() -> None:
    target = int(sys.argv[1])
    held: list[str] = []
    parts: list[bytes] = []
    # 64 KiB, a default pipe's capacity: a larger buffer is past glibc's mmap threshold,
    # and each read would map, shrink and unmap one (see docs/performance.md).
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            return
        *lines, rest = chunk.split(b"\n")
        if lines:
            lines[0] = b"".join([*parts, lines[0]])
            parts = []
        if rest:
            parts.append(rest)
        for line in lines:
            msg = json.loads(line)
            if msg.get("type") == "SHUTDOWN":  # as a peepsy child would, at once
                return
            if msg.get("type") != "REQUEST":
                continue
            held.append(msg["id"])
            if msg.get("action") == "release":
                _answer(held)
                held = []
            elif len(held) == target:
                os.kill(os.getppid(), signal.SIGUSR1)


def _answer(ids: list[str]) -> None:
    out = b"".join(
        json.dumps({"type": "RESPONSE", "id": i, "status": 200, "data": None}).encode() + b"\n"
        for i in ids
    )
    view = memoryview(out)
    while view:
        view = view[os.write(1, view) :]


if __name__ == "__main__":
    main()
