"""Runs the transcripts against a worker and adds the checks that watch every run."""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peepsy.conformance._matchers import MatchContext
from peepsy.conformance._schemas import builtin_transcripts, schema_errors
from peepsy.conformance._transcript import (
    Outcome,
    Runner,
    StepFailed,
    Transcript,
    TranscriptError,
    load_transcript,
)
from peepsy.conformance._wire import Session

#: INIT asks for heartbeats this often, so that cadence checks are quick.
HEARTBEAT_MS = 500
PROFILE_ACTIONS = ("echo", "fail", "sleep", "callMaster")


def load_all(dirs: Iterable[Path]) -> list[Transcript]:
    """Every transcript (``*.ndjson``) under each directory, or each file given itself.
    Check ids must be unique across all of them."""
    found: dict[str, Transcript] = {}
    for directory in dirs:
        if directory.is_file():
            paths = [directory]
        elif directory.is_dir():
            paths = sorted(directory.rglob("*.ndjson"))
        else:
            raise TranscriptError(f"{directory}: no such file or directory")
        for path in paths:
            transcript = load_transcript(path)
            if transcript.check in found:
                raise TranscriptError(
                    f"{path}: check id {transcript.check!r} is also in "
                    f"{found[transcript.check].source}"
                )
            found[transcript.check] = transcript
    return list(found.values())


def selected(check: str, only: Sequence[str], skip: Sequence[str]) -> bool:
    if only and not any(fnmatch.fnmatchcase(check, p) for p in only):
        return False
    return not any(fnmatch.fnmatchcase(check, p) for p in skip)


@dataclass(slots=True)
class Options:
    argv: Sequence[str]
    mode: str | None = None
    level: str = "auto"
    only: Sequence[str] = ()
    skip: Sequence[str] = ()
    transcript_dirs: Sequence[Path] = ()
    builtin: bool = True
    timeout_scale: float = 1.0
    env: dict[str, str] | None = None
    cwd: str | None = None
    transport: str = "stdio"


@dataclass(slots=True)
class SuiteResult:
    outcomes: list[Outcome] = field(default_factory=list)
    mode: str = "sequential"
    mode_source: str = "INIT"
    profile: bool = False
    profile_note: str = ""
    worker: Sequence[str] = ()


def init_message(mode: str) -> dict[str, Any]:
    return {
        "type": "INIT",
        "mode": mode,
        "protocol": "1.0",
        "target": "conformance",
        "heartbeatInterval": HEARTBEAT_MS,
    }


class WorkerNotStarted(RuntimeError):
    """The worker command could not be started at all."""


async def probe(options: Options, mode: str) -> tuple[bool, str, str | None, Session]:
    """Does the worker serve the conformance profile? Also learns its READY mode."""
    session = Session(options.argv, options.env, options.cwd, transport=options.transport)
    try:
        await session.start()
    except OSError as exc:
        raise WorkerNotStarted(f"could not start the worker {list(options.argv)}: {exc}") from exc
    session.send(init_message(mode))
    session.send(
        {"type": "REQUEST", "id": "probe-1", "action": "echo", "data": {"probe": [1, "é"]}}
    )
    await session.drain()
    announced: str | None = None
    ok, note = False, "the worker did not answer an echo request within 5 s"
    deadline = time.monotonic() + 5 * options.timeout_scale
    while time.monotonic() < deadline:
        line = await session.next_message((deadline - time.monotonic()) * 1000)
        if line is None:
            break
        msg = line.message
        if isinstance(msg, dict) and msg.get("type") == "RESPONSE" and msg.get("id") == "probe-1":
            ok = msg.get("status") == 200 and msg.get("data") == {"probe": [1, "é"]}
            note = (
                "" if ok else f"echo answered status {msg.get('status')!r}, so only core checks run"
            )
            break
    await session.stop()
    for ready in session.ready:
        if isinstance(ready.message, dict) and isinstance(ready.message.get("mode"), str):
            announced = ready.message["mode"]
    return ok, note, announced, session


async def run_one(transcript: Transcript, options: Options, mode: str) -> tuple[Outcome, Session]:
    outcome = Outcome(
        check=transcript.check,
        requirement=transcript.requirement,
        level=transcript.level,
        severity=transcript.severity,
        description=transcript.description,
        verdict="pass",
        source=transcript.source,
    )
    session = Session(options.argv, options.env, options.cwd, transport=options.transport)
    ctx = MatchContext(schema_check=schema_errors)
    started = time.monotonic()
    try:
        await session.start()
    except OSError as exc:
        outcome.verdict, outcome.message = "error", f"could not start the worker: {exc}"
        return outcome, session
    runner = Runner(session, ctx, init_message(mode))
    try:
        await asyncio.wait_for(
            runner.play(transcript), transcript.timeout * options.timeout_scale / 1000
        )
    except StepFailed as exc:
        outcome.verdict = "fail" if transcript.severity == "MUST" else "warn"
        outcome.message = str(exc)
        outcome.expected, outcome.actual, outcome.mismatches = (
            exc.expected,
            exc.actual,
            exc.mismatches,
        )
    except TimeoutError:
        outcome.verdict = "timeout"
        outcome.message = f"the case did not finish within {transcript.timeout} ms"
    except Exception as exc:  # the run itself broke: say so, and go on with the next case
        outcome.verdict, outcome.message = "error", f"{type(exc).__name__}: {exc}"
    finally:
        await session.stop()
    outcome.duration_ms = (time.monotonic() - started) * 1000
    outcome.trace = [line.render() for line in session.trace]
    outcome.stderr = session.stderr.decode("utf-8", "replace")[-4000:]
    return outcome, session


async def run_suite(
    options: Options, progress: Callable[[Outcome, int, int], None] | None = None
) -> SuiteResult:
    dirs = ([builtin_transcripts()] if options.builtin else []) + list(options.transcript_dirs)
    transcripts = [t for t in load_all(dirs) if selected(t.check, options.only, options.skip)]
    result = SuiteResult(worker=options.argv)
    mode = options.mode or "sequential"
    profile, note, announced, _ = await probe(options, mode)
    if options.mode is not None:
        result.mode, result.mode_source = options.mode, "--mode"
    elif announced in ("sequential", "concurrent"):
        result.mode, result.mode_source = announced, "READY"
    else:
        result.mode, result.mode_source = mode, "INIT (assumed)"
    result.profile = profile if options.level != "core" else False
    result.profile_note = note if options.level != "core" else "--level core"
    if options.level == "profile" and not profile:
        result.profile_note = note + " (--level profile: profile checks run and fail)"
        result.profile = True
    sessions: list[Session] = []
    global_checks = [g for g in GLOBAL_CHECKS if selected(g.check, options.only, options.skip)]
    total = len(transcripts) + len(global_checks)
    for index, transcript in enumerate(transcripts, start=1):
        if transcript.level == "profile" and not result.profile:
            outcome = _skipped(transcript, f"profile level not offered: {result.profile_note}")
        elif transcript.mode not in ("any", result.mode):
            outcome = _skipped(
                transcript, f"for {transcript.mode} workers; this one is {result.mode}"
            )
        else:
            outcome, session = await run_one(transcript, options, result.mode)
            sessions.append(session)
        result.outcomes.append(outcome)
        if progress is not None:
            progress(outcome, index, total)
    for offset, check in enumerate(global_checks, start=len(transcripts) + 1):
        outcome = check.judge(sessions)
        result.outcomes.append(outcome)
        if progress is not None:
            progress(outcome, offset, total)
    return result


def _skipped(transcript: Transcript, why: str) -> Outcome:
    return Outcome(
        check=transcript.check,
        requirement=transcript.requirement,
        level=transcript.level,
        severity=transcript.severity,
        description=transcript.description,
        verdict="skip",
        message=why,
        source=transcript.source,
    )


# --- checks over every line of every run --------------------------------------------------


@dataclass(frozen=True, slots=True)
class GlobalCheck:
    check: str
    requirement: tuple[str, ...]
    severity: str
    description: str
    find: Callable[[Session], list[str]]

    def judge(self, sessions: list[Session]) -> Outcome:
        problems: list[str] = []
        for session in sessions:
            problems += self.find(session)
        verdict = "pass" if not problems else ("fail" if self.severity == "MUST" else "warn")
        if not sessions:
            verdict = "skip"
        return Outcome(
            check=self.check,
            requirement=self.requirement,
            level="core",
            severity=self.severity,
            description=self.description,
            verdict=verdict,  # type: ignore[arg-type]
            message="; ".join(problems[:5])
            + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""),
            source="(built in)",
        )


def _from_worker(session: Session) -> list[Any]:
    return [line for line in session.trace if line.direction == "from-worker"]


def _purity(session: Session) -> list[str]:
    return [
        f"{line.t:.0f} ms: {line.problem}: {line.raw[:80]!r}"
        for line in _from_worker(session)
        if line.problem and "CR LF" not in line.problem and "byte-order" not in line.problem
    ]


def _crlf(session: Session) -> list[str]:
    return [
        f"{line.t:.0f} ms: {line.raw[:60]!r}"
        for line in _from_worker(session)
        if line.raw.endswith(b"\r\n")
    ]


def _bom(session: Session) -> list[str]:
    return [
        f"{line.t:.0f} ms: {line.raw[:60]!r}"
        for line in _from_worker(session)
        if line.raw.startswith(b"\xef\xbb\xbf")
    ]


def _partial(session: Session) -> list[str]:
    return (
        [f"output ended inside a line: {session.partial[:80]!r}"] if session.partial.strip() else []
    )


def _schema(session: Session) -> list[str]:
    out = []
    for line in _from_worker(session):
        if isinstance(line.message, dict) and isinstance(line.message.get("type"), str):
            errors = schema_errors("child-message.json", line.message)
            if errors:
                out.append(f"{line.t:.0f} ms {line.message.get('type')}: {errors[0]}")
    return out


_KNOWN = {
    "READY": {"type", "pid", "protocol", "mode", "actions", "implementation"},
    "REQUEST": {"type", "id", "action", "data", "timeout", "priority", "request"},
    "RESPONSE": {"type", "id", "status", "data", "error", "errorPayload"},
    "HEARTBEAT": {"type", "pid", "timestamp", "requestsActive"},
}


_KNOWN_NESTED = {
    ("RESPONSE", "errorPayload"): {"name", "message", "code", "details", "stack"},
    ("REQUEST", "request"): {"id", "action", "data"},
}
# Members the schema types as integers: JSON Schema counts 404.0 as one, MSG-7 does not.
_INTEGERS = {
    "READY": ("pid",),
    "REQUEST": ("timeout", "priority"),
    "RESPONSE": ("status",),
    "HEARTBEAT": ("pid", "timestamp", "requestsActive"),
}


def _extra(members: dict[str, Any], known: set[str]) -> list[str]:
    return sorted(k for k in members if k not in known and not k.startswith("x-"))


def _unknown_members(session: Session) -> list[str]:
    out = []
    for line in _from_worker(session):
        msg = line.message
        if not isinstance(msg, dict) or msg.get("type") not in _KNOWN:
            continue
        kind = msg["type"]
        extra = _extra(msg, _KNOWN[kind])
        for (owner, member), known in _KNOWN_NESTED.items():
            if kind == owner and isinstance(msg.get(member), dict):
                extra += [f"{member}.{k}" for k in _extra(msg[member], known)]
        if extra:
            out.append(f"{kind} with {', '.join(extra)}")
    return out


def _fractional_integers(session: Session) -> list[str]:
    out = []
    for line in _from_worker(session):
        msg = line.message
        if isinstance(msg, dict) and msg.get("type") in _INTEGERS:
            for member in _INTEGERS[msg["type"]]:
                if isinstance(msg.get(member), float):
                    out.append(f"{msg['type']} {member} written as {msg[member]!r}")
    return out


def _responses(session: Session) -> Iterator[dict[str, Any]]:
    """The worker's RESPONSEs that carry an integer status."""
    for line in _from_worker(session):
        msg = line.message
        is_response = isinstance(msg, dict) and msg.get("type") == "RESPONSE"
        if is_response and isinstance(msg.get("status"), int):
            yield msg


def _stacks(session: Session) -> list[str]:
    return [
        f"RESPONSE {msg.get('id')!r} carries errorPayload.stack"
        for msg in _responses(session)
        if isinstance(msg.get("errorPayload"), dict) and "stack" in msg["errorPayload"]
    ]


def _failure_error_text(session: Session) -> list[str]:
    out = []
    for msg in _responses(session):
        if msg["status"] >= 400 and not isinstance(msg.get("error"), str):
            out.append(f"RESPONSE {msg.get('id')!r} status {msg['status']} has no error string")
        if msg["status"] < 400 and ("error" in msg or "errorPayload" in msg):
            out.append(f"RESPONSE {msg.get('id')!r} status {msg['status']} carries an error")
    return out


def _failure_payload(session: Session) -> list[str]:
    return [
        f"RESPONSE {msg.get('id')!r} status {msg['status']} has no errorPayload"
        for msg in _responses(session)
        if msg["status"] >= 400 and "errorPayload" not in msg
    ]


GLOBAL_CHECKS: tuple[GlobalCheck, ...] = (
    GlobalCheck(
        "stream.stdout-purity",
        ("STREAM-1", "FRAME-1"),
        "MUST",
        "stdout carries protocol lines only: no banner, no stray print",
        _purity,
    ),
    GlobalCheck("frame.no-crlf", ("FRAME-4",), "MUST", "no line ends with CR LF", _crlf),
    GlobalCheck(
        "frame.no-bom", ("FRAME-7",), "MUST", "no line starts with a byte-order mark", _bom
    ),
    GlobalCheck(
        "frame.no-partial-line",
        ("FRAME-2",),
        "MUST",
        "every line the worker wrote ends with a newline",
        _partial,
    ),
    GlobalCheck(
        "msg.schema-valid",
        ("MSG-2", "MSG-6"),
        "MUST",
        "every message the worker sent validates against schema/child-message.json",
        _schema,
    ),
    GlobalCheck(
        "msg.no-unknown-members",
        ("MSG-3",),
        "MUST",
        "the worker sends only members the protocol defines (or x- extensions)",
        _unknown_members,
    ),
    GlobalCheck(
        "resp.error-text",
        ("RESP-3",),
        "MUST",
        "failures carry an error string; successes carry no error",
        _failure_error_text,
    ),
    GlobalCheck(
        "resp.error-payload",
        ("RESP-3",),
        "SHOULD",
        "failures carry a structured errorPayload",
        _failure_payload,
    ),
    GlobalCheck(
        "msg.integers-without-fraction",
        ("MSG-7",),
        "MUST",
        "integers are written without a fraction (404, never 404.0)",
        _fractional_integers,
    ),
    GlobalCheck(
        "resp.no-stack-by-default",
        ("RESP-5",),
        "MUST",
        "no errorPayload.stack unless the worker was configured to send it",
        _stacks,
    ),
)
