"""``python -m peepsy.conformance master [options] -- COMMAND...``: checks a master
through its harness (or, with ``--observe``, a master application by its wire alone).
Exit status 0 when no check fails, 1 when one does (or the harness cannot be started
and answer ``start``), 2 when the suite cannot run (bad arguments, an invalid case, a
selection of no check, a report that cannot be written)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TextIO

from peepsy.conformance._cli_args import _check_settings, default_jobs, write_reports
from peepsy.conformance._report import (
    MARKS,
    Expectations,
    check_entry,
    format_progress,
    listing,
    read_expectations,
    to_junit,
)
from peepsy.conformance._transcript import Outcome, TranscriptError
from peepsy.conformance.master._case import MASTER_LEVELS, MasterCase
from peepsy.conformance.master._emit import emit
from peepsy.conformance.master._observe import observe
from peepsy.conformance.master._suite import (
    MasterOptions,
    MasterResult,
    run_master_suite,
    selected_cases,
)
from peepsy.conformance.master._wire import wire_rows
from peepsy.protocol import PROTOCOL_VERSION

VERDICTS: tuple[str, ...] = ("pass", "fail", "warn", "info", "skip", "untestable", "not-run")
VERDICTS += ("timeout", "error", "harness-error")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m peepsy.conformance master",
        description="Check that a master speaks the peepsy protocol: the suite plays its"
        " children and drives it through a harness (conformance/MASTER.md).",
        epilog="Example: python -m peepsy.conformance master -- node my_master_harness.js."
        " Exit status: 0 passed, 1 a check failed, 2 the suite could not run.",
    )
    p.add_argument("command", nargs="*", help="the harness command (after --)")
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    p.add_argument("--check", nargs="+", default=[], metavar="ID", help="only these (globs)")
    p.add_argument("--level", nargs="+", default=[], choices=MASTER_LEVELS, help="only these")
    p.add_argument("--cases", action="append", default=[], type=Path, metavar="DIR")
    p.add_argument("--no-builtin", action="store_true", help="run only the --cases given")
    p.add_argument("--expected-failures", type=Path, metavar="FILE")
    p.add_argument("--json", type=Path, metavar="FILE", help="write a JSON report")
    p.add_argument("--junit", type=Path, metavar="FILE", help="write a JUnit XML report")
    p.add_argument("--trace", action="store_true", help="show the wire log of failed checks")
    p.add_argument("--timeout-scale", type=float, default=1.0)
    p.add_argument("-j", "--jobs", type=int, default=default_jobs(), metavar="N")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument(
        "--emit",
        metavar="CHECK",
        help="print the harness commands and the child script of a case; run nothing",
    )
    p.add_argument(
        "--observe",
        action="store_true",
        help="COMMAND is a master application to watch: its children are the suite's"
        " stubs (argv in PEEPSY_CONFORMANCE_CHILD); only the wire checks are judged",
    )
    p.add_argument("--observe-seconds", type=float, default=30.0, metavar="S")
    return p


def main(argv: list[str]) -> int:
    p = parser()
    args = p.parse_args(argv)
    options = MasterOptions(
        argv=args.command,
        checks=args.check,
        levels=args.level,
        case_dirs=args.cases,
        builtin=not args.no_builtin,
        timeout_scale=args.timeout_scale,
        jobs=args.jobs,
    )
    try:
        cases = [] if args.observe else selected_cases(options)
    except TranscriptError as exc:
        print(f"peepsy.conformance master: invalid case:\n{exc}", file=sys.stderr)
        return 2
    rows = [r for r in wire_rows() if _wanted(r.check, "wire", options)]
    if args.emit:
        return _emit(args.emit, options)
    if args.list:
        listing(
            [(c.check, c.level, c.severity, ",".join(c.requirement), c.description) for c in cases]
            + [(r.check, "wire", r.severity, ",".join(r.requirement), r.description) for r in rows]
        )
        return 0
    if not cases and not rows:
        p.error("the selection matches no check (see --list)")
    if not args.command:
        p.error("give the harness command, for example: -- node my_master_harness.js")
    args.only = args.skip = []
    _check_settings(p, args)
    expectations = read_expectations(args.expected_failures)
    if expectations is None:
        return 2

    def progress(outcome: Outcome, index: int, total: int) -> None:
        if not args.quiet:
            sys.stdout.write(format_progress(outcome, index, total) + "\n")
            sys.stdout.flush()

    if args.observe:
        work = observe(args.command, rows, args.observe_seconds, progress)
    else:
        work = run_master_suite(options, progress)
    result = asyncio.run(_until_sigint(work))
    if result is None:
        print("peepsy.conformance master: interrupted (SIGINT)", file=sys.stderr)
        return 130
    summary(result, expectations, args.trace)
    if not write_reports(
        "peepsy.conformance master",
        args.json,
        lambda: to_json(result, expectations),
        args.junit,
        lambda: to_junit(result, expectations),
    ):
        return 2
    return exit_code(result, expectations)


async def _until_sigint(work: Coroutine[Any, Any, MasterResult]) -> MasterResult | None:
    """``work``'s result, or None on SIGINT (Ctrl-C): the run is then cancelled and each
    case's clean-up kills its harness's group (the stubs exit when their sockets close).
    Raced with asyncio.wait rather than caught as CancelledError: under coverage's
    subprocess patch on Python 3.11 that class is not always the one raised."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    with contextlib.suppress(ValueError, RuntimeError):  # not the main thread: no handler
        loop.add_signal_handler(signal.SIGINT, stop.set)
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.wait({task})
    return None


def _wanted(check: str, level: str, options: MasterOptions) -> bool:
    from peepsy.conformance.master._suite import wanted  # noqa: PLC0415

    return wanted(check, level, options)


def _emit(check: str, options: MasterOptions) -> int:
    found: list[MasterCase] = [c for c in selected_cases(options) if c.check == check]
    if not found:
        print(f"peepsy.conformance master: no case is called {check!r}", file=sys.stderr)
        return 2
    sys.stdout.write("\n".join(emit(found[0])) + "\n")
    return 0


def exit_code(result: MasterResult, expectations: Expectations) -> int:
    if result.startup_problem:
        return 1
    for outcome in result.outcomes:
        status = expectations.judge(outcome)
        if status == "stale" or (status is None and outcome.failed):
            return 1
    return 0


def to_json(result: MasterResult, expectations: Expectations) -> dict[str, Any]:
    counts: Counter[str] = Counter(o.verdict for o in result.outcomes)
    judged = [(o.check, expectations.judge(o)) for o in result.outcomes]
    code = exit_code(result, expectations)
    return {
        "reportVersion": 3,
        "role": "master",
        "protocol": PROTOCOL_VERSION,
        "harness": list(result.harness),
        "observe": result.observe,
        "implementation": result.implementation,
        "capabilities": result.capabilities,
        "passed": code == 0 and not result.interrupted,
        "interrupted": result.interrupted,
        "startup": (
            {"problem": result.startup_problem, "stderr": result.startup_stderr}
            if result.startup_problem
            else None
        ),
        "summary": {
            "total": len(result.outcomes),
            **{v: counts[v] for v in VERDICTS},
            "expectedFailures": [c for c, s in judged if s == "expected"],
            "stale": [c for c, s in judged if s == "stale"],
            "levels": result.levels,
            "exitCode": code,
        },
        "checks": [check_entry(o, expectations) for o in result.outcomes],
    }


def summary(
    result: MasterResult, expectations: Expectations, trace: bool, out: TextIO = sys.stdout
) -> None:
    for o in result.outcomes:
        if o.verdict in ("pass", "skip", "not-run"):
            continue
        reqs = ", ".join(o.requirement)
        out.write(f"\n=== {MARKS[o.verdict].strip()} {o.check} ({o.severity}, {reqs})\n")
        out.write(f"    {o.description}\n    {o.message}\n")
        if o.source:
            out.write(f"    case: {o.source}\n")
        if trace and o.trace:
            out.write("    wire log:\n" + "".join(f"      {line}\n" for line in o.trace))
        if o.verdict == "harness-error" and o.stderr.strip():
            out.write("    harness stderr (end):\n")
            for line in o.stderr.strip().splitlines()[-20:]:
                out.write(f"      {line}\n")
    if result.startup_problem:
        out.write(f"\n=== NOT RUN: no check ran: {result.startup_problem}\n")
        for line in result.startup_stderr:
            out.write(f"      {line}\n")
    impl = result.implementation
    counts: Counter[str] = Counter(o.verdict for o in result.outcomes)
    out.write("\n")
    out.write(f"master: {' '.join(result.harness)}\n")
    if impl:
        out.write(
            f"implementation: {impl.get('name')} {impl.get('version')} ({impl.get('language')})\n"
        )
    out.write(f"capabilities: {', '.join(result.capabilities) or '(none)'}\n")
    out.write("levels: " + ", ".join(f"{k} {v}" for k, v in result.levels.items()) + "\n")
    out.write(", ".join(f"{v} {counts[v]}" for v in VERDICTS if counts[v]) + "\n")
    out.write("result: " + ("FAILED" if exit_code(result, expectations) else "PASSED") + "\n")
