"""Runs the transcripts against a worker and adds the checks that watch every run."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from peepsy.conformance._matchers import MatchContext
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


def data_dir() -> Path:
    """schema/ and conformance/ as shipped (symlinked into the package in a checkout)."""
    return Path(str(files("peepsy"))) / "_data"


def builtin_transcripts() -> Path:
    return data_dir() / "conformance" / "transcripts"


@cache
def _validators() -> tuple[Any, Any]:
    try:
        # Imported here: jsonschema is the `conformance` extra, not a core dependency.
        from jsonschema import Draft202012Validator  # noqa: PLC0415
        from referencing import Registry, Resource  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SystemExit(
            "the conformance suite needs jsonschema: pip install 'peepsy[conformance]'"
        ) from exc
    schema_dir = data_dir() / "schema"
    resources = [
        Resource.from_contents(json.loads(p.read_text(encoding="utf-8")))
        for p in sorted(schema_dir.glob("*.json"))
    ]
    registry: Any = Registry().with_resources((r.id() or "", r) for r in resources)
    transcript_schema = json.loads(
        (data_dir() / "conformance" / "transcript.schema.json").read_text(encoding="utf-8")
    )
    return registry, (Draft202012Validator, transcript_schema)


def schema_errors(name: str, value: Any) -> list[str]:
    """Problems of ``value`` against ``schema/NAME`` (empty when valid)."""
    registry, (validator_cls, _) = _validators()
    validator = validator_cls({"$ref": f"https://peepsy.dev/schema/1/{name}"}, registry=registry)
    return [
        f"{'$' + ''.join(f'[{p}]' if isinstance(p, int) else f'.{p}' for p in e.absolute_path)}: "
        f"{e.message}"
        for e in validator.iter_errors(value)
    ][:5]


def transcript_problems(records: list[Any]) -> list[str]:
    _, (validator_cls, schema) = _validators()
    validator = validator_cls(schema)
    out = []
    for number, record in enumerate(records, start=1):
        kind = "header" if number == 1 else "step"
        wrapped = {kind: record}
        out += [f"line {number}: {e.message}" for e in validator.iter_errors(wrapped)][:3]
    return out


def load_all(dirs: Iterable[Path]) -> list[Transcript]:
    found: dict[str, Transcript] = {}
    for directory in dirs:
        for path in sorted(directory.rglob("*.ndjson")):
            transcript = load_transcript(path, transcript_problems)
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


async def probe(options: Options, mode: str) -> tuple[bool, str, str | None, Session]:
    """Does the worker serve the conformance profile? Also learns its READY mode."""
    session = Session(options.argv, options.env, options.cwd)
    await session.start()
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
    session = Session(options.argv, options.env, options.cwd)
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
    total = len(transcripts) + len(GLOBAL_CHECKS)
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
    for offset, check in enumerate(GLOBAL_CHECKS, start=len(transcripts) + 1):
        if not selected(check.check, options.only, options.skip):
            continue
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


def _unknown_members(session: Session) -> list[str]:
    out = []
    for line in _from_worker(session):
        msg = line.message
        if isinstance(msg, dict) and msg.get("type") in _KNOWN:
            extra = sorted(
                k for k in msg if k not in _KNOWN[msg["type"]] and not k.startswith("x-")
            )
            if extra:
                out.append(f"{msg['type']} with {', '.join(extra)}")
    return out


def _failure_error_text(session: Session) -> list[str]:
    out = []
    for line in _from_worker(session):
        msg = line.message
        if (
            isinstance(msg, dict)
            and msg.get("type") == "RESPONSE"
            and isinstance(msg.get("status"), int)
        ):
            if msg["status"] >= 400 and not isinstance(msg.get("error"), str):
                out.append(f"RESPONSE {msg.get('id')!r} status {msg['status']} has no error string")
            if msg["status"] < 400 and ("error" in msg or "errorPayload" in msg):
                out.append(f"RESPONSE {msg.get('id')!r} status {msg['status']} carries an error")
    return out


def _failure_payload(session: Session) -> list[str]:
    out = []
    for line in _from_worker(session):
        msg = line.message
        if (
            (
                isinstance(msg, dict)
                and msg.get("type") == "RESPONSE"
                and isinstance(msg.get("status"), int)
            )
            and msg["status"] >= 400
            and "errorPayload" not in msg
        ):
            out.append(f"RESPONSE {msg.get('id')!r} status {msg['status']} has no errorPayload")
    return out


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
        "SHOULD",
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
)
