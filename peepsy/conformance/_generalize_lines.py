"""The generalizer's walk over a recording: its events read back as lines, and the
:class:`_Generalizer` that turns the master's and the worker's lines, one at a time,
into draft steps (``send``, ``expect``, ``answer``, ``wait``...). Apart from
``_generalize.py``, which makes the header and reorders the finished draft, because
this per-line state is the part that grows with each kind of step a recording can hold.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from peepsy.conformance._generalize_mask import (
    _captures,
    _escape_expected,
    _escape_send,
    _expected,
    _request_id,
    _set_request_id,
)

#: Messages that come whenever the worker likes (HB-1, READY-1): not part of a transcript.
FREE_TYPES: Final = frozenset({"HEARTBEAT", "READY"})
#: A master that paused at least this long before a line gets a ``wait`` step.
WAIT_THRESHOLD_MS: Final = 50.0
#: ``within`` is SLACK times the delay seen, and never less than MIN_WITHIN_MS.
SLACK: Final = 5.0
MIN_WITHIN_MS: Final = 2000.0
MIN_EXIT_WITHIN_MS: Final = 5000.0


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
