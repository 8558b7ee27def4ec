"""Runs the transcripts against a worker and adds the checks that watch every run."""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peepsy.conformance._checks import GLOBAL_CHECKS, GlobalCheck
from peepsy.conformance._matchers import MatchContext
from peepsy.conformance._runner import Runner
from peepsy.conformance._schemas import builtin_transcripts, schema_errors
from peepsy.conformance._transcript import (
    STARTUP_ALLOWANCE_MS,
    NotTestable,
    Outcome,
    StepFailed,
    Transcript,
    TranscriptError,
    Verdict,
    load_transcript,
)
from peepsy.conformance._wire import Session, WireLine

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
    #: How many checks run at once, each with its own worker process.
    jobs: int = 1


@dataclass(slots=True)
class SuiteResult:
    outcomes: list[Outcome] = field(default_factory=list)
    mode: str = "sequential"
    mode_source: str = "INIT (assumed)"
    profile: bool = False
    profile_note: str = ""
    worker: Sequence[str] = ()
    #: Why no check could run (the worker died at start-up, say), told once; else "".
    startup_problem: str = ""
    #: The end of the worker's stderr in the probe, shown with ``startup_problem``.
    startup_stderr: list[str] = field(default_factory=list)
    #: The run was stopped by SIGINT: the checks that had not finished are ``not-run``.
    interrupted: bool = False


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


class Interrupted(Exception):
    """SIGINT: the run stops; what finished is kept in :attr:`result`."""

    def __init__(self, result: SuiteResult) -> None:
        super().__init__("interrupted")
        self.result = result


@dataclass(slots=True)
class ProbeResult:
    profile: bool
    note: str
    announced: str | None
    #: Set when the worker cannot be checked at all: every check is then ``not-run``.
    problem: str = ""
    stderr: list[str] = field(default_factory=list)


#: The probe's echo; the worker must answer it within this (times --timeout-scale).
PROBE_MS = 5000
#: After a silent probe, how long the suite waits for answers once the input is closed.
FLUSH_CHECK_MS = 2000


async def probe(options: Options, mode: str, live: set[Session] | None = None) -> ProbeResult:
    """Does the worker serve the conformance profile? Also learns its READY mode, and
    finds the causes that would make every check fail alike: a worker that dies at
    start-up, and one whose answers only come out when its input closes (no flush)."""
    session = Session(options.argv, options.env, options.cwd, transport=options.transport)
    try:
        await session.start()
    except OSError as exc:
        raise WorkerNotStarted(f"could not start the worker {list(options.argv)}: {exc}") from exc
    if live is not None:
        live.add(session)
    try:
        return await _probe(session, options, mode)
    except asyncio.CancelledError:
        session.kill()
        raise
    finally:
        await session.stop()
        if live is not None:
            live.discard(session)


def _probe_answer(line: WireLine) -> dict[str, Any] | None:
    msg = line.message
    if isinstance(msg, dict) and msg.get("type") == "RESPONSE" and msg.get("id") == "probe-1":
        return msg
    return None


async def _probe(session: Session, options: Options, mode: str) -> ProbeResult:
    session.send(init_message(mode))
    session.send(
        {"type": "REQUEST", "id": "probe-1", "action": "echo", "data": {"probe": [1, "é"]}}
    )
    await session.drain()
    answer: dict[str, Any] | None = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROBE_MS / 1000 * options.timeout_scale
    while answer is None:
        line = await session.next_message((deadline - loop.time()) * 1000)
        if line is None:
            break
        answer = _probe_answer(line)
    result = ProbeResult(False, "", None)
    if answer is not None:
        result.profile = answer.get("status") == 200 and answer.get("data") == {"probe": [1, "é"]}
        if not result.profile:
            status = answer.get("status")
            result.note = f"echo answered status {status!r}, so only core checks run"
    elif session.output_closed:
        # It closed its output (it exited, as a rule) before answering anything: every
        # check would fail the same way, so this is said once, with its exit and stderr.
        await session.wait_exit(1000)
        how = session.exit_text()
        result.problem = f"the worker {how} at start-up, before it answered the probe"
        if session.returncode is None:
            result.problem = "the worker closed its stdout at start-up, before it answered"
    else:
        # Silent but alive. Close its input: a worker that buffers its stdout (no flush
        # per line) lets its answers out only now, as it exits. That is seen, not guessed.
        session.close_stdin()
        deadline = loop.time() + FLUSH_CHECK_MS / 1000 * options.timeout_scale
        while answer is None:
            line = await session.next_message((deadline - loop.time()) * 1000)
            if line is None:
                break
            answer = _probe_answer(line)
        if answer is not None:
            result.problem = (
                "the worker did not answer the probe's echo within"
                f" {PROBE_MS * options.timeout_scale:.0f} ms; its answers arrived only after"
                " its input closed: does it flush stdout after each line? (A worker that"
                " only starts slowly looks the same: then raise --timeout-scale.)"
            )
        else:
            result.note = (
                f"the worker did not answer an echo request within"
                f" {PROBE_MS * options.timeout_scale:.0f} ms"
            )
    for ready in session.ready:
        if isinstance(ready.message, dict) and isinstance(ready.message.get("mode"), str):
            result.announced = ready.message["mode"]
    if result.problem:
        result.stderr = session.stderr_tail(10)
    return result


async def run_one(
    transcript: Transcript,
    options: Options,
    mode: str,
    live: set[Session] | None = None,
    judged: Callable[[], None] | None = None,
) -> tuple[Outcome, Session]:
    """Plays one transcript against a fresh worker. ``judged`` is called once the
    verdict is known, before the worker is stopped (which may take its grace)."""
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
    if live is not None:
        live.add(session)
    runner = Runner(session, ctx, init_message(mode))
    try:
        await _within_budget(
            runner.play(transcript), session, transcript.timeout * options.timeout_scale
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
    except asyncio.CancelledError:
        session.kill()  # SIGINT: no grace for the worker, the user is waiting
        raise
    finally:
        if outcome.verdict != "pass":
            await _note_exit(session, outcome)
        if judged is not None:
            judged()
        await session.stop()
        if live is not None:
            live.discard(session)
    outcome.duration_ms = (time.monotonic() - started) * 1000
    outcome.trace = [line.render() for line in session.trace]
    outcome.stderr = session.stderr.decode("utf-8", "replace")[-4000:]
    return outcome, session


async def _note_exit(session: Session, outcome: Outcome) -> None:
    """A check that did not pass because the worker died says how it died: its exit
    status or signal (the stderr's end is shown with every failure)."""
    if session.returncode is None and session.output_closed:
        # Its output closed: it is exiting, as a rule. Wait for that, not for a time.
        await session.wait_exit(1000)
    if session.returncode is not None:
        outcome.worker_exit = session.exit_text()
        outcome.message += f" (the worker {outcome.worker_exit} during the check)"


async def _within_budget(play: Coroutine[Any, Any, None], session: Session, ms: float) -> None:
    """Play a case within its budget; a worker not heard from by then gets the start-up
    allowance on top (its start-up is the machine's load, not the case's doing)."""
    task = asyncio.ensure_future(play)
    try:
        done, _ = await asyncio.wait({task}, timeout=ms / 1000)
        if not done and not session.heard:
            done, _ = await asyncio.wait({task}, timeout=STARTUP_ALLOWANCE_MS / 1000)
        if not done:
            raise TimeoutError
        task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def run_suite(
    options: Options,
    progress: Callable[[Outcome, int, int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> SuiteResult:
    """Runs every selected check, ``options.jobs`` at a time, each in a fresh worker.
    ``progress`` is told of each outcome as it comes (index is the count so far);
    the result lists them in the stable order of the checks. When ``stop`` is set
    (SIGINT) or the call is cancelled, every worker's process group is killed and
    :class:`Interrupted` carries the partial result, its unfinished checks ``not-run``;
    set after the last check, it only marks the result ``interrupted``."""
    dirs = ([builtin_transcripts()] if options.builtin else []) + list(options.transcript_dirs)
    transcripts = [t for t in load_all(dirs) if selected(t.check, options.only, options.skip)]
    global_checks = [g for g in GLOBAL_CHECKS if selected(g.check, options.only, options.skip)]
    total = len(transcripts) + len(global_checks)
    result = SuiteResult(worker=options.argv)
    slots: list[Outcome | None] = [None] * total
    live: set[Session] = set()
    done = 0

    def record(position: int, outcome: Outcome, quiet: bool = False) -> None:
        nonlocal done
        slots[position] = outcome
        done += 1
        if progress is not None and not quiet:
            progress(outcome, done, total)

    # The run is a task of its own, raced against ``stop``: an event, so that a SIGINT
    # at any moment (even between the last check and the return) is seen the same way.
    work = asyncio.create_task(_run_all(options, result, transcripts, global_checks, live, record))
    stopped = asyncio.create_task((stop or asyncio.Event()).wait())
    try:
        await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        stopped.cancel()
        await _interrupt(work, live)
        raise _interrupted(result, slots, transcripts, global_checks) from None
    if not work.done():
        await _interrupt(work, live)
        raise _interrupted(result, slots, transcripts, global_checks)
    stopped.cancel()
    work.result()  # its exceptions are the run's
    result.interrupted = stop is not None and stop.is_set()
    result.outcomes = _fill(slots, transcripts, global_checks, "")
    return result


async def _interrupt(work: asyncio.Task[None], live: set[Session]) -> None:
    """Kill every worker's group first (their tasks' clean-up then finds them gone),
    then cancel the run and wait for that clean-up: each reaps its worker."""
    for session in list(live):
        session.kill()
    work.cancel()
    await asyncio.gather(work, return_exceptions=True)
    for session in list(live):  # started while the others were being killed
        session.kill()


def _interrupted(
    result: SuiteResult,
    slots: list[Outcome | None],
    transcripts: list[Transcript],
    global_checks: list[GlobalCheck],
) -> Interrupted:
    result.interrupted = True
    result.outcomes = _fill(slots, transcripts, global_checks, "interrupted (SIGINT)")
    return Interrupted(result)


def _fill(
    slots: list[Outcome | None],
    transcripts: list[Transcript],
    global_checks: list[GlobalCheck],
    why: str,
) -> list[Outcome]:
    """The outcomes in check order; a check that has none was not run, for ``why``."""
    out: list[Outcome] = []
    for position, slot in enumerate(slots):
        if slot is not None:
            out.append(slot)
        elif position < len(transcripts):
            out.append(_skipped(transcripts[position], f"not run: {why}", "not-run"))
        else:
            out.append(
                global_checks[position - len(transcripts)].outcome("not-run", f"not run: {why}")
            )
    return out


async def _run_all(
    options: Options,
    result: SuiteResult,
    transcripts: list[Transcript],
    global_checks: list[GlobalCheck],
    live: set[Session],
    record: Callable[[int, Outcome, bool], None],
) -> None:
    mode = options.mode or "sequential"
    found = await probe(options, mode, live)
    _learn(options, result, found, mode)
    if found.problem:
        result.startup_problem, result.startup_stderr = found.problem, found.stderr
        why = f"the worker cannot be checked: {found.problem}"
        # One cause, said once (by the summary): no progress line per check for it.
        for position, transcript in enumerate(transcripts):
            record(position, _skipped(transcript, f"not run: {why}", "not-run"), True)
        for offset, check in enumerate(global_checks, start=len(transcripts)):
            record(offset, check.outcome("not-run", f"not run: {why}"), True)
        return
    sessions: list[Session | None] = [None] * len(transcripts)
    limit = asyncio.Semaphore(max(1, options.jobs))

    async def one(position: int, transcript: Transcript) -> None:
        await limit.acquire()
        held = [True]

        def free() -> None:
            if held:
                held.clear()
                limit.release()

        try:
            # The slot is freed at the verdict: a worker taking its grace to exit (up to
            # a second, with a handler still running) costs no CPU, and need not hold
            # back the next check.
            outcome, session = await run_one(transcript, options, result.mode, live, free)
        finally:
            free()
        sessions[position] = session
        record(position, outcome, False)

    tasks: list[asyncio.Task[None]] = []
    # Longest first: a long check started last would leave the other slots idle at the
    # end. The semaphore's waiters are served in the order the tasks were created.
    order = sorted(range(len(transcripts)), key=lambda i: -expected_ms(transcripts[i]))
    for position in order:
        transcript = transcripts[position]
        reason = _not_applicable(transcript, options, result)
        if reason:
            record(position, _skipped(transcript, reason), False)
        else:
            tasks.append(asyncio.create_task(one(position, transcript)))
    try:
        await asyncio.gather(*tasks)
    finally:
        # Cancelled (SIGINT), gather has cancelled each task once: wait for their clean-up
        # (each reaps its killed worker). A second cancel would cut that clean-up short
        # and leave processes the closed loop still watches.
        await asyncio.shield(asyncio.gather(*tasks, return_exceptions=True))
    ran = [s for s in sessions if s is not None]
    for offset, check in enumerate(global_checks, start=len(transcripts)):
        outcome = check.judge(ran)
        if not ran:
            # No run wrote anything: nothing to judge, which is not a pass (nor a skip
            # for this worker's sake).
            outcome.verdict = "untestable"
            outcome.message = "not testable: no other check ran, so no output to judge"
        record(offset, outcome, False)


def _learn(options: Options, result: SuiteResult, found: ProbeResult, mode: str) -> None:
    """What the probe says about the worker's mode and level."""
    if options.mode is not None:
        result.mode, result.mode_source = options.mode, "--mode"
    elif found.announced in ("sequential", "concurrent"):
        result.mode, result.mode_source = found.announced, "READY"
    else:
        result.mode, result.mode_source = mode, "INIT (assumed)"
    result.profile = found.profile if options.level != "core" else False
    result.profile_note = found.note if options.level != "core" else "--level core"
    if options.level == "profile" and not found.profile:
        result.profile_note = found.note + " (--level profile: profile checks run and fail)"
        result.profile = True


def expected_ms(transcript: Transcript) -> float:
    """A rough lower bound of how long a case takes, from the waits it is made of: its
    ``wait``, ``expect_silence`` and ``expect_heartbeats`` steps and its longest
    ``sleep`` request. Only the order of the cases depends on it."""
    total, longest_sleep = 0.0, 0.0
    for step in transcript.steps:
        total += float(step.get("wait", 0)) + float(step.get("expect_silence", 0))
        beats = step.get("expect_heartbeats")
        if isinstance(beats, dict):
            total += float(beats.get("within", 0))
        sent = step.get("send")
        if isinstance(sent, dict):
            nested = sent.get("request")
            inner: dict[str, Any] = nested if isinstance(nested, dict) else sent
            data = inner.get("data")
            if inner.get("action") == "sleep" and isinstance(data, int | float):
                longest_sleep = max(longest_sleep, float(data))
    return total + longest_sleep


def _not_applicable(transcript: Transcript, options: Options, result: SuiteResult) -> str:
    if transcript.level == "profile" and not result.profile:
        return f"profile level not offered: {result.profile_note}"
    if options.transport not in transcript.transports:
        return f"not applicable over {options.transport}: it cannot be sent there"
    if transcript.mode not in ("any", result.mode):
        return f"for {transcript.mode} workers; this one is {result.mode}"
    return ""


def _skipped(transcript: Transcript, why: str, verdict: Verdict = "skip") -> Outcome:
    return Outcome(
        check=transcript.check,
        requirement=transcript.requirement,
        level=transcript.level,
        severity=transcript.severity,
        description=transcript.description,
        verdict=verdict,
        message=why,
        source=transcript.source,
    )
