"""``python -m peepsy.conformance [options] [--] COMMAND [ARGS...]``

Runs the peepsy conformance suite against a worker: any executable that speaks the
protocol on its stdin and stdout (docs/protocol.md). Exit status 0 when no check fails,
1 when one does (or the worker dies at start-up), 2 when the suite cannot run (bad
arguments, a selection of no check, an invalid transcript, a report that cannot be
written, a worker that cannot be started), 130 when stopped by SIGINT (Ctrl-C).

Two more commands, chosen by the first argument:

``python -m peepsy.conformance record -o FILE [--raw] -- COMMAND [ARGS...]``
    a tap to run in place of a worker: it runs COMMAND, relays the master's and the
    worker's lines, and writes what crossed as a transcript (or a raw recording);

``python -m peepsy.conformance generalize RAW -o FILE``
    turns a raw recording into a transcript;

``python -m peepsy.conformance master [options] -- HARNESS [ARGS...]``
    checks a master instead: the suite plays its children (conformance/MASTER.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from peepsy.conformance._checks import GLOBAL_CHECKS
from peepsy.conformance._cli_args import (
    _check_selection,
    _check_settings,
    default_jobs,
    generalize_parser,
    parser,
    record_parser,
    write_reports,
)
from peepsy.conformance._cli_record import _generalize, _record
from peepsy.conformance._fuzz_command import fuzz_command
from peepsy.conformance._report import (
    exit_code,
    format_progress,
    listing,
    read_expectations,
    summary,
    to_json,
    to_junit,
)
from peepsy.conformance._schemas import builtin_transcripts
from peepsy.conformance._suite import (
    Interrupted,
    Options,
    SuiteResult,
    WorkerNotStarted,
    load_all,
    run_suite,
    selected,
)
from peepsy.conformance._terminal import LiveLine, Painter, wants_colour, wants_live_line
from peepsy.conformance._transcript import Outcome, TranscriptError

# The parsers moved to _cli_args.py; they stay importable from here, as before the split,
# for any script that builds on this command line.
__all__ = [
    "EXIT_INTERRUPTED",
    "default_jobs",
    "generalize_parser",
    "main",
    "parser",
    "record_parser",
]

#: The exit status of a run stopped by SIGINT (128 + 2, as shells report it).
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "record":
        return _record(argv[1:])
    if argv and argv[0] == "generalize":
        return _generalize(argv[1:])
    if argv and argv[0] == "master":
        from peepsy.conformance.master._cli import main as master_main  # noqa: PLC0415

        return master_main(argv[1:])
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # SIGINT before the run started (or after it ended): no worker is running.
        _say_interrupted("before any check ran")
        return EXIT_INTERRUPTED
    except TranscriptError as exc:
        print(f"peepsy.conformance: invalid transcript:\n{exc}", file=sys.stderr)
        return 2
    except WorkerNotStarted as exc:
        print(f"peepsy.conformance: {exc}", file=sys.stderr)
        return 2


def _say_interrupted(what: str) -> None:
    with contextlib.suppress(OSError):
        sys.stderr.write(f"peepsy.conformance: interrupted (SIGINT) {what}\n")
        sys.stderr.flush()


class _Stdout:
    """Writes to stdout that survive its reader going away (``| head -1``): from the
    first broken pipe on, the rest goes to /dev/null and the run carries on to write
    its reports and exit with its real status."""

    broken = False

    @classmethod
    def guard(cls, write: Callable[[], None]) -> None:
        if cls.broken:
            return
        try:
            write()
        except BrokenPipeError:
            cls.broken = True
            # Python flushes stdout again at exit: point it at /dev/null so that this
            # does not fail (and print "Exception ignored") too.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)


async def _run(
    options: Options, progress: Callable[[Outcome, int, int], None] | None
) -> SuiteResult:
    """The suite, with SIGINT setting its ``stop`` event (run_suite then kills every
    worker's group and raises :class:`Interrupted` with the partial result)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        # A second Ctrl-C sets it again: it cannot cut short the clean-up of the first.
        loop.add_signal_handler(signal.SIGINT, stop.set)
    if _NOTED_SIGINT:
        stop.set()  # it came while the run was being set up: stop at the first step
    try:
        return await run_suite(options, progress, stop)
    finally:
        if main_thread:
            loop.remove_signal_handler(signal.SIGINT)  # this restores KeyboardInterrupt:
            signal.signal(signal.SIGINT, _note_sigint)  # note it instead, reports to write


#: SIGINTs that came outside the run itself (while it was set up, or its reports written).
_NOTED_SIGINT: list[int] = []


def _note_sigint(signum: int, frame: FrameType | None) -> None:
    _NOTED_SIGINT.append(signum)


def _main(argv: list[str] | None) -> int:
    if threading.current_thread() is not threading.main_thread():
        return _main_body(argv)  # signals reach the main thread only
    # From now on a SIGINT is noted rather than raised, so that however early it comes
    # the run stops the same way: workers killed, partial reports, exit 130.
    before = signal.signal(signal.SIGINT, _note_sigint)
    try:
        return _main_body(argv)
    finally:
        signal.signal(signal.SIGINT, before)


def _main_body(argv: list[str] | None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.fuzz is not None or args.seed is not None or args.fuzz_waive:
        return fuzz_command(args, p.error)
    dirs = ([builtin_transcripts()] if not args.no_builtin else []) + list(args.transcripts)
    _check_selection(p, args, dirs)
    if args.list:
        rows: list[tuple[str, str, str, str, str]] = [
            (t.check, t.level, t.severity, ",".join(t.requirement), t.description)
            for t in load_all(dirs)
            if selected(t.check, args.only, args.skip)
        ]
        rows += [
            (g.check, "core", g.severity, ",".join(g.requirement), g.description + " (every run)")
            for g in GLOBAL_CHECKS
            if selected(g.check, args.only, args.skip)
        ]
        listing(rows)
        return 0
    if not args.command:
        p.error("give the worker command, for example: -- node my_worker.js")
    _check_settings(p, args)
    expectations = read_expectations(args.expected_failures)
    if expectations is None:
        return 2
    if args.expected_failures:
        known = {t.check for t in load_all(dirs)} | {g.check for g in GLOBAL_CHECKS}
        for unknown in sorted(expectations.ids - known):
            print(
                f"peepsy.conformance: {args.expected_failures}: no check is called {unknown!r}",
                file=sys.stderr,
            )
    options = Options(
        argv=args.command,
        mode=args.mode,
        level=args.level,
        only=args.only,
        skip=args.skip,
        transcript_dirs=args.transcripts,
        builtin=not args.no_builtin,
        timeout_scale=args.timeout_scale,
        transport=args.transport,
        jobs=args.jobs,
    )

    painter = Painter(wants_colour(sys.stdout, args.color))
    live = LiveLine(sys.stdout, painter, live=wants_live_line(sys.stdout))

    def progress(outcome: Outcome, index: int, total: int) -> None:
        text = format_progress(outcome, index, total, painter)
        _Stdout.guard(lambda: live.result(text, outcome.verdict, index, total))

    try:
        result = asyncio.run(_run(options, None if args.quiet else progress))
    except Interrupted as stop:
        result = stop.result
    finally:
        _Stdout.guard(live.close)
    # From here on a SIGINT (noted) only makes the exit status 130: the reports get written.
    if not result.interrupted:
        _Stdout.guard(lambda: summary(result, expectations, args.trace, painter=painter))
    if not write_reports(
        "peepsy.conformance",
        args.json,
        lambda: to_json(result, expectations),
        args.junit,
        lambda: to_junit(result, expectations),
    ):
        return 2
    if result.interrupted or _NOTED_SIGINT:
        ran = sum(o.verdict != "not-run" for o in result.outcomes)
        reports = " and ".join(str(r) for r in (args.json, args.junit) if r)
        _say_interrupted(
            f"after {ran} of {len(result.outcomes)} checks; every worker stopped"
            + (f"; partial report: {reports}" if reports else "")
        )
        return EXIT_INTERRUPTED
    return exit_code(result, expectations)


if __name__ == "__main__":
    sys.exit(main())
