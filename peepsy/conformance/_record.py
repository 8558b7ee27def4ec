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
import datetime
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, Final

from peepsy.conformance._matchers import is_matcher
from peepsy.conformance._schemas import record_problems

RECORDER: Final = "peepsy-python/0.1.0"
#: Messages that come whenever the worker likes (HB-1, READY-1): not part of a transcript.
FREE_TYPES: Final = frozenset({"HEARTBEAT", "READY"})
#: Members of a worker's message that differ from run to run.
VOLATILE_INTEGERS: Final = ("pid", "timestamp", "requestsActive")
#: A master that paused at least this long before a line gets a ``wait`` step.
WAIT_THRESHOLD_MS: Final = 50.0
#: ``within`` is SLACK times the delay seen, and never less than MIN_WITHIN_MS.
SLACK: Final = 5.0
MIN_WITHIN_MS: Final = 2000.0
MIN_EXIT_WITHIN_MS: Final = 5000.0
_FORWARDED: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_CHUNK: Final = 1 << 16


# --- recording ---------------------------------------------------------------------------


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


def display_command(argv: Sequence[str], cwd: Path | None = None) -> str:
    """``argv`` as a person would type it: this Python as ``python``, paths under the
    working directory relative to it."""
    cwd = cwd or Path.cwd()
    shown: list[str] = []
    for index, arg in enumerate(argv):
        if index == 0 and Path(arg).name.startswith("python"):
            shown.append("python")
            continue
        path = Path(arg)
        text = arg
        if path.is_absolute():
            with contextlib.suppress(ValueError):
                text = str(path.relative_to(cwd))
        shown.append(text)
    return shlex.join(shown)


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


def dumps(value: Any) -> str:
    """One NDJSON line: UTF-8 as it is, except U+2028 and U+2029, escaped so that no
    editor takes them for line breaks."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def write_events(events: Iterable[Mapping[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for event in events:
            out.write(dumps(event) + "\n")


def read_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not JSON: {exc}") from exc
        if not isinstance(event, dict) or "t" not in event:
            raise ValueError(f"{path}:{number}: not a recording event (no 't')")
        events.append(event)
    return events


def write_records(records: Sequence[Mapping[str, Any]], path: Path | None) -> None:
    """A transcript, one JSON record per line (to stdout when ``path`` is None)."""
    text = "".join(dumps(r) + "\n" for r in records)
    if path is None:
        sys.stdout.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def validate_records(records: Sequence[Any]) -> list[str]:
    return [
        f"line {number}: {problem}"
        for number, record in enumerate(records, start=1)
        for problem in record_problems(record, header=number == 1)
    ]


# --- generalizing ------------------------------------------------------------------------


@dataclass(slots=True)
class HeaderFields:
    """What the user says about a transcript to be (the rest is guessed)."""

    check: str | None = None
    requirement: Sequence[str] = ()
    description: str | None = None
    level: str | None = None
    mode: str | None = None
    recorded: str | None = None
    exact_data: bool = False

    def options(self, output: Path | None) -> dict[str, Any]:
        check = self.check
        if check is None and output is not None:
            check = default_check(output)
        return {
            "check": check,
            "requirement": self.requirement,
            "description": self.description,
            "level": self.level,
            "mode": self.mode,
            "recorded": self.recorded,
            "exact_data": self.exact_data,
        }


def default_check(output: Path) -> str:
    stem = output.name.split(".")[0]
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")
    return f"recorded.{slug or 'transcript'}"


_NOT_JSON: Final = object()


@dataclass(slots=True)
class _Line:
    t: float
    direction: str
    text: str | None  # None: not UTF-8 (see raw)
    raw: bytes
    partial: bool
    value: Any  # the line's JSON value, or _NOT_JSON
    eof: bool = False

    @property
    def message(self) -> dict[str, Any] | None:
        """The line as a message to send (None: replay it as raw bytes). A line with a
        CR or a BOM is replayed as it came, not re-encoded."""
        value, text = self.value, self.text or ""
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            return None
        return None if text.endswith("\r") or text.startswith("\ufeff") else value

    @property
    def kind(self) -> str | None:
        value = self.value
        return value.get("type") if isinstance(value, dict) else None


@dataclass(slots=True)
class _Draft:
    """The steps being made, with what the later ones need to know."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    #: for each step: (time of its line, the master request id it answers, or None)
    times: list[float] = field(default_factory=list)
    answers: list[str | None] = field(default_factory=list)
    last_t: float = 0.0

    def add(self, step: dict[str, Any], t: float, answers: str | None = None) -> None:
        self.steps.append(step)
        self.times.append(t)
        self.answers.append(answers)
        self.last_t = t


def _within(delay: float, minimum: float = MIN_WITHIN_MS) -> int:
    return int(math.ceil(max(minimum, SLACK * delay) / 100) * 100)


def _lines(events: Iterable[Mapping[str, Any]]) -> tuple[list[_Line], dict[str, Any], Any]:
    lines: list[_Line] = []
    start: dict[str, Any] = {}
    exit_event: Any = None
    for event in events:
        if "start" in event:
            start = dict(event["start"])
            continue
        if "exit" in event:
            exit_event = event
            continue
        direction = event.get("dir")
        if direction not in ("to-worker", "from-worker"):
            continue
        t = float(event["t"])
        if event.get("eof"):
            lines.append(_Line(t, direction, None, b"", False, _NOT_JSON, eof=True))
            continue
        if "hex" in event:
            raw = bytes.fromhex(event["hex"])
            text = None
        else:
            text = str(event.get("line", ""))
            raw = text.encode("utf-8")
        value: Any = _NOT_JSON
        if text is not None and not event.get("partial"):
            with contextlib.suppress(ValueError):
                value = json.loads(text)
        lines.append(_Line(t, direction, text, raw, bool(event.get("partial")), value))
    return lines, start, exit_event


def generalize(
    events: Iterable[Mapping[str, Any]],
    *,
    check: str | None = None,
    requirement: Sequence[str] = (),
    description: str | None = None,
    level: str | None = None,
    mode: str | None = None,
    recorded: str | None = None,
    exact_data: bool = False,
) -> list[dict[str, Any]]:
    """A transcript (header and steps) from a recording's events:

    - the master's first line, when it is INIT, becomes the header's ``init`` (the suite
      sends its own INIT); without one the header says ``"init": false``;
    - the master's other lines become ``send`` steps (``send_raw``/``send_hex`` when
      they are not messages), with a ``wait`` before each one the master paused for;
      closing the worker's input becomes ``close_stdin``;
    - the worker's HEARTBEATs and READY are dropped: they interleave freely;
    - the worker's other lines become ``expect`` steps, with ``pid``, ``timestamp`` and
      ``requestsActive`` matched by type and ``errorPayload.stack`` as any string;
    - the id of a REQUEST from the worker becomes a ``$capture`` (``req1``, ...) and the
      id of the master's RESPONSE to it a ``$ref``; a RESPONSE sent right after the
      REQUEST it answers makes the two one ``answer`` step;
    - ``within`` is five times the delay observed, at least 2000 ms;
    - responses that arrive together (no master line between them) in another order
      than their requests were sent become one ``expect_unordered`` step;
    - the worker's exit becomes ``expect_exit`` with its status (not when a signal
      ended it: a transcript cannot send one).

    Data that looks like a matcher is wrapped in ``$literal``. With ``exact_data``,
    every object in a ``data`` member gets ``"$exact": true``.
    """
    lines, start, exit_event = _lines(events)
    work = _Generalizer(exact_data)
    for line in lines:
        if line.direction == "to-worker":
            work.master_line(line)
        else:
            work.worker_line(line)
    draft = work.draft
    if exit_event is not None and isinstance(exit_event.get("exit"), int):
        code = exit_event["exit"]
        if code >= 0:
            delay = float(exit_event["t"]) - draft.last_t
            draft.add(
                {"expect_exit": {"code": code, "within": _within(delay, MIN_EXIT_WITHIN_MS)}},
                float(exit_event["t"]),
            )
    steps = _unordered_bursts(draft, work.sent_ids)
    init = work.init
    header = _header(
        check=check,
        requirement=requirement,
        description=description,
        level=level,
        mode=mode or ((init or {}).get("mode") if work.overlapping else None),
        init=init is not None,
        recorded=recorded or _recorded(start),
        duration=(lines[-1].t if lines else 0.0),
        requests=len(work.sent_ids),
    )
    return [header, *steps]


class _Generalizer:
    def __init__(self, exact_data: bool) -> None:
        self.exact_data = exact_data
        self.draft = _Draft()
        self.init: dict[str, Any] | None = None
        self.sent_ids: dict[str, int] = {}  # master request id -> order sent
        self.outstanding: set[str] = set()
        self.overlapping = False  # did the master ever have two requests out at once?
        self.captures: dict[str, str] = {}  # worker request id -> capture name
        self.first_master_line = True

    def master_line(self, line: _Line) -> None:
        draft = self.draft
        if line.eof:
            draft.add({"close_stdin": True}, line.t)
            return
        if self.first_master_line:
            self.first_master_line = False
            if line.kind == "INIT":
                self.init = line.message
                draft.last_t = line.t
                return
        gap = line.t - draft.last_t
        if draft.steps and gap >= WAIT_THRESHOLD_MS:
            draft.add({"wait": round(gap / 10) * 10}, line.t)
        msg = line.message
        if msg is None:
            draft.add(_raw_step(line), line.t)
            return
        if line.kind == "REQUEST" and (rid := _request_id(msg)) is not None:
            if self.outstanding:
                self.overlapping = True
            self.outstanding.add(rid)
            self.sent_ids.setdefault(rid, len(self.sent_ids))
        send = _escape_send(msg)
        answered = msg.get("id") if line.kind == "RESPONSE" else None
        if isinstance(answered, str) and answered in self.captures:
            name = self.captures[answered]
            send["id"] = {"$ref": name}
            last = draft.steps[-1] if draft.steps else None
            if last is not None and "expect" in last and _captures(last["expect"]) == name:
                # The master answered at once: one `answer` step.
                step: dict[str, Any] = {"answer": {"request": last["expect"], "response": send}}
                if "within" in last:
                    step["within"] = last["within"]
                draft.steps[-1] = step
                draft.last_t = line.t
                return
        draft.add({"send": send}, line.t)

    def worker_line(self, line: _Line) -> None:
        # A line cut off by the end of output never reaches a transcript's steps (the
        # suite's frame.no-partial-line check reports it).
        if line.eof or line.partial or line.kind in FREE_TYPES:
            return
        delay = line.t - self.draft.last_t
        answers: str | None = None
        msg = line.value
        if msg is _NOT_JSON:
            # What the suite makes of a line that is not JSON, newline included.
            text = line.text if line.text is not None else line.raw.decode("utf-8", "replace")
            expected: Any = {"(not JSON)": text + "\n"}
        elif not isinstance(msg, dict):
            expected = _escape_expected(msg, False)
        else:
            expected = _expected(msg, self.exact_data)
            rid = msg.get("id")
            if line.kind == "REQUEST" and (rid := _request_id(msg)) is not None:
                name = f"req{len(self.captures) + 1}"
                self.captures[rid] = name
                _set_request_id(expected, {"$capture": name})
            elif line.kind == "RESPONSE" and isinstance(rid, str) and rid in self.outstanding:
                self.outstanding.discard(rid)
                answers = rid
        step: dict[str, Any] = {"expect": expected}
        within = _within(delay)
        if within > MIN_WITHIN_MS:
            step["within"] = within
        self.draft.add(step, line.t, answers)


def _raw_step(line: _Line) -> dict[str, Any]:
    if line.text is not None:
        step: dict[str, Any] = {"send_raw": line.text}
        if line.partial:
            step["newline"] = False
        return step
    return {"send_hex": (line.raw + (b"" if line.partial else b"\n")).hex()}


def _request_id(msg: Mapping[str, Any]) -> str | None:
    inner = msg.get("request")
    if "request" in msg:
        rid = inner.get("id") if isinstance(inner, dict) else None
    else:
        rid = msg.get("id")
    return rid if isinstance(rid, str) else None


def _set_request_id(expected: dict[str, Any], value: Any) -> None:
    if "request" in expected and isinstance(expected["request"], dict):
        expected["request"]["id"] = value
    else:
        expected["id"] = value


def _captures(expected: Any) -> str | None:
    if not isinstance(expected, dict):
        return None
    target = expected.get("request") if "request" in expected else expected
    rid = target.get("id") if isinstance(target, dict) else None
    return rid.get("$capture") if isinstance(rid, dict) else None


def _looks_special(value: dict[str, Any]) -> bool:
    return any(isinstance(k, str) and k.startswith("$") for k in value)


def _escape_send(value: Any) -> Any:
    """A message to send, with data that ``resolve`` would take for a ``$ref`` or a
    ``$literal`` wrapped in ``$literal``."""
    if isinstance(value, dict):
        if set(value) in ({"$ref"}, {"$literal"}):
            return {"$literal": value}
        return {k: _escape_send(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape_send(v) for v in value]
    return value


def _escape_expected(value: Any, exact: bool) -> Any:
    """A value to expect as it is: objects that could be read as matchers are wrapped in
    ``$literal``; with ``exact``, objects get ``"$exact": true``."""
    if isinstance(value, dict):
        if _looks_special(value) or is_matcher(value):
            return {"$literal": value}
        inner = {k: _escape_expected(v, exact) for k, v in value.items()}
        return {"$exact": True, **inner} if exact else inner
    if isinstance(value, list):
        return [_escape_expected(v, exact) for v in value]
    return value


def _expected(msg: Mapping[str, Any], exact_data: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in msg.items():
        if key in VOLATILE_INTEGERS and isinstance(value, int) and not isinstance(value, bool):
            out[key] = {"$type": "integer"}
        elif key == "data":
            out[key] = _escape_expected(value, exact_data)
        elif key == "request" and isinstance(value, dict):
            out[key] = {
                k: (_escape_expected(v, exact_data) if k == "data" else _escape_expected(v, False))
                for k, v in value.items()
            }
        elif key == "errorPayload" and isinstance(value, dict):
            payload = {k: _escape_expected(v, False) for k, v in value.items()}
            if isinstance(value.get("stack"), str):
                payload["stack"] = {"$type": "string"}
            out[key] = payload
        else:
            out[key] = _escape_expected(value, False)
    return out


def _unordered_bursts(draft: _Draft, sent_ids: Mapping[str, int]) -> list[dict[str, Any]]:
    """Runs of responses to the master, one right after the other, that came in another
    order than their requests went out, made into ``expect_unordered`` steps."""
    out: list[dict[str, Any]] = []
    i = 0
    steps = draft.steps
    while i < len(steps):
        j = i
        while j < len(steps) and draft.answers[j] is not None:
            j += 1
        if j - i >= 2:
            order = [sent_ids[a] for a in draft.answers[i:j] if a is not None]
            if order != sorted(order):
                before = draft.times[i - 1] if i > 0 else 0.0
                step: dict[str, Any] = {
                    "expect_unordered": [s["expect"] for s in steps[i:j]],
                }
                within = _within(draft.times[j - 1] - before)
                if within > MIN_WITHIN_MS:
                    step["within"] = within
                out.append(step)
                i = j
                continue
        if j > i:
            out.extend(steps[i:j])
            i = j
        else:
            out.append(steps[i])
            i += 1
    return out


def _recorded(start: Mapping[str, Any]) -> str:
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    argv = start.get("argv")
    cwd = Path(start["cwd"]) if isinstance(start.get("cwd"), str) else None
    what = f"from {display_command(argv, cwd)}" if isinstance(argv, list) and argv else ""
    return f"{today} with python -m peepsy.conformance record {what}".strip()


def _header(
    *,
    check: str | None,
    requirement: Sequence[str],
    description: str | None,
    level: str | None,
    mode: str | None,
    init: bool,
    recorded: str,
    duration: float,
    requests: int,
) -> dict[str, Any]:
    header: dict[str, Any] = {
        "check": check or "recorded.transcript",
        "requirement": list(requirement) or ["RESP-1"],
    }
    if level is not None:
        header["level"] = level
    if mode is not None and mode != "any":
        header["mode"] = mode
    if not init:
        header["init"] = False
    budget = int(math.ceil(3 * duration / 1000) * 1000)
    if budget > 15_000:
        header["timeout"] = min(budget, 300_000)
    header["description"] = description or (
        f"recorded exchange of {requests} request(s): say what it checks"
    )
    header["recorded"] = recorded
    return header
