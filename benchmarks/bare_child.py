"""Baseline child: the least a Python NDJSON echo worker can do (no peepsy).

Reads whatever is available, answers every complete line, writes the answers at once.
"""

import json
import os


def main() -> None:
    buf = b""
    while True:
        chunk = os.read(0, 65536)
        if not chunk:
            return
        *lines, buf = (buf + chunk).split(b"\n")
        out = []
        for line in lines:
            msg = json.loads(line)
            if msg.get("type") != "REQUEST":
                continue
            reply = {"type": "RESPONSE", "id": msg["id"], "status": 200, "data": msg.get("data")}
            out.append(json.dumps(reply, separators=(",", ":")).encode())
        if out:
            out.append(b"")
            os.write(1, b"\n".join(out))


if __name__ == "__main__":
    main()
