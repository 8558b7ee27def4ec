"""The example workers in other languages pass the whole conformance suite.

conformance/workers/node_worker.js and conformance/workers/perl_worker.pl were written
from docs/protocol.md and schema/ alone. Both adopt INIT's mode, so each is checked in
sequential and in concurrent mode, at the core and the profile level; the Perl worker
speaks protocol 1.1 and is checked at the cancel level too, the Node one models the
Node original (1.0, no CANCEL) and is not.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from peepsy.conformance._schemas import builtin_transcripts
from peepsy.conformance._suite import load_all
from tests.conformance.test_mutants import ROOT, Run, listed_checks, mode_only_checks, run_suite

WORKERS = {
    "node": ["node", str(ROOT / "conformance" / "workers" / "node_worker.js")],
    "perl": ["perl", str(ROOT / "conformance" / "workers" / "perl_worker.pl")],
}
MODES = ("sequential", "concurrent")
#: The checks of the cancel level (protocol 1.1, CANCEL).
CANCEL_LEVEL = {t.check for t in load_all([builtin_transcripts()]) if t.level == "cancel"}


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[tuple[str, str], Future[Run]]]:
    """Every worker in every mode at once: the runs mostly wait on timers."""
    with ThreadPoolExecutor(max_workers=len(WORKERS) * len(MODES)) as pool:
        futures = {
            (language, mode): pool.submit(run_suite, argv, "--mode", mode)
            for language, argv in WORKERS.items()
            if shutil.which(argv[0]) is not None
            for mode in MODES
        }
        yield futures
        for future in futures.values():
            future.cancel()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("language", sorted(WORKERS))
def test_worker_passes_every_check(
    language: str, mode: str, runs: dict[tuple[str, str], Future[Run]]
) -> None:
    if (language, mode) not in runs:
        pytest.skip(f"{WORKERS[language][0]} is not installed")
    run = runs[language, mode].result(timeout=180)
    assert run.returncode == 0, run.output
    assert set(run.verdicts) == listed_checks()
    not_passed = {check: v for check, v in run.verdicts.items() if v != "pass"}
    # Everything passes except the checks written for the other mode, which are skipped;
    # and the Node worker, which models the Node original (protocol 1.0: it ignores
    # CANCEL), is not checked at the cancel level, nor failed for it.
    other = "concurrent" if mode == "sequential" else "sequential"
    skipped = mode_only_checks(other) | (CANCEL_LEVEL if language == "node" else set())
    assert not_passed == dict.fromkeys(skipped, "skip"), run.output
    cancel = "not-run" if language == "node" else "reached"
    assert run.levels == {"core": "reached", "profile": "reached", "cancel": cancel}
    if language == "node":
        assert "cancel: not run (the worker's READY states protocol 1.0" in run.output
