"""The example workers in other languages pass the whole conformance suite.

conformance/workers/node_worker.js and conformance/workers/perl_worker.pl were written
from docs/protocol.md and schema/ alone. Both adopt INIT's mode, so each is checked in
sequential and in concurrent mode, at the core and the profile level.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from tests.conformance.test_mutants import ROOT, Run, listed_checks, mode_only_checks, run_suite

WORKERS = {
    "node": ["node", str(ROOT / "conformance" / "workers" / "node_worker.js")],
    "perl": ["perl", str(ROOT / "conformance" / "workers" / "perl_worker.pl")],
}
MODES = ("sequential", "concurrent")


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
    # Everything passes except the checks written for the other mode, which are skipped.
    other = "concurrent" if mode == "sequential" else "sequential"
    assert not_passed == dict.fromkeys(mode_only_checks(other), "skip"), run.output
