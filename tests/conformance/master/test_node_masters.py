"""The master suite judges masters written in Node as it should.

- conformance/examples/master-node/harness.js, the example master library in Node
  builtins with its harness, reaches every level it claims with no failure;
- each of its one-fault variants (``PEEPSY_EXAMPLE_FAULT``, conformance/examples/
  master-node/faults.js) is caught on the check meant for it, while a neighbouring check
  still passes, so the fault is caught where it is and nowhere else;
- conformance/masters/node_original_model.js, a model of the Node original's master,
  fails exactly the checks of its documented defects: run with
  conformance/masters/node_original.expected-failures, nothing fails unexpectedly and
  no entry is stale;
- docs/conformance.md shows harness.js verbatim.

Every run goes through the command line, as a user runs the suite, with ``--json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
NODE = shutil.which("node")
EXAMPLE = ROOT / "conformance" / "examples" / "master-node"
HARNESS = EXAMPLE / "harness.js"
MODEL = ROOT / "conformance" / "masters" / "node_original_model.js"
EXPECTED = ROOT / "conformance" / "masters" / "node_original.expected-failures"
GUIDE = ROOT / "docs" / "conformance.md"
#: Verdicts that count as "the check caught it" (warn: a SHOULD check).
CAUGHT = frozenset({"fail", "warn", "timeout"})
#: Verdicts of a check that raised no complaint.
CLEAN = frozenset({"pass", "info"})
#: Suite runs at once: they mostly wait on the cases' timers.
PARALLEL = 4
#: Each run's bound; a run that takes longer is a hang, not a slow machine.
RUN_TIMEOUT_S = 240

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


@dataclass(frozen=True, slots=True)
class Run:
    returncode: int
    verdicts: dict[str, str]
    levels: dict[str, str]
    capabilities: list[str]
    expected: list[str]
    stale: list[str]
    output: str


@dataclass(frozen=True, slots=True)
class Fault:
    """The checks a fault must be caught on, and neighbours that must still pass (they
    also give the wire checks some traffic to judge)."""

    caught: tuple[str, ...]
    passes: tuple[str, ...] = ()


def fault(caught: str, passes: str = "") -> Fault:
    return Fault(tuple(caught.split()), tuple(passes.split()))


FAULTS: dict[str, Fault] = {
    "no-init": fault("m.init.first-once", "m.req.echo"),
    # the re-sent call of m.retry.new-id goes out while the first is still unanswered
    "reuse-id": fault("m.id.unique-outstanding m.retry.new-id", "m.req.echo"),
    "cycle-ids": fault("m.id.not-reused", "m.req.echo"),
    "no-timeout": fault("m.req.timeout-enforced", "m.req.echo"),
    "deliver-late-answer": fault("m.req.unmatched-ignored", "m.req.echo"),
    "no-fail-fast": fault("m.death.fails-in-flight m.death.stdout-closed", "m.req.echo"),
    "parse-stderr": fault("m.stream.stderr-not-parsed", "m.req.echo"),
    "stack-leak": fault("m.serve.no-stack", "m.serve.fail-500"),
    "no-404": fault("m.serve.unknown-404", "m.serve.echo"),
    "throw-no-answer": fault("m.serve.throw-500", "m.serve.fail-500"),
    "kill-silent": fault("m.hb.silent-child-not-killed", "m.req.echo"),
    "any-message-heartbeat": fault("m.sup.hb-only-heartbeat", "m.sup.hb-miss"),
    "no-escalation": fault("m.shut.escalation", "m.shut.sends-shutdown"),
    "retry-after-500": fault("m.retry.not-after-500 m.retry.not-after-404", "m.retry.new-id"),
    "restart-forever": fault("m.sup.restart-limit", "m.sup.restart-init"),
    "respawn-after-stop": fault("m.shut.no-respawn-after-stop", "m.sup.restart-init"),
    "timeout-leaks-capacity": fault("m.group.timeout-frees-capacity", "m.group.queue-deadline"),
    "queue-no-deadline": fault("m.group.queue-deadline", "m.group.timeout-frees-capacity"),
    # one defect, one failure: the retry case passes over the CANCEL that the wire check fails
    "cancel-to-1-0": fault(
        "m.cancel.not-to-1-0 m.cancel.only-when-allowed",
        "m.cancel.by-caller m.retry.off-by-default",
    ),
    "crlf-out": fault("m.frame.no-cr", "m.req.echo"),
}


def run_suite(harness: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    assert NODE is not None
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "peepsy.conformance", "master", "--quiet"]
        proc = subprocess.run(
            [*command, "--json", str(report), *args, "--", NODE, str(harness)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        output = proc.stdout + proc.stderr
        assert report.exists(), f"no JSON report; the suite said:\n{output}"
        data = json.loads(report.read_text(encoding="utf-8"))
    summary = data["summary"]
    return Run(
        returncode=proc.returncode,
        verdicts={c["check"]: c["verdict"] for c in data["checks"]},
        levels=summary["levels"],
        capabilities=data["capabilities"],
        expected=summary["expectedFailures"],
        stale=summary["stale"],
        output=output,
    )


def run_fault(name: str) -> Run:
    spec = FAULTS[name]
    checks = sorted({*spec.caught, *spec.passes})
    return run_suite(HARNESS, "-j", "2", "--check", *checks, env={"PEEPSY_EXAMPLE_FAULT": name})


def listed_expected_failures() -> set[str]:
    lines = (line.split("#", 1)[0].strip() for line in EXPECTED.read_text().splitlines())
    return {line for line in lines if line}


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, Future[Run]]]:
    """Every run at once, the whole-suite runs first so that their waiting overlaps the
    fault runs."""
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = {
            "example": pool.submit(run_suite, HARNESS, "-j", "4"),
            "model": pool.submit(run_suite, MODEL, "-j", "4", "--expected-failures", str(EXPECTED)),
        }
        futures |= {name: pool.submit(run_fault, name) for name in FAULTS}
        yield futures
        for future in futures.values():
            future.cancel()


def test_the_example_reaches_every_level_it_claims(runs: dict[str, Future[Run]]) -> None:
    run = runs["example"].result(timeout=RUN_TIMEOUT_S)
    assert run.returncode == 0, run.output
    complaints = {check: v for check, v in run.verdicts.items() if v not in CLEAN}
    assert complaints == {}, run.output
    claimed = {"wire", "core", *run.capabilities} & set(run.levels)
    assert claimed == set(run.levels)  # every level there is
    assert run.levels == dict.fromkeys(run.levels, "reached"), run.output


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_each_fault_is_caught_on_its_check(name: str, runs: dict[str, Future[Run]]) -> None:
    run = runs[name].result(timeout=RUN_TIMEOUT_S)
    spec = FAULTS[name]
    missed = {c: run.verdicts.get(c) for c in spec.caught if run.verdicts.get(c) not in CAUGHT}
    assert missed == {}, run.output
    unclean = {c: run.verdicts.get(c) for c in spec.passes if run.verdicts.get(c) != "pass"}
    assert unclean == {}, run.output


def test_the_node_model_fails_exactly_its_defects(runs: dict[str, Future[Run]]) -> None:
    run = runs["model"].result(timeout=RUN_TIMEOUT_S)
    listed = listed_expected_failures()
    unexpected = {
        check: verdict
        for check, verdict in run.verdicts.items()
        # skip: cancel is not claimed; untestable: it never sends a CANCEL to judge
        if verdict not in CLEAN | {"skip", "untestable"} and check not in listed
    }
    assert unexpected == {}, run.output
    assert run.stale == [], run.output
    assert set(run.expected) == listed, run.output
    assert "cancel" not in run.capabilities  # a 1.0 master: it never sends CANCEL


def test_every_expected_failure_names_its_defect() -> None:
    for line in EXPECTED.read_text().splitlines():
        if line.split("#", 1)[0].strip():
            assert re.search(r"#\s*defect", line), line


def test_the_fault_names_are_the_librarys() -> None:
    """A fault the library does not know fails at load: the table cannot drift."""
    assert NODE is not None
    known = subprocess.run(
        [NODE, "-p", "Object.keys(require('./faults.js').FAULTS).join(' ')"],
        capture_output=True,
        text=True,
        cwd=EXAMPLE,
        timeout=30,
        check=True,
    ).stdout.split()
    assert sorted(known) == sorted(FAULTS)


def test_the_guide_shows_the_harness_verbatim() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index("\n### A harness in JavaScript\n")
    block = re.search(r"```js\n(.*?)```\n", text[start:], re.S)
    assert block is not None
    assert block.group(1) == HARNESS.read_text(encoding="utf-8")
