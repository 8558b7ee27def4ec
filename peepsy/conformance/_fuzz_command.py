"""``--fuzz N [--seed S] [--fuzz-waive RULE]``: the command, and its one check in the
normal reports (the terminal summary, JSON and JUnit)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from peepsy.conformance._cli_args import write_reports
from peepsy.conformance._fuzz_oracle import expected_text
from peepsy.conformance._report import (
    exit_code,
    progress_line,
    read_expectations,
    summary,
    to_json,
    to_junit,
)
from peepsy.conformance._suite import SuiteResult
from peepsy.conformance._transcript import Outcome

if TYPE_CHECKING:
    from peepsy.conformance._fuzz import Failure

CHECK = "fuzz.envelopes"
REQUIREMENTS = ("REQ-7", "REQ-10", "FRAME-8", "MSG-5", "RESP-1")
DESCRIPTION = "generated and mutated lines: each answered exactly as REQ-9 says, or not at all"


def outcome(failure: Failure | None, rerun: str, sent: int) -> Outcome:
    """The fuzz run as one check of the normal reports; ``rerun``: its options."""
    result = Outcome(
        check=CHECK,
        requirement=REQUIREMENTS,
        level="core",
        severity="MUST",
        description=DESCRIPTION,
        verdict="pass",
        message=f"{sent} lines sent and judged ({rerun})",
        source=f"(built in: {rerun})",
    )
    if failure is None and sent == 0:  # every line drawn was skipped: nothing was judged
        result.verdict = "error"
        result.message = f"no line could be judged ({rerun}): every one drawn was skipped"
    if failure is not None:
        result.verdict = "error" if failure.startup else "fail"
        result.message = failure.describe(rerun)
        result.trace = [line.render().rstrip("\n") for line in failure.trace]
        result.stderr = failure.stderr
        if failure.case is not None:
            result.expected = expected_text(failure.case.expect)
            result.actual = failure.got
    return result


#: Options that choose or shape the transcript checks: a fuzz run has none of those.
_NOT_WITH_FUZZ = {
    "list": "--list",
    "only": "--only",
    "skip": "--skip",
    "transcripts": "--transcripts",
    "no_builtin": "--no-builtin",
}


def fuzz_command(args: argparse.Namespace, error: Callable[[str], NoReturn]) -> int:
    """``--fuzz N [--seed S]``: only the fuzz run, reported like a suite of one check.
    The transcript checks run without --fuzz: two commands, so that each stays
    reproducible on its own (a check's verdict never depends on what the fuzzer sent)."""
    if args.fuzz is None:
        error("--seed and --fuzz-waive go with --fuzz N")
    used = [flag for name, flag in _NOT_WITH_FUZZ.items() if getattr(args, name)]
    if args.level != "auto":
        used.append("--level")
    if args.transport != "stdio":
        used.append("--transport node-ipc")  # the channel carries JSON values, not bytes
    if used:
        error(f"--fuzz runs only the fuzz check; it does not take {', '.join(used)}")
    if not args.command:
        error("give the worker command, for example: --fuzz 500 -- node my_worker.js")
    expectations = read_expectations(args.expected_failures)
    if expectations is None:
        return 2
    try:
        # Imported here: only --fuzz needs hypothesis, so the checks run without it.
        from peepsy.conformance._fuzz import fuzz, random_seed  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the install
        print(
            f"peepsy.conformance: --fuzz needs hypothesis and hypothesis-jsonschema ({exc}):"
            " pip install 'peepsy[conformance]'",
            file=sys.stderr,
        )
        return 2
    seed = args.seed if args.seed is not None else random_seed()
    waived = f", waiving {', '.join(args.fuzz_waive)}" if args.fuzz_waive else ""
    print(f"{CHECK}: {args.fuzz} examples{waived}, seed {seed} (--seed {seed} sends them again)")
    sys.stdout.flush()
    mode = args.mode or "sequential"
    started = time.monotonic()
    failure, sent = fuzz(
        args.command,
        args.fuzz,
        seed,
        mode=mode,
        scale=args.timeout_scale,
        waive=frozenset(args.fuzz_waive),
    )
    rerun = " ".join(
        [f"--fuzz {args.fuzz} --seed {seed}"]
        + [f"--fuzz-waive {rule}" for rule in args.fuzz_waive]
        + ([f"--mode {args.mode}"] if args.mode else [])
    )
    result = outcome(failure, rerun, len(sent))
    result.duration_ms = (time.monotonic() - started) * 1000
    suite = SuiteResult(
        outcomes=[result],
        mode=mode,
        mode_source="--mode" if args.mode else "INIT (assumed)",
        profile_note="--fuzz: only the fuzz check runs",
        cancel_note="--fuzz: only the fuzz check runs",
        worker=args.command,
    )
    if not args.quiet:
        progress_line(result, 1, 1)
    summary(suite, expectations, args.trace)
    if not write_reports(
        "peepsy.conformance",
        args.json,
        lambda: to_json(suite, expectations),
        args.junit,
        lambda: to_junit(suite, expectations),
    ):
        return 2
    return exit_code(suite, expectations)
