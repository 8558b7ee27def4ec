"""Bare NDJSON echo child: the least a Python worker can do, with a chosen JSON codec.

    python ndjson_echo.py [json|orjson|msgspec]

Reads whatever is available, answers every complete REQUEST line with a RESPONSE and
writes the answers of one read at once (as the peepsy child does).
"""

import json
import os
import sys
from collections.abc import Callable
from typing import Any


def codec(name: str) -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    if name == "orjson":
        import orjson  # noqa: PLC0415 - optional: only the fast lane needs it

        return orjson.loads, orjson.dumps
    if name == "msgspec":
        import msgspec  # noqa: PLC0415 - optional: only the fast lane needs it

        return msgspec.json.decode, msgspec.json.encode
    return json.loads, lambda obj: json.dumps(obj, separators=(",", ":")).encode()


def main() -> None:
    loads, dumps = codec(sys.argv[1] if len(sys.argv) > 1 else "json")
    # The unfinished line is kept as parts and joined once its newline arrives, so that a
    # 10 MB line read in 64 KB chunks costs linear time, not quadratic.
    parts: list[bytes] = []
    # 64 KiB, a default pipe's capacity: a larger buffer is past glibc's mmap threshold,
    # and each read would map, shrink and unmap one (see docs/performance.md).
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            return
        if b"\n" not in chunk:
            parts.append(chunk)
            continue
        *lines, rest = chunk.split(b"\n")
        if parts:
            lines[0] = b"".join([*parts, lines[0]])
        parts = [rest] if rest else []
        out = []
        for line in lines:
            msg = loads(line)
            if msg.get("type") == "REQUEST":
                reply = {"type": "RESPONSE", "id": msg["id"], "status": 200, "data": msg["data"]}
                out.append(dumps(reply))
        if out:
            out.append(b"")
            _write_all(b"\n".join(out))


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


if __name__ == "__main__":
    main()
