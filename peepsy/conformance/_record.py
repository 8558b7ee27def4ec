"""Recording a real master and a real worker, and turning the recording into a transcript.

**The tap.** ``python -m peepsy.conformance record -o FILE [--raw] -- COMMAND [ARGS...]``
runs *in place of* the worker: a master spawns it as it would spawn ``COMMAND``. The tap
starts ``COMMAND``, relays its own stdin to the worker's stdin and the worker's stdout to
its own stdout, byte for byte and as soon as they arrive (the worker's stderr is the
tap's), forwards SIGTERM, SIGINT and SIGHUP, and exits as the worker did. Meanwhile it
notes every line that crosses, with its direction and time. When the worker has exited
it writes the recording (``--raw``) or the transcript made from it.

**The raw recording** is newline-delimited JSON, one event per line::

    {"t": 0.0, "start": {"argv": [...], "cwd": "...", "recorder": "peepsy-python/0.1.0"}}
    {"t": 12.5, "dir": "to-worker", "line": "{\\"type\\":\\"INIT\\",...}"}
    {"t": 140.2, "dir": "from-worker", "line": "{\\"type\\":\\"READY\\",...}"}
    {"t": 141.0, "dir": "from-worker", "hex": "fffe41"}        a line that is not UTF-8
    {"t": 150.0, "dir": "to-worker", "line": "{...", "partial": true}   cut off by the end
    {"t": 900.1, "dir": "to-worker", "eof": true}               the master closed the input
    {"t": 905.3, "dir": "from-worker", "eof": true}             the worker closed its output
    {"t": 905.9, "exit": 0}                                     its exit status (-N: signal N)

``t`` is milliseconds since the tap started; ``line`` is the line without its ``\\n``.

**The generalizer** (:func:`generalize`, also ``python -m peepsy.conformance generalize
RAW -o FILE``) turns a recording into a transcript: the master's lines become ``send``
steps, the worker's ``expect`` steps, with what differs from run to run turned into
matchers. The result is a draft to review: its header says little more than where it
came from.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any, Final

from peepsy.conformance._generalize import (
    HeaderFields,
    default_check,
    display_command,
    generalize,
)
from peepsy.conformance._generalize_lines import (
    FREE_TYPES,
    MIN_EXIT_WITHIN_MS,
    MIN_WITHIN_MS,
    SLACK,
    WAIT_THRESHOLD_MS,
)
from peepsy.conformance._generalize_mask import VOLATILE_INTEGERS
from peepsy.conformance._record_files import (
    dumps,
    read_events,
    validate_records,
    write_events,
    write_records,
)

# What this module offered before the generalizer and the file helpers moved out of it:
# tools/record_transcripts.py, the tests and readers of the docs import them from here.
__all__ = [
    "FREE_TYPES",
    "MIN_EXIT_WITHIN_MS",
    "MIN_WITHIN_MS",
    "RECORDER",
    "SLACK",
    "VOLATILE_INTEGERS",
    "WAIT_THRESHOLD_MS",
    "HeaderFields",
    "Recorder",
    "default_check",
    "display_command",
    "dumps",
    "generalize",
    "read_events",
    "run_tap",
    "validate_records",
    "write_events",
    "write_records",
]

RECORDER: Final = "peepsy-python/0.1.0"
_FORWARDED: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_CHUNK: Final = 1 << 16


class Recorder:
    """The events of one session, in order; also written to ``sink`` as they come."""

    def __init__(self, sink: IO[str] | None = None) -> None:
        self.started = time.monotonic()
        self.events: list[dict[str, Any]] = []
        self._sink = sink
        self._lock = threading.Lock()

    def now(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 1)

    def add(self, event: dict[str, Any]) -> None:
        """Note ``event``, timed now unless it has a ``t``: taken under the lock, so that
        the events of both directions are in the order of their times."""
        with self._lock:
            if "t" not in event:
                event = {"t": self.now(), **event}
            self.events.append(event)
            if self._sink is not None:
                self._sink.write(dumps(event) + "\n")
                self._sink.flush()

    def line(self, direction: str, body: bytes, *, partial: bool = False) -> None:
        event: dict[str, Any] = {"dir": direction}
        try:
            event["line"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["hex"] = body.hex()
        if partial:
            event["partial"] = True
        self.add(event)


class _Lines:
    """Splits one direction's bytes into lines for the recorder."""

    def __init__(self, direction: str, recorder: Recorder) -> None:
        self.direction = direction
        self.recorder = recorder
        self.pending = bytearray()

    def feed(self, data: bytes) -> None:
        self.pending += data
        while (end := self.pending.find(b"\n")) >= 0:
            self.recorder.line(self.direction, bytes(self.pending[:end]))
            del self.pending[: end + 1]

    def end(self) -> None:
        if self.pending:
            self.recorder.line(self.direction, bytes(self.pending), partial=True)
            self.pending.clear()
        self.recorder.add({"dir": self.direction, "eof": True})


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _pump_in(proc: subprocess.Popen[bytes], recorder: Recorder) -> None:
    """The tap's stdin (the master's lines) to the worker's stdin."""
    assert proc.stdin is not None
    lines = _Lines("to-worker", recorder)
    target = proc.stdin.fileno()
    try:
        while data := os.read(0, _CHUNK):
            lines.feed(data)
            _write_all(target, data)
    except OSError:
        pass  # the worker closed its input (it exited): nothing more to relay
    lines.end()
    with contextlib.suppress(OSError):
        proc.stdin.close()


def _pump_out(proc: subprocess.Popen[bytes], recorder: Recorder) -> None:
    """The worker's stdout to the tap's stdout (the master)."""
    assert proc.stdout is not None
    lines = _Lines("from-worker", recorder)
    source = proc.stdout.fileno()
    relay = True
    while data := os.read(source, _CHUNK):
        lines.feed(data)
        if relay:
            try:
                _write_all(1, data)
            except OSError:
                relay = False  # the master stopped reading; keep draining the worker
    lines.end()


def run_tap(argv: Sequence[str], output: Path, *, raw: bool, header: HeaderFields) -> int:
    """Run the tap (see the module's docstring). Returns the exit status to leave with."""
    if not argv:
        print("peepsy.conformance record: no worker command given", file=sys.stderr)
        return 2
    output = output.resolve()
    if not output.parent.is_dir() or not os.access(output.parent, os.W_OK):
        print(f"peepsy.conformance record: cannot write in {output.parent}", file=sys.stderr)
        return 2
    try:
        sink = output.open("w", encoding="utf-8") if raw else None
    except OSError as exc:
        print(f"peepsy.conformance record: cannot write {output}: {exc}", file=sys.stderr)
        return 2
    recorder = Recorder(sink)
    recorder.add(
        {
            "t": 0.0,
            "start": {"argv": list(argv), "cwd": os.getcwd(), "recorder": RECORDER},
        }
    )
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            # Its own process group: a terminal's Ctrl-C reaches the worker once, through
            # the tap, as the master's SIGTERM does.
            process_group=0,
        )
    except OSError as exc:
        print(f"peepsy.conformance record: cannot start {argv[0]}: {exc}", file=sys.stderr)
        if sink is not None:
            sink.close()
        return 127

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    for sig in _FORWARDED:
        signal.signal(sig, forward)
    feeder = threading.Thread(target=_pump_in, args=(proc, recorder), daemon=True)
    reader = threading.Thread(target=_pump_out, args=(proc, recorder), daemon=True)
    feeder.start()
    reader.start()
    code = proc.wait()
    # The worker's output ends with it, unless a process it started holds it open.
    reader.join(timeout=2.0)
    recorder.add({"exit": code})
    with contextlib.suppress(OSError):
        os.close(1)  # the master sees the end of our output now, not after the writing
    if sink is not None:
        sink.close()
    else:
        _write_transcript(recorder.events, output, header)
    if code < 0:
        # Die of the same signal, so that the master sees what it would have seen.
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code  # pragma: no cover - the signal ends the process first
    return code


def _write_transcript(events: list[dict[str, Any]], output: Path, header: HeaderFields) -> None:
    try:
        records = generalize(events, **header.options(output))
        problems = validate_records(records)
        if problems:
            raise ValueError("; ".join(problems))
    except Exception as exc:  # keep the recording whatever went wrong
        fallback = output.with_name(output.name + ".raw.jsonl")
        write_events(events, fallback)
        print(
            f"peepsy.conformance record: could not make a transcript ({exc});"
            f" the raw recording is in {fallback}",
            file=sys.stderr,
        )
        return
    try:
        write_records(records, output)
    except OSError as exc:
        print(f"peepsy.conformance record: cannot write {output}: {exc}", file=sys.stderr)
