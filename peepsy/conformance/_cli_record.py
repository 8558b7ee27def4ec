"""The ``record`` and ``generalize`` commands: the tap run in place of a worker, and a
raw recording turned into a transcript, each from its parsed arguments. Apart from
``__main__.py`` because they share nothing with a suite run (no SIGINT handling, no
reports) beyond being chosen by the first argument.
"""

from __future__ import annotations

import argparse
import sys

from peepsy.conformance._cli_args import generalize_parser, record_parser
from peepsy.conformance._record import (
    HeaderFields,
    generalize,
    read_events,
    run_tap,
    validate_records,
    write_records,
)


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
