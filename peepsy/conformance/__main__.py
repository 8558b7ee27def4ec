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
    turns a raw recording into a transcript.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from peepsy.conformance._checks import GLOBAL_CHECKS
from peepsy.conformance._fuzz_command import fuzz_command
from peepsy.conformance._fuzz_oracle import WAIVABLE
from peepsy.conformance._record import (
    HeaderFields,
    generalize,
    read_events,
    run_tap,
    validate_records,
    write_records,
)
from peepsy.conformance._report import (
    exit_code,
    listing,
    progress_line,
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
from peepsy.conformance._transcript import Outcome, TranscriptError

#: The exit status of a run stopped by SIGINT (128 + 2, as shells report it).
EXIT_INTERRUPTED = 130


def default_jobs() -> int:
    """Checks mostly wait on the worker's timers, not on a CPU, so several per core keep
    the cores busy: on 2 cores the bundled worker's run took 19.8 s at -j 2, 12.4 s at
    -j 4 and 9.9 s at -j 8, and passed at -j 8 beside two CPU hogs. The cap keeps a big
    machine from starting dozens of workers at once."""
    return min(16, 4 * (os.cpu_count() or 1))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m peepsy.conformance",
        description="Check that a worker speaks the peepsy protocol (docs/protocol.md).",
        epilog="Example: python -m peepsy.conformance -- node my_worker.js. To record a"
        " master and a worker as a transcript: python -m peepsy.conformance record --help;"
        " to turn a raw recording into one: python -m peepsy.conformance generalize --help."
        " Exit status: 0 passed, 1 a check failed, 2 the suite could not run,"
        " 130 stopped by Ctrl-C (SIGINT; the reports then hold what finished).",
    )
    p.add_argument("command", nargs="*", help="the worker command and its arguments (after --)")
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run only checks matching (glob; repeatable)",
    )
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="PATTERN",
        help="skip checks matching (glob; repeatable)",
    )
    p.add_argument(
        "--mode",
        choices=["sequential", "concurrent"],
        help="the worker's mode (default: from READY, else sequential)",
    )
    p.add_argument(
        "--transport",
        choices=["stdio", "node-ipc"],
        default="stdio",
        help="stdio: the protocol on the worker's stdin/stdout (default); node-ipc: on "
        "Node's IPC channel, as child_process.fork gives it (Node peepsy workers as they are)",
    )
    p.add_argument(
        "--level",
        choices=["auto", "core", "profile"],
        default="auto",
        help="core: no actions needed; profile: echo, fail, sleep, callMaster (default: probe)",
    )
    p.add_argument(
        "--transcripts",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="more transcripts to run: a directory (every *.ndjson under it) or a file; repeatable",
    )
    p.add_argument("--no-builtin", action="store_true", help="run only the --transcripts given")
    p.add_argument(
        "--expected-failures",
        type=Path,
        metavar="FILE",
        help="check ids expected to fail, one per line (# comments); a listed check that"
        " fails is tolerated, one that passes is STALE and fails the run",
    )
    p.add_argument("--junit", type=Path, metavar="FILE", help="write a JUnit XML report")
    p.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="write a JSON report (conformance/report.schema.json)",
    )
    p.add_argument("--trace", action="store_true", help="show the wire log of each failed check")
    p.add_argument(
        "--timeout-scale",
        type=float,
        default=1.0,
        help="multiply every case budget (slow machines)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=default_jobs(),
        metavar="N",
        help="run N checks at once, each with its own worker (default: four per core, at"
        " most 16: %(default)s here)",
    )
    _fuzz_options(p)
    return p


def _fuzz_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("fuzzing (docs/conformance.md, Fuzzing)")
    g.add_argument(
        "--fuzz",
        type=_examples,
        metavar="N",
        help="instead of the checks: send N generated and mutated lines to one worker"
        " process and judge every answer by id (one check, fuzz.envelopes)",
    )
    g.add_argument(
        "--seed",
        type=int,
        metavar="S",
        help="with --fuzz: the seed (default: a random one, printed); a seed sends the"
        " same lines again",
    )
    g.add_argument(
        "--fuzz-waive",
        action="append",
        default=[],
        choices=WAIVABLE,
        metavar="RULE",
        help=f"with --fuzz: send no line whose verdict rests on RULE ({', '.join(WAIVABLE)}:"
        " rules issue 8 added), for a worker known not to follow it yet; repeatable",
    )


def _examples(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"N is at least 1, not {count}")
    return count


def _header_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the transcript's header (edit it afterwards in any case)")
    g.add_argument("--check", help="check id (default: recorded.NAME, from the output file)")
    g.add_argument(
        "--requirement",
        action="append",
        default=[],
        metavar="ID",
        help="requirement id of docs/protocol.md it checks (repeatable; default RESP-1)",
    )
    g.add_argument("--description", help="what it checks")
    g.add_argument("--level", choices=["core", "profile"], help="core or profile")
    g.add_argument(
        "--mode",
        choices=["any", "sequential", "concurrent"],
        help="the worker mode it needs (default: INIT's mode when the master had two"
        " requests out at once, else any)",
    )
    g.add_argument("--recorded", metavar="TEXT", help='the header\'s "recorded" text')
    g.add_argument(
        "--exact",
        action="store_true",
        help='expect data objects exactly ("$exact": true): no member more',
    )


def record_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m peepsy.conformance record",
        description="A tap: run it in place of a worker. It runs COMMAND, relays stdin and"
        " stdout byte for byte, and writes what crossed the pipe as a transcript.",
        epilog="Example: master spawns `python -m peepsy.conformance record -o add.ndjson --"
        " python worker.py` instead of `python worker.py`.",
    )
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    p.add_argument("--raw", action="store_true", help="write the raw recording, not a transcript")
    _header_options(p)
    p.add_argument("command", nargs="+", help="the worker command and its arguments (after --)")
    return p


def generalize_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m peepsy.conformance generalize",
        description="Turn a raw recording (record --raw) into a transcript.",
    )
    p.add_argument("recording", type=Path, help="the raw recording")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="FILE",
        help="the transcript; - for stdout",
    )
    _header_options(p)
    return p


def _fields(args: argparse.Namespace) -> HeaderFields:
    return HeaderFields(
        check=args.check,
        requirement=args.requirement,
        description=args.description,
        level=args.level,
        mode=args.mode,
        recorded=args.recorded,
        exact_data=args.exact,
    )


def _record(argv: list[str]) -> int:
    args = record_parser().parse_args(argv)
    return run_tap(args.command, args.output, raw=args.raw, header=_fields(args))


def _generalize(argv: list[str]) -> int:
    args = generalize_parser().parse_args(argv)
    try:
        events = read_events(args.recording)
    except (OSError, ValueError) as exc:
        print(f"peepsy.conformance generalize: {exc}", file=sys.stderr)
        return 2
    output = None if str(args.output) == "-" else args.output
    records = generalize(events, **_fields(args).options(output))
    problems = validate_records(records)
    if problems:  # pragma: no cover - the generalizer makes valid transcripts
        print(f"peepsy.conformance generalize: {'; '.join(problems)}", file=sys.stderr)
        return 2
    write_records(records, output)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "record":
        return _record(argv[1:])
    if argv and argv[0] == "generalize":
        return _generalize(argv[1:])
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


def _check_settings(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Settings no run can honour: refused (exit 2) before any worker starts."""
    if not math.isfinite(args.timeout_scale) or args.timeout_scale <= 0:
        p.error(f"--timeout-scale must be a finite number above 0, not {args.timeout_scale}")
    if args.jobs < 1:
        p.error(f"-j/--jobs must be 1 or more, not {args.jobs}")
    for flag, path in (("--json", args.json), ("--junit", args.junit)):
        if path is None:
            continue
        # Made now, so that a run of minutes does not end in "cannot write the report".
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            p.error(f"{flag} {path}: cannot create its folder: {exc}")
        if path.is_dir():
            p.error(f"{flag} {path}: is a folder")
        if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            p.error(f"{flag} {path}: not writable")


def _check_selection(
    p: argparse.ArgumentParser, args: argparse.Namespace, dirs: list[Path]
) -> None:
    """A selection that leaves nothing to run is a mistake (a typo in a glob, say): exit 2,
    rather than a green run that checked nothing."""
    chosen = [t for t in load_all(dirs) if selected(t.check, args.only, args.skip)]
    runnable = [t for t in chosen if args.level != "core" or t.level == "core"]
    if runnable:
        return
    what = " ".join(
        [f"--only {o!r}" for o in args.only]
        + [f"--skip {s!r}" for s in args.skip]
        + ([f"--level {args.level}"] if args.level != "auto" else [])
    )
    if chosen:
        p.error(f"the selection ({what}) leaves only profile checks, and --level core skips them")
    if any(selected(g.check, args.only, args.skip) for g in GLOBAL_CHECKS):
        p.error(
            f"the selection ({what or 'no transcripts'}) matches only checks over every run;"
            " they judge what the other checks' runs wrote, so select some of those too"
        )
    p.error(f"the selection ({what or 'no transcripts'}) matches no check (see --list)")


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

    def progress(outcome: Outcome, index: int, total: int) -> None:
        _Stdout.guard(lambda: progress_line(outcome, index, total))

    try:
        result = asyncio.run(_run(options, None if args.quiet else progress))
    except Interrupted as stop:
        result = stop.result
    # From here on a SIGINT (noted) only makes the exit status 130: the reports get written.
    if not result.interrupted:
        _Stdout.guard(lambda: summary(result, expectations, args.trace))
    try:
        if args.json:
            args.json.write_text(
                json.dumps(to_json(result, expectations), indent=2, ensure_ascii=False) + "\n",
                encoding="utf-8",
            )
        if args.junit:
            args.junit.write_bytes(to_junit(result, expectations))
    except OSError as exc:
        print(f"peepsy.conformance: cannot write the report: {exc}", file=sys.stderr)
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
