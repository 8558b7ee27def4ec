"""``--fuzz N [--seed S]``: generated lines against one long-lived worker, judged by id.

Each example is one line (``_fuzz_lines.py`` makes them, ``_fuzz_oracle.py`` says what a
correct worker does with each), followed by a sentinel REQUEST whose 404 shows that the
worker has read the line. Every id is unique in the run, so every answer is attributed
by id, whenever it comes. The run fails when a worker answers a line it must not answer,
answers with the wrong status or more than once, leaves a line unanswered, writes a
line that is no message, or dies; hypothesis then shrinks the line to the smallest one
that still fails, and the report shows its bytes, what came back and the seed.

Shrinking needs a verdict inside the example, so an expected answer must come before the
sentinel's. RESP-6 lets a worker answer in any order, so that verdict is only believed
once confirmed: the smallest line is sent again and given :data:`LATE_MS`; when its
answer does come, the worker merely reorders, and the run is made again judging missing
answers only at its end, after the same generous wait.
"""

from __future__ import annotations

import contextlib
import secrets

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky, Unsatisfiable

from peepsy.conformance._fuzz_case import (
    FINAL_ID,
    LATE_MS,
    NOT_BEFORE_SENTINEL,
    SENTINEL_MS,
    Case,
    Failed,
    Failure,
    StartupFailed,
)
from peepsy.conformance._fuzz_lines import Drawn, lines
from peepsy.conformance._fuzz_run import FuzzRun

# The case and the run live in _fuzz_case.py and _fuzz_run.py; the names this module
# offered before they moved stay importable from here (the --fuzz command uses Failure).
__all__ = [
    "FINAL_ID",
    "LATE_MS",
    "NOT_BEFORE_SENTINEL",
    "SENTINEL_MS",
    "Case",
    "Failed",
    "Failure",
    "FuzzRun",
    "StartupFailed",
    "fuzz",
    "random_seed",
]


def fuzz(
    argv: list[str],
    examples: int,
    seed: int,
    *,
    mode: str = "sequential",
    scale: float = 1.0,
    waive: frozenset[str] = frozenset(),
) -> tuple[Failure | None, list[bytes]]:
    """Run the fuzzing; the failure found (None: the worker passed) and the lines sent.
    ``waive``: issue-8 rules (FRAME-9, MSG-8, REQ-10) whose examples are not sent."""
    failure, sent, confirmed = _attempt(argv, examples, seed, mode, scale, waive, ordered=True)
    if failure is not None and not confirmed:
        # The worker answers out of order (RESP-6 allows it): judge missing answers at
        # the end only. Nothing is shrunk then, but nothing correct is blamed either.
        failure, sent, _ = _attempt(argv, examples, seed, mode, scale, waive, ordered=False)
    return failure, sent


def _attempt(
    argv: list[str],
    examples: int,
    seed: int,
    mode: str,
    scale: float,
    waive: frozenset[str],
    *,
    ordered: bool,
) -> tuple[Failure | None, list[bytes], bool]:
    run = FuzzRun(argv, mode, scale, waive, ordered=ordered)

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        database=None,  # the same seed must mean the same examples, whatever ran before
        deadline=None,
        derandomize=False,
        phases=(Phase.generate, Phase.shrink),
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
    )
    @given(lines())
    def one(drawn: Drawn) -> None:
        run.example(drawn)

    try:
        # The failure itself is in run.failure, from the last (the smallest) call.
        with contextlib.suppress(Failed, Flaky, Unsatisfiable, StartupFailed):
            run.worker()
            one()
        failure = run.failure
        if failure is not None and failure.startup:
            return failure, run.sent, True
        if failure is not None:
            failure.restarts = run.restarts
            if failure.missing and not run.confirm(failure):
                return failure, run.sent, False
            return failure, run.sent, True
        return run.finish(), run.sent, True
    finally:
        run.close()


def random_seed() -> int:
    return secrets.randbelow(2**32)
