"""``python -m peepsy.conformance [options] [--] COMMAND [ARGS...]``

Runs the peepsy conformance suite against a worker: any executable that speaks the
protocol on its stdin and stdout (docs/protocol.md). Exit status 0 when no check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from peepsy.conformance._report import (
    exit_code,
    listing,
    load_expectations,
    progress_line,
    summary,
    to_json,
    to_junit,
)
from peepsy.conformance._suite import (
    GLOBAL_CHECKS,
    Options,
    builtin_transcripts,
    load_all,
    run_suite,
    selected,
)
from peepsy.conformance._transcript import TranscriptError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m peepsy.conformance",
        description="Check that a worker speaks the peepsy protocol (docs/protocol.md).",
        epilog="Example: python -m peepsy.conformance -- node my_worker.js",
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
        help="more transcripts (*.ndjson) to run; repeatable",
    )
    p.add_argument("--no-builtin", action="store_true", help="run only the --transcripts given")
    p.add_argument(
        "--expected-failures",
        type=Path,
        metavar="FILE",
        help="check ids expected to fail, one per line; one that passes fails the run",
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
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except TranscriptError as exc:
        print(f"peepsy.conformance: invalid transcript: {exc}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    args = parser().parse_args(argv)
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
    expectations = load_expectations(
        args.expected_failures.read_text(encoding="utf-8") if args.expected_failures else ""
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
    )
    progress = None if args.quiet else progress_line
    result = asyncio.run(run_suite(options, progress))
    summary(result, expectations, args.trace)
    if args.json:
        args.json.write_text(
            json.dumps(to_json(result, expectations), indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
    if args.junit:
        args.junit.write_bytes(to_junit(result, expectations))
    return exit_code(result, expectations)


if __name__ == "__main__":
    sys.exit(main())
