"""A worker written against the wire protocol alone, without peepsy.

By default it behaves like an unmodified Node peepsy 1.0.1 child: it answers requests
but never sends a HEARTBEAT. Flags change that:

``--beats N``        send N heartbeats (``--beat-ms`` apart) and then fall silent while
                     still answering requests (-1: heartbeat forever)
``--ignore-shutdown`` do not exit on SHUTDOWN
``--ignore-eof``     keep running after end of input
``--ignore-term``    ignore SIGTERM

Actions: ``echo``, ``pid``, ``sleep`` (ms, blocks this single-threaded worker),
``garbage`` (writes bad lines, then answers ``"clean"``), ``stray`` (answers a request
never sent, then this one with ``"clean"``) and ``bad_request`` (sends the
master a REQUEST without an action and answers with the status the master gave it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from typing import Any

_lock = threading.Lock()


def write(raw: bytes) -> None:
    with _lock:
        view = memoryview(raw)
        while view:
            view = view[os.write(1, view) :]


def send(message: dict[str, Any]) -> None:
    write(json.dumps(message, separators=(",", ":")).encode() + b"\n")


def heartbeats(count: int, every_ms: int) -> None:
    sent = 0
    while count < 0 or sent < count:
        send({"type": "HEARTBEAT", "pid": os.getpid(), "timestamp": int(time.time() * 1000)})
        sent += 1
        time.sleep(every_ms / 1000)


def garbage(rid: str) -> None:
    write(b"this is not json\n")
    write(b'{"type":"RESPONSE","status":200,"data":1}\n')  # no id: not a valid envelope
    # Its id after the padding, out of sight of a receiver that reads only the start of
    # an over-long line: dropped unread, not taken for the answer (FRAME-12).
    too_long = {"type": "RESPONSE", "status": 200, "data": "x" * 5000, "id": rid}
    write(json.dumps(too_long).encode() + b"\n")
    send({"type": "RESPONSE", "id": "never-sent-1", "status": 200, "data": "stray"})
    send({"type": "RESPONSE", "id": rid, "status": 200, "data": "clean"})


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--beats", type=int, default=0)
    parser.add_argument("--beat-ms", type=int, default=100)
    parser.add_argument("--ignore-shutdown", action="store_true")
    parser.add_argument("--ignore-eof", action="store_true")
    parser.add_argument("--ignore-term", action="store_true")
    args = parser.parse_args()
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.beats:
        threading.Thread(target=heartbeats, args=(args.beats, args.beat_ms), daemon=True).start()
    waiting: dict[str, str] = {}  # our request id -> the master's request it serves
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        msg = json.loads(line)
        kind = msg.get("type")
        if kind == "SHUTDOWN" and not args.ignore_shutdown:
            return 0
        if kind == "RESPONSE" and msg.get("id") in waiting:
            send(
                {
                    "type": "RESPONSE",
                    "id": waiting.pop(msg["id"]),
                    "status": 200,
                    "data": {"status": msg["status"], "error": msg.get("error")},
                }
            )
            continue
        if kind != "REQUEST":
            continue
        req = msg.get("request", msg)
        rid, action, data = req["id"], req["action"], req.get("data")
        if action == "echo":
            send({"type": "RESPONSE", "id": rid, "status": 200, "data": data})
        elif action == "pid":
            send({"type": "RESPONSE", "id": rid, "status": 200, "data": os.getpid()})
        elif action == "sleep":
            time.sleep(data / 1000)
            send({"type": "RESPONSE", "id": rid, "status": 200, "data": data})
        elif action == "garbage":
            garbage(rid)
        elif action == "stray":
            send({"type": "RESPONSE", "id": "never-sent-2", "status": 200, "data": "stray"})
            send({"type": "RESPONSE", "id": rid, "status": 200, "data": "clean"})
        elif action == "bad_request":
            waiting["c1"] = rid
            send({"type": "REQUEST", "id": "c1", "action": ""})
        else:
            error = f"No handler registered for action: {action}"
            send({"type": "RESPONSE", "id": rid, "status": 404, "error": error})
    while args.ignore_eof:
        time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
