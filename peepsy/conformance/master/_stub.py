"""The suite's stub child: what a master under test spawns (conformance/MASTER.md).

Run as ``python -I _stub.py SOCKET NAME``: standard library only, so that it starts fast
and needs no PYTHONPATH. It connects to the suite's Unix socket and relays: every byte
the master writes to its stdin goes to the suite, and the suite says what to write on
stdout and stderr, when to exit, whether to ignore SIGTERM and when to close stdout.

Frames on the socket are JSON lines, each with ``op``; bytes travel as base64 (``b``).
Stub to suite: ``hello`` (name, pid), ``in`` (stdin bytes), ``eof`` (end of stdin),
``signal`` (a SIGTERM caught: ``signum``), ``bye`` (about to die: ``code`` for an exit,
``signum`` for death by that signal), ``ack`` (an ``ignore_sigterm`` or
``close_stdout`` is in force). Suite to stub: ``out``/``err`` (bytes to write),
``exit`` (``code``), ``ignore_sigterm`` (``on``), ``close_stdout``. A stub that dies
without ``bye`` was killed (SIGKILL). When the suite goes away the stub exits.
"""

import base64
import contextlib
import json
import os
import signal
import socket
import sys
import threading

#: The exit status when the suite's socket closes under the stub (the suite is gone).
SUITE_GONE = 70


class Stub:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.ignore_sigterm = False

    def tell(self, **frame: object) -> None:
        data = (json.dumps(frame) + "\n").encode()
        with self.lock:
            try:
                self.sock.sendall(data)
            except OSError:
                os._exit(SUITE_GONE)

    def relay_stdin(self) -> None:
        while True:
            try:
                chunk = os.read(0, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.tell(op="eof")
                return
            self.tell(op="in", b=base64.b64encode(chunk).decode())

    def watch_sigterm(self) -> None:
        # SIGTERM is blocked in every thread and taken here with sigwait: no Python signal
        # handler can then interrupt a thread that holds the socket's lock.
        while True:
            signum = signal.sigwait({signal.SIGTERM})
            self.tell(op="signal", signum=signum)
            if not self.ignore_sigterm:
                self.die_by(signum)

    def die_by(self, signum: int) -> None:
        # Death by the signal itself, so that the master sees a signal exit, not a status.
        self.tell(op="bye", signum=signum)
        signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
        os.kill(os.getpid(), signum)

    def write(self, fd: int, data: bytes) -> None:
        try:
            while data:
                data = data[os.write(fd, data) :]
        except OSError:
            return  # the master closed its end, or the suite closed our stdout

    def obey(self, frame: dict) -> None:  # type: ignore[type-arg]
        op = frame.get("op")
        if op in ("out", "err"):
            self.write(1 if op == "out" else 2, base64.b64decode(frame["b"]))
        elif op == "exit":
            code = int(frame["code"])
            self.tell(op="bye", code=code)
            os._exit(code)
        elif op == "ignore_sigterm":
            self.ignore_sigterm = bool(frame.get("on", True))
            self.tell(op="ack")
        elif op == "close_stdout":
            with contextlib.suppress(OSError):
                os.close(1)
            self.tell(op="ack")

    def serve(self) -> None:
        reader = self.sock.makefile("rb")
        for line in reader:
            self.obey(json.loads(line))
        os._exit(SUITE_GONE)


def main() -> None:
    path, name = sys.argv[1], sys.argv[2]
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # inherited by the threads
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sys.stderr.write(f"peepsy conformance stub: cannot reach the suite at {path}: {exc}\n")
        os._exit(SUITE_GONE)
    stub = Stub(sock)
    stub.tell(op="hello", name=name, pid=os.getpid())
    threading.Thread(target=stub.relay_stdin, daemon=True).start()
    threading.Thread(target=stub.watch_sigterm, daemon=True).start()
    stub.serve()


if __name__ == "__main__":
    main()
