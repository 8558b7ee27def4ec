"""A master process as small as can be, for ``tests/process/test_child_eof.py``: run as
``python eof_master.py ACTION WORKER_SCRIPT ARGS...``, it starts the worker on pipes,
asks it to run ACTION, prints the worker's pid once the handler runs, and waits to be
killed. Its death is the only thing that closes the worker's stdin."""

from __future__ import annotations

import json
import subprocess
import sys
import threading


def main() -> None:
    action, *worker = sys.argv[1:]
    proc = subprocess.Popen(
        [sys.executable, *worker],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stderr is not None
    proc.stdin.write(json.dumps({"type": "REQUEST", "id": "r1", "action": action}).encode())
    proc.stdin.write(b"\n")
    proc.stdin.flush()
    for line in proc.stderr:
        if line.strip() == f"started {action}".encode():
            break
    print(proc.pid, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
