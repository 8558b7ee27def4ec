"""Runs the transcripts against a worker and adds the checks that watch every run."""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peepsy.conformance._checks import GLOBAL_CHECKS
from peepsy.conformance._matchers import MatchContext
from peepsy.conformance._schemas import builtin_transcripts, schema_errors
from peepsy.conformance._transcript import (
    NotTestable,
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
    except NotTestable as exc:
        outcome.verdict, outcome.message = "untestable", f"not testable: {exc}"
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
        elif options.transport not in transcript.transports:
            outcome = _skipped(
                transcript, f"not applicable over {options.transport}: it cannot be sent there"
            )
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
