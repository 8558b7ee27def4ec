"""``python -m peepsy.conformance [options] [--] COMMAND [ARGS...]``

Runs the peepsy conformance suite against a worker: any executable that speaks the
protocol on its stdin and stdout (docs/protocol.md). Exit status 0 when no check fails,
1 when one does, 2 when the suite cannot run (bad arguments, an invalid transcript, a
worker that cannot be started).

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
import json
import sys
from pathlib import Path

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
    load_expectations,
    progress_line,
    summary,
    to_json,
    to_junit,
)
from peepsy.conformance._schemas import builtin_transcripts
from peepsy.conformance._suite import (
    Options,
    WorkerNotStarted,
    load_all,
    run_suite,
    selected,
)
from peepsy.conformance._transcript import TranscriptError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m peepsy.conformance",
        description="Check that a worker speaks the peepsy protocol (docs/protocol.md).",
        epilog="Example: python -m peepsy.conformance -- node my_worker.js. To record a"
        " master and a worker as a transcript: python -m peepsy.conformance record --help;"
        " to turn a raw recording into one: python -m peepsy.conformance generalize --help."
        " Exit status: 0 passed, 1 a check failed, 2 the suite could not run.",
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
    except TranscriptError as exc:
        print(f"peepsy.conformance: invalid transcript:\n{exc}", file=sys.stderr)
        return 2
    except WorkerNotStarted as exc:
        print(f"peepsy.conformance: {exc}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    args = parser().parse_args(argv)
    if args.fuzz is not None or args.seed is not None or args.fuzz_waive:
        return fuzz_command(args, parser().error)
    dirs = ([builtin_transcripts()] if not args.no_builtin else []) + list(args.transcripts)
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
        parser().error("give the worker command, for example: -- node my_worker.js")
    expectations = load_expectations("")
    if args.expected_failures:
        try:
            expectations = load_expectations(args.expected_failures.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            print(f"peepsy.conformance: --expected-failures: {exc}", file=sys.stderr)
            return 2
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
    )
    progress = None if args.quiet else progress_line
    result = asyncio.run(run_suite(options, progress))
    summary(result, expectations, args.trace)
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
    return exit_code(result, expectations)


if __name__ == "__main__":
    sys.exit(main())
