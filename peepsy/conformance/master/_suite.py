"""The master suite: one capability probe, then every selected case in parallel (each
with a fresh harness), then the wire checks over the records of every case, and the
levels each came to (conformance/MASTER.md, Verdicts and levels)."""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from peepsy.conformance._schemas import data_dir
from peepsy.conformance._transcript import Outcome
from peepsy.conformance.master._case import MASTER_LEVELS, MasterCase, load_cases
from peepsy.conformance.master._harness import Harness, HarnessError
from peepsy.conformance.master._hub import private_folder
from peepsy.conformance.master._record import ChannelRecord
from peepsy.conformance.master._run_case import run_case, start_command
from peepsy.conformance.master._wire import judge, wire_rows

PROBE_S = 10.0


def builtin_cases() -> Path:
    return data_dir() / "conformance" / "master"


@dataclass(slots=True)
class MasterOptions:
    argv: Sequence[str]
    checks: Sequence[str] = ()  # globs on check ids; empty: every check
    levels: Sequence[str] = ()  # empty: every level
    case_dirs: Sequence[Path] = ()
    builtin: bool = True
    timeout_scale: float = 1.0
    jobs: int = 1


@dataclass(slots=True)
class MasterResult:
    outcomes: list[Outcome] = field(default_factory=list)
    harness: Sequence[str] = ()
    implementation: dict[str, Any] = field(default_factory=dict)
    capabilities: list[str] = field(default_factory=list)
    levels: dict[str, str] = field(default_factory=dict)
    startup_problem: str = ""
    startup_stderr: list[str] = field(default_factory=list)
    interrupted: bool = False
    observe: bool = False


def wanted(check: str, level: str, options: MasterOptions) -> bool:
    if options.levels and level not in options.levels:
        return False
    return not options.checks or any(fnmatch.fnmatchcase(check, p) for p in options.checks)


def selected_cases(options: MasterOptions) -> list[MasterCase]:
    dirs = [builtin_cases()] if options.builtin and builtin_cases().is_dir() else []
    dirs += list(options.case_dirs)
    return [c for c in load_cases(dirs) if wanted(c.check, c.level, options)]


async def probe(options: MasterOptions, result: MasterResult) -> None:
    """``start`` then ``stop``: what the harness is, and what it claims."""
    harness = Harness(options.argv, options.timeout_scale)
    try:
        await harness.start()
    except OSError as exc:
        result.startup_problem = f"the harness cannot be started: {exc}"
        return
    try:
        deadline = time.monotonic() + PROBE_S * options.timeout_scale
        got = await harness.call(start_command(None), deadline)
        result.implementation = dict(got["implementation"])
        result.capabilities = list(got["capabilities"])
    except HarnessError as exc:
        result.startup_problem = f"the harness did not answer start: {exc}"
    except Exception as exc:  # unsupported start is a harness that cannot run at all
        result.startup_problem = f"the harness did not answer start: {exc}"
    finally:
        await harness.stop()
    if result.startup_problem:
        result.startup_stderr = harness.stderr_tail.strip().splitlines()[-20:]


async def run_master_suite(
    options: MasterOptions,
    progress: Callable[[Outcome, int, int], None] | None = None,
) -> MasterResult:
    cases = selected_cases(options)
    rows = [r for r in wire_rows() if wanted(r.check, "wire", options)]
    result = MasterResult(harness=options.argv)
    await probe(options, result)
    total = len(cases) + len(rows)
    # The wire checks judge what the master writes in the cases: a selection of wire
    # checks alone runs every case to feed them, and reports the wire checks only.
    feeding = bool(rows) and not cases
    played = selected_cases(replace(options, checks=(), levels=())) if feeding else cases
    slots: list[Outcome | None] = [None] * len(played)
    records: list[list[ChannelRecord]] = [[] for _ in played]
    done = 0

    def told(outcome: Outcome) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(outcome, done, total)

    if result.startup_problem:
        why = f"not run: the harness cannot be checked: {result.startup_problem}"
        result.outcomes = [Outcome.of(c, "not-run", why) for c in cases]
        result.outcomes += [r.outcome("not-run", why) for r in rows]
        result.levels = level_states(result)
        return result
    limit = asyncio.Semaphore(max(1, options.jobs))
    live: set[Harness] = set()
    with private_folder() as folder:

        async def one(index: int, case: MasterCase) -> None:
            async with limit:
                outcome, seen = await run_case(
                    case,
                    options.argv,
                    Path(folder),
                    options.timeout_scale,
                    result.capabilities,
                    live,
                )
            records[index] = seen
            if not feeding:
                slots[index] = outcome
                told(outcome)

        tasks = [asyncio.create_task(one(i, c)) for i, c in enumerate(played)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for harness in list(live):
                harness.kill()
            await asyncio.gather(*tasks, return_exceptions=True)
    result.outcomes = [s for s in slots if s is not None]
    everything = [r for seen in records for r in seen]
    for outcome in judge(everything, rows, result.capabilities):
        told(outcome)
        result.outcomes.append(outcome)
    result.levels = level_states(result)
    return result


def level_states(result: MasterResult) -> dict[str, str]:
    """Each level: reached (everything judged in it passed, warned or informed), not
    reached, not run (nothing of it ran) or not claimed (the harness does not claim it)."""
    states: dict[str, str] = {}
    for level in MASTER_LEVELS:
        if level not in ("wire", "core") and level not in result.capabilities:
            states[level] = "not-claimed"
            continue
        verdicts = [o.verdict for o in result.outcomes if o.level == level]
        judged = [v for v in verdicts if v not in ("skip", "not-run", "untestable")]
        if not judged:
            states[level] = "not-run"
        elif any(v in ("fail", "timeout", "error", "harness-error") for v in judged):
            states[level] = "not-reached"
        else:
            states[level] = "reached"
    return states
