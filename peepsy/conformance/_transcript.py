"""Transcripts: what the master sends and what it expects back, as data.

A transcript is a newline-delimited JSON file (``conformance/transcript.schema.json``).
Its first line is the header; every other line is one step::

    {"check": "resp.unknown-action", "requirement": ["RESP-4"], "level": "core",
     "severity": "MUST", "description": "..."}
    {"send": {"type": "REQUEST", "id": "c1", "action": "no-such-action"}}
    {"expect": {"type": "RESPONSE", "id": "c1", "status": 404,
                "error": {"$type": "string"}}, "within": 2000}

HEARTBEATs interleave freely: ``expect`` steps never see them (each is still validated
against the schema by the suite), and ``expect_heartbeats`` counts them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from peepsy.conformance._matchers import (
    MatchContext,
    Mismatch,
    match,
    pattern_names,
    resolve,
    show,
    template_refs,
)
from peepsy.conformance._schemas import record_problems
from peepsy.conformance._wire import Session, WireLine

Verdict = Literal["pass", "fail", "warn", "skip", "untestable", "not-run", "timeout", "error"]
Transport = Literal["stdio", "node-ipc"]
Level = Literal["core", "profile"]
DEFAULT_WITHIN = 2000
#: Until a worker has written its first line, every deadline also covers its start-up:
#: how long a process takes to start depends on how busy the machine is (dozens of
#: workers starting at once under -j, on a loaded CI host), not on the rule a step
#: checks. Timed checks warm up with an echo first, so they never run inside it.
STARTUP_ALLOWANCE_MS = 5000


class TranscriptError(ValueError):
    """A transcript file that is not valid."""


@dataclass(frozen=True, slots=True)
class Transcript:
    check: str
    requirement: tuple[str, ...]
    level: Level
    severity: Literal["MUST", "SHOULD"]
    description: str
    steps: tuple[dict[str, Any], ...]
    source: str
    mode: Literal["any", "sequential", "concurrent"] = "any"
    #: Send INIT first; a mapping adds its members to the suite's INIT.
    init: bool | dict[str, Any] = True
    #: The channels the case can be sent on (Node's IPC channel carries JSON only).
    transports: tuple[Transport, ...] = ("stdio", "node-ipc")
    timeout: int = 15_000
    #: The file's line number of each step (blank lines are skipped, not counted out).
    step_lines: tuple[int, ...] = ()


@dataclass(slots=True)
class Outcome:
    """What one check came to."""

    check: str
    requirement: tuple[str, ...]
    level: Level
    severity: str
    description: str
    verdict: Verdict
    message: str = ""
    expected: Any = None
    actual: Any = None
    mismatches: list[Mismatch] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    stderr: str = ""
    duration_ms: float = 0.0
    source: str = ""
    #: How the worker ended when it ended during the check (``exited with status 3``);
    #: "" when it was still running at the check's end.
    worker_exit: str = ""

    @property
    def failed(self) -> bool:
        return self.verdict in ("fail", "error", "timeout")


def load_transcript(path: Path, validate: bool = True) -> Transcript:
    """Read and check one transcript file. Every problem is reported as ``FILE:LINE:
    what is wrong`` in a :class:`TranscriptError`: lines that are not JSON, lines that
    break conformance/transcript.schema.json (with ``validate``), unknown matchers and
    ``$ref``s to captures that no earlier step makes."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscriptError(f"{path}: cannot read it: {exc}") from exc
    records: list[tuple[int, Any]] = []
    problems: list[str] = []
    # Lines end at \n only: U+2028 and friends are ordinary characters in NDJSON.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            # Strict JSON (RFC 8259), as on the wire: a transcript must not send NaN,
            # Infinity or a number no double holds.
            records.append(
                (number, json.loads(line, parse_constant=_not_json, parse_float=_finite))
            )
        except ValueError as exc:
            problems.append(f"{path}:{number}: not JSON: {exc}")
    if not records and not problems:
        raise TranscriptError(f"{path}: empty transcript (the first line is the header)")
    if validate and not problems:
        for index, (number, record) in enumerate(records):
            problems += [
                f"{path}:{number}: {p}" for p in record_problems(record, header=index == 0)
            ]
    if not problems:
        problems += [f"{path}:{n}: {p}" for n, p in _matcher_problems(records[1:])]
    if problems:
        raise TranscriptError("\n".join(problems[:10]))
    (_, head), steps = records[0], records[1:]
    if not isinstance(head, dict) or not {"check", "requirement"} <= set(head):
        raise TranscriptError(f"{path}:{records[0][0]}: the header needs check and requirement")
    return Transcript(
        check=head["check"],
        requirement=tuple(head["requirement"]),
        level=head.get("level", "core"),
        severity=head.get("severity", "MUST"),
        description=head.get("description", ""),
        steps=tuple(step for _, step in steps),
        source=str(path),
        mode=head.get("mode", "any"),
        init=head.get("init", True),
        transports=tuple(head.get("transports", ("stdio", "node-ipc"))),
        timeout=head.get("timeout", 15_000),
        step_lines=tuple(number for number, _ in steps),
    )


def _matcher_problems(steps: list[tuple[int, Any]]) -> list[tuple[int, str]]:
    """Unknown matchers, and ``$ref``s to names that no step up to this one captures."""
    captured: set[str] = set()
    out: list[tuple[int, str]] = []
    for number, step in steps:
        if not isinstance(step, dict):
            continue
        patterns: list[tuple[str, Any]] = []
        templates: list[tuple[str, Any]] = []
        if "expect_ready" in step:
            patterns.append(("$expect_ready", step["expect_ready"]))
        if "expect" in step:
            patterns.append(("$expect", step["expect"]))
            patterns += [(f"$allow[{i}]", a) for i, a in enumerate(step.get("allow", []))]
        if "expect_unordered" in step:
            patterns += [
                (f"$expect_unordered[{i}]", e) for i, e in enumerate(step["expect_unordered"])
            ]
        if isinstance(step.get("answer"), dict):
            patterns.append(("$answer.request", step["answer"].get("request")))
            templates.append(("$answer.response", step["answer"].get("response")))
        if isinstance(step.get("expect_exit"), dict) and "code" in step["expect_exit"]:
            patterns.append(("$expect_exit.code", step["expect_exit"]["code"]))
        if "send" in step:
            templates.append(("$send", step["send"]))
        for where, pattern in patterns:
            names, refs, problems = pattern_names(pattern, where)
            captured |= names
            out += [(number, p) for p in problems]
            out += [
                (number, f"{at}: $ref {name!r} names no capture made before it")
                for name, at in refs
                if name not in captured
            ]
        for where, template in templates:
            for name, at in template_refs(template, where):
                if name not in captured:
                    out.append((number, f"{at}: $ref {name!r} names no capture made before it"))
    return out


class NotTestable(Exception):
    """The case ran but the worker gave it nothing to judge: never a pass."""


class StepFailed(Exception):
    def __init__(
        self,
        message: str,
        expected: Any = None,
        actual: Any = None,
        mismatches: list[Mismatch] | None = None,
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual
        self.mismatches = mismatches or []


@dataclass(slots=True)
class Runner:
    """Plays one transcript against one fresh session of the worker."""

    session: Session
    ctx: MatchContext
    init_message: dict[str, Any] | None

    async def play(self, transcript: Transcript) -> None:
        if transcript.init and self.init_message is not None:
            extra = transcript.init if isinstance(transcript.init, dict) else {}
            self.session.send({**self.init_message, **extra})
        lines = transcript.step_lines or range(2, len(transcript.steps) + 2)
        for number, step in zip(lines, transcript.steps, strict=True):
            try:
                await self._step(step)
            except StepFailed as exc:
                raise StepFailed(
                    f"line {number}: {exc}", exc.expected, exc.actual, exc.mismatches
                ) from None

    async def _step(self, step: dict[str, Any]) -> None:  # noqa: PLR0915 - one branch per op
        s = self.session
        startup = 0.0 if s.heard else STARTUP_ALLOWANCE_MS
        within = float(step.get("within", DEFAULT_WITHIN)) + startup
        if "send" in step:
            s.send(resolve(step["send"], self.ctx))
            await s.drain()
        elif "send_raw" in step:
            tail = "\n" if step.get("newline", True) else ""
            s.send_raw((step["send_raw"] + tail).encode("utf-8"))
            await s.drain()
        elif "send_hex" in step:
            s.send_raw(bytes.fromhex(step["send_hex"]))
            await s.drain()
        elif "send_base64" in step:
            s.send_raw(base64.b64decode(step["send_base64"]))
            await s.drain()
        elif "send_large" in step:
            spec = step["send_large"]
            message = {
                "type": "REQUEST",
                "id": spec["id"],
                "action": spec["action"],
                "data": "x" * spec["bytes"],
            }
            s.send(message)
            await s.drain()
        elif "send_nested" in step:
            spec = step["send_nested"]
            # Written as text: the depth may exceed what a JSON encoder recurses through.
            leaf = json.dumps(spec.get("leaf", 1))
            head = json.dumps({"type": "REQUEST", "id": spec["id"], "action": spec["action"]})
            data = "[" * spec["depth"] + leaf + "]" * spec["depth"]
            s.send_raw(f'{head[:-1]},"data":{data}}}\n'.encode())
            await s.drain()
        elif "expect" in step:
            await self._expect(
                step["expect"],
                within,
                step.get("allow", ()),
                step.get("untestable_if_silent"),
                step.get("untestable_if_mismatch"),
            )
        elif "expect_ready" in step:
            await self._expect_ready(
                step["expect_ready"], within, step.get("untestable_if_missing")
            )
        elif "expect_unordered" in step:
            await self._expect_unordered(step["expect_unordered"], within)
        elif "answer" in step:
            spec = step["answer"]
            await self._expect(spec["request"], within)
            s.send(resolve(spec["response"], self.ctx))
            await s.drain()
        elif "expect_silence" in step:
            line = await s.next_message(float(step["expect_silence"]))
            if line is not None:
                raise StepFailed(
                    f"expected no message for {step['expect_silence']} ms, got one",
                    "no message (heartbeats aside)",
                    _payload(line),
                )
        elif "expect_heartbeats" in step:
            spec = step["expect_heartbeats"]
            start = len(s.heartbeats)
            deadline = asyncio.get_running_loop().time() + spec["within"] / 1000
            while len(s.heartbeats) - start < spec["count"]:
                left = deadline - asyncio.get_running_loop().time()
                if left > 0 and not s.output_closed:
                    # Woken by the next HEARTBEAT (or the end of the output), not a poll.
                    s.heartbeat_seen.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(s.heartbeat_seen.wait(), left)
                    continue
                if not s.heartbeats and step.get("untestable_if_none"):
                    raise NotTestable(step["untestable_if_none"])
                got = len(s.heartbeats) - start
                raise StepFailed(
                    f"expected {spec['count']} HEARTBEATs within {spec['within']} ms, got {got}",
                    f"{spec['count']} heartbeats",
                    f"{got} heartbeats",
                )
        elif "close_stdin" in step:
            s.close_stdin()
        elif "expect_exit" in step:
            spec = step["expect_exit"]
            code = await s.wait_exit(float(spec.get("within", 5000)) + startup)
            if code is None:
                raise StepFailed(
                    f"expected the worker to exit within {spec.get('within', 5000)} ms;"
                    " it is still running",
                    "exit",
                    "still running",
                )
            want = spec.get("code", {"$any": True})
            problems = match(want, code, self.ctx, "$exit")
            if problems:
                raise StepFailed(f"exit status {code}", want, code, problems)
        elif "wait" in step:
            await asyncio.sleep(float(step["wait"]) / 1000)
        else:
            raise TranscriptError(f"unknown step {sorted(step)}")

    async def _expect(
        self,
        expected: Any,
        within: float,
        allow: Any = (),
        untestable: str | None = None,
        untestable_mismatch: str | None = None,
    ) -> WireLine:
        """The next message must match ``expected``; messages matching one of ``allow``
        may come before it and are passed over. With ``untestable``, silence makes the
        check untestable rather than failed; with ``untestable_mismatch``, so does a
        message that does not match (a worker that has not opted in to what the check
        needs)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within / 1000
        while True:
            line = await self.session.next_message((deadline - loop.time()) * 1000)
            if line is None:
                if untestable:
                    raise NotTestable(untestable)
                raise StepFailed(
                    self._nothing(f"expected a message within {within:.0f} ms"), expected, None
                )
            problems = match(expected, _payload(line), self.ctx)
            if not problems:
                return line
            if any(not match(other, _payload(line), self.ctx) for other in allow):
                continue
            if untestable_mismatch:
                raise NotTestable(
                    f"{untestable_mismatch} ({problems[0].path}: got {problems[0].actual})"
                )
            raise StepFailed("message does not match", expected, _payload(line), problems)

    async def _expect_ready(self, expected: Any, within: float, untestable: str | None) -> None:
        """A READY matching ``expected`` (READY lines never reach ``expect``)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.session.ready_seen.wait(), within / 1000)
        ready = self.session.ready[0] if self.session.ready else None
        actual = None if ready is None else _payload(ready)
        problems = [] if actual is None else match(expected, actual, self.ctx)
        if actual is not None and not problems:
            return
        if untestable:
            raise NotTestable(untestable)
        if actual is None:
            raise StepFailed(self._nothing(f"expected a READY within {within:.0f} ms"), expected)
        raise StepFailed("READY does not match", expected, actual, problems)

    def _nothing(self, what: str) -> str:
        if self.session.output_closed:
            return f"{what}; the worker closed its output (exited?) first"
        return f"{what}, got none"

    async def _expect_unordered(self, expected: list[Any], within: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within / 1000
        waiting = list(expected)
        while waiting:
            line = await self.session.next_message((deadline - loop.time()) * 1000)
            if line is None:
                raise StepFailed(
                    self._nothing(
                        f"expected {len(waiting)} more message(s) within {within:.0f} ms"
                    ),
                    waiting,
                    None,
                )
            best: list[Mismatch] | None = None
            for i, want in enumerate(waiting):
                problems = match(want, _payload(line), self.ctx)
                if not problems:
                    del waiting[i]
                    break
                if best is None or len(problems) < len(best):
                    best = problems
            else:
                raise StepFailed(
                    "message matches none of those expected", waiting, _payload(line), best or []
                )


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is beyond what a JSON peer holds")
    return value


def _payload(line: WireLine) -> Any:
    if line.message is not None:
        return line.message
    return {"(not JSON)": line.raw.decode("utf-8", "replace")}


def describe(value: Any) -> str:
    return show(value)
