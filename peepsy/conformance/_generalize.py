"""The generalizer (:func:`generalize`, also ``python -m peepsy.conformance generalize
RAW -o FILE``) turns a recording into a transcript: the master's lines become ``send``
steps, the worker's ``expect`` steps, with what differs from run to run turned into
matchers. The result is a draft to review: its header says little more than where it
came from. Apart from the tap (``_record.py``), which runs processes and knows nothing of
transcripts; the per-line walk is in ``_generalize_lines.py`` and the escaping of
values in ``_generalize_mask.py``.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peepsy.conformance._generalize_lines import (
    MIN_EXIT_WITHIN_MS,
    MIN_WITHIN_MS,
    _Draft,
    _Generalizer,
    _lines,
    _within,
)


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
