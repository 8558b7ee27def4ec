"""Runs the transcripts against a worker and adds the checks that watch every run.

This module schedules the checks (``options.jobs`` at a time, longest first), stops
them on SIGINT, and gathers their outcomes in check order. The probe is in
``_probe.py``, one check's run in ``_run_one.py``, and the options and the result in
``_suite_setup.py``; the names this module offered before they moved are re-exported,
as the command line, the reports and the tests import them from here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from peepsy.conformance._checks import GLOBAL_CHECKS, GlobalCheck
from peepsy.conformance._levels import learn_levels, offered
from peepsy.conformance._probe import FLUSH_CHECK_MS, PROBE_MS, ProbeResult, probe
from peepsy.conformance._run_one import run_one
from peepsy.conformance._schemas import builtin_transcripts
from peepsy.conformance._suite_setup import (
    HEARTBEAT_MS,
    PROFILE_ACTIONS,
    Interrupted,
    Options,
    SuiteResult,
    WorkerNotStarted,
    init_message,
    load_all,
    selected,
)
from peepsy.conformance._transcript import Outcome, Transcript
from peepsy.conformance._wire import Session

__all__ = [
    "FLUSH_CHECK_MS",
    "HEARTBEAT_MS",
    "PROBE_MS",
    "PROFILE_ACTIONS",
    "Interrupted",
    "Options",
    "ProbeResult",
    "SuiteResult",
    "WorkerNotStarted",
    "expected_ms",
    "init_message",
    "load_all",
    "probe",
    "run_one",
    "run_suite",
    "selected",
]


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
            out.append(Outcome.of(transcripts[position], "not-run", f"not run: {why}"))
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
            record(position, Outcome.of(transcript, "not-run", f"not run: {why}"), True)
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
            record(position, Outcome.of(transcript, "skip", reason), False)
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
    """What the probe says about the worker's mode and levels."""
    if options.mode is not None:
        result.mode, result.mode_source = options.mode, "--mode"
    elif found.announced in ("sequential", "concurrent"):
        result.mode, result.mode_source = found.announced, "READY"
    else:
        result.mode, result.mode_source = mode, "INIT (assumed)"
    learn_levels(options, result, found)


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
    reason = offered(transcript.level, result)
    if reason:
        return reason
    if options.transport not in transcript.transports:
        return f"not applicable over {options.transport}: it cannot be sent there"
    if transcript.mode not in ("any", result.mode):
        return f"for {transcript.mode} workers; this one is {result.mode}"
    return ""
