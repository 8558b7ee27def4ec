"""The conformance suite catches broken workers: each mutant fails the checks meant for it.

conformance/mutants/mutant.py is a correct profile worker that ``--mutation NAME``
breaks in exactly one way. For every mutant, :data:`MUTANTS` says which checks it must
make fail (verdict fail, warn for a SHOULD check, or timeout) and which checks must
still pass beside them. The passing ones show that the mutant breaks its one rule and
not the neighbouring ones, and they give the checks that judge every line a worker
writes (stream.stdout-purity, msg.schema-valid, ...) a run to judge. Each mutant is
run through the command line, as a user would run the suite, with ``--only`` those
checks, and exactly its ``fails`` must not pass.

Together the mutants fail every check the suite has: a check that no broken worker can
fail checks nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MUTANT = ROOT / "conformance" / "mutants" / "mutant.py"
#: Verdicts that count as "the check caught it".
CAUGHT = frozenset({"fail", "warn", "timeout"})
#: Suite runs at once. Most of a run is the suite waiting on the worker's timers, so
#: runs overlap well, but the checks time replies (hundreds of ms): the machine must not
#: be so busy that a correct check misses its deadline.
PARALLEL = 4
#: Runs that take seconds, started first so that their waiting overlaps the rest: a
#: failed expectation waits out its whole deadline, an exit that never comes its 6 s,
#: a wrong id the probe's 5 s; and the whole-suite runs.
SLOW = (
    "unmutated:sequential",
    "huge-line-crash",
    "no-exit-on-eof",
    "unmutated:concurrent",
    "ignores-shutdown",
    "drops-legacy-shape",
    "one-mib-fails",
    "wrong-id",
    "drops-expired",
    "drops-over-long-silently",
    "never-expires-without-timeout",
    "default-timeout-2000",
    "shutdown-ignores-deadline",
    "eof-waits-for-handlers",
    "waits-on-invalid-answer",
    "call-master-never-times-out",
)


@dataclass(frozen=True, slots=True)
class Case:
    fails: frozenset[str]
    passes: frozenset[str] = frozenset()
    args: tuple[str, ...] = ()


def case(fails: str, passes: str = "", *args: str) -> Case:
    """Checks as space-separated ids; ``args`` go to the suite (``--mode concurrent``)."""
    return Case(frozenset(fails.split()), frozenset(passes.split()), args)


MUTANTS: dict[str, Case] = {
    # framing and streams
    "prints-banner": case("stream.stdout-purity", "shut.idle-exit-0"),
    "stray-print": case("stream.stdout-purity profile.echo"),
    "crlf": case("frame.no-crlf", "resp.unknown-action"),
    "bom": case("frame.no-bom", "shut.idle-exit-0"),
    "partial-line": case("frame.no-partial-line", "shut.idle-exit-0"),
    "crash-on-blank-line": case("frame.blank-lines-ignored", "resp.unknown-action"),
    "rejects-leading-bom": case("frame.leading-bom-ignored", "init.not-required"),
    "rejects-cr": case("frame.crlf-accepted", "resp.unknown-action"),
    "crash-on-bad-json": case("frame.invalid-json-survived", "frame.invalid-utf8-survived"),
    "crash-on-bad-utf8": case("frame.invalid-utf8-survived", "frame.invalid-json-survived"),
    "splits-unicode-lines": case("frame.unicode", "resp.unknown-action"),
    "one-mib-fails": case("frame.one-mib-line", "frame.huge-line-survived"),
    "huge-line-crash": case("frame.huge-line-survived", "frame.one-mib-line"),
    "rejects-nesting-64": case("frame.nesting-64", "frame.deep-nesting-survived"),
    "deep-nesting-crash": case("frame.deep-nesting-survived", "frame.nesting-64"),
    "acts-on-partial-line-at-eof": case(
        "frame.partial-line-at-eof-ignored", "stream.stdin-eof-exit"
    ),
    "two-messages-one-line-accepted": case(
        # the line vector with two SHUTDOWNs stops it, too
        "frame.two-messages-one-line req.invalid-unreadable-silent",
        "resp.unknown-action",
    ),
    "bom-everywhere-accepted": case("frame.bom-mid-stream-rejected", "frame.leading-bom-ignored"),
    "accepts-invalid-utf8-in-request": case(
        "frame.invalid-utf8-in-request", "frame.invalid-utf8-survived"
    ),
    "rejects-lone-surrogate": case(
        "frame.lone-surrogate-accepted profile.echo-lone-surrogate", "frame.unicode"
    ),
    "echo-replaces-lone-surrogate": case(
        "profile.echo-lone-surrogate", "frame.lone-surrogate-accepted profile.echo"
    ),
    "writes-raw-surrogates": case(
        "profile.echo-lone-surrogate stream.stdout-purity", "frame.lone-surrogate-accepted"
    ),
    "ignores-peer-line-limit": case(
        "frame.respects-peer-limit frame.line-within-peer-limit", "profile.echo"
    ),
    "drops-over-long-silently": case("frame.over-long-answered-413", "frame.huge-line-survived"),
    "node-cmd-crash": case("msg.node-cmd-ignored", "msg.unknown-type-ignored"),
    # messages
    "wrong-id": case("resp.unknown-action", "msg.schema-valid"),
    "answers-twice": case("req.legacy-wins", "resp.unknown-action"),
    "missing-status": case("msg.schema-valid resp.unknown-action"),
    "string-status": case("msg.schema-valid resp.unknown-action"),
    "extra-members": case("msg.no-unknown-members", "resp.unknown-action msg.schema-valid"),
    "nested-extra-member": case("msg.no-unknown-members", "resp.unknown-action"),
    "fractional-status": case("msg.integers-without-fraction", "resp.unknown-action"),
    "sends-stack": case("resp.no-stack-by-default", "resp.unknown-action resp.error-payload"),
    "rejects-unknown-members": case(
        # a vector has a member the worker does not know
        "msg.unknown-members-ignored req.valid-accepted",
        "resp.unknown-action",
    ),
    "crash-on-unknown-type": case("msg.unknown-type-ignored", "msg.wrong-role-ignored"),
    "answers-unknown-type": case("msg.unknown-type-ignored", "msg.wrong-role-ignored"),
    "answers-unmatched-response": case("id.unmatched-response-ignored", "resp.unknown-action"),
    "wrong-role-crash": case("msg.wrong-role-ignored", "msg.unknown-type-ignored"),
    "invalid-master-message-crash": case("msg.wrong-role-ignored", "init.invalid-ignored"),
    "drops-legacy-shape": case(
        "req.legacy-shape req.legacy-wins profile.echo-legacy req.valid-legacy-accepted",
        "req.valid-accepted",
    ),
    "legacy-loses": case("req.legacy-wins", "req.legacy-shape"),
    "no-400": case(
        "req.invalid-answered-400 req.invalid-legacy-answered-400", "resp.unknown-action"
    ),
    "runs-duplicate-ids": case(
        "profile.duplicate-id-ignored", "profile.echo profile.sequential-one-at-a-time"
    ),
    "rejects-integral-float": case("req.integral-float-accepted", "req.invalid-answered-400"),
    "id-length-utf16": case("id.length-128-code-points", "frame.unicode"),
    "runs-timeout-0": case("req.invalid-answered-400", "resp.unknown-action"),
    "invalid-duplicate-answered-400": case(
        "req.order-duplicate-first", "profile.duplicate-id-ignored"
    ),
    "404-before-503": case(
        "req.order-shutdown-before-404 shut.same-write-503", "shut.refuse-after-shutdown"
    ),
    "503-before-400": case("req.order-shutdown-before-404", "shut.same-write-503"),
    # answers
    "unknown-action-500": case(
        "resp.unknown-action resp.unknown-action-text", "req.invalid-answered-400"
    ),
    "wrong-404-text": case("resp.unknown-action-text", "resp.unknown-action"),
    "no-error-string": case("resp.error-text", "init.not-required resp.error-payload"),
    "error-on-success": case("resp.error-text", "profile.echo"),
    "no-error-payload": case("resp.error-payload", "resp.unknown-action resp.error-text"),
    "echo-drops-null": case("profile.echo", "profile.echo-legacy"),
    "fail-wrong-status": case("profile.fail-500", "profile.echo"),
    # lifecycle
    "requires-init": case("init.not-required", "resp.unknown-action"),
    "ready-after-answer": case("ready.once-after-init", "init.not-required"),
    "reads-flat-id-beside-request": case("req.unreadable-id-silent", "req.legacy-shape"),
    "ready-twice": case("ready.once-after-init", "init.repeat-ignored"),
    "invalid-init-stops": case("init.invalid-ignored", "init.repeat-ignored"),
    "invalid-shutdown-stops": case("shut.invalid-ignored", "shut.idle-exit-0"),
    # Not shut.same-write-503: an idle worker may exit without answering the REQUEST that
    # came with SHUTDOWN (SHUT-7), and this one's silence there is untestable.
    "drops-after-shutdown": case("shut.refuse-after-shutdown", "shut.idle-exit-0"),
    "shutdown-ignores-deadline": case("shut.deadline-exit", "profile.shutdown-finishes-work"),
    "exits-1-on-eof": case(
        "stream.stdin-eof-exit", "shut.idle-exit-0 frame.partial-line-at-eof-ignored"
    ),
    "eof-waits-for-handlers": case("stream.eof-exits-while-busy", "stream.stdin-eof-exit"),
    "init-repeat-breaks": case("init.repeat-ignored", "resp.unknown-action"),
    "ignores-shutdown": case("shut.idle-exit-0", "stream.stdin-eof-exit"),
    "exits-nonzero-on-shutdown": case("shut.idle-exit-0", "stream.stdin-eof-exit"),
    "shutdown-abandons": case("profile.shutdown-finishes-work", "shut.idle-exit-0"),
    "accepts-after-shutdown": case(
        "shut.refuse-after-shutdown shut.same-write-503", "shut.idle-exit-0"
    ),
    "drops-queued-at-shutdown": case(
        "profile.shutdown-answers-queued-503",
        "profile.shutdown-finishes-work shut.refuse-after-shutdown",
    ),
    "no-exit-on-eof": case("stream.stdin-eof-exit", "shut.idle-exit-0"),
    "no-heartbeat": case("hb.cadence", "resp.unknown-action"),
    "heartbeats-stall-when-busy": case("hb.while-busy", "hb.cadence profile.echo"),
    # scheduling
    "sequential-overlaps": case("profile.sequential-one-at-a-time", "profile.echo"),
    "concurrent-serializes": case(
        "profile.concurrent-overlap", "profile.echo", "--mode", "concurrent"
    ),
    "no-priority": case("profile.sequential-priority", "profile.sequential-one-at-a-time"),
    "drops-expired": case("profile.queue-expiry-408", "profile.sequential-one-at-a-time"),
    "never-expires-without-timeout": case(
        "profile.queue-expiry-default-5000",
        "profile.queue-expiry-408 profile.queue-no-early-expiry",
    ),
    "default-timeout-2000": case(
        "profile.queue-no-early-expiry", "profile.queue-expiry-default-5000"
    ),
    "concurrent-no-queue-expiry": case(
        "profile.concurrent-queue-expiry-408",
        "profile.concurrent-overlap profile.concurrent-priority",
        "--mode",
        "concurrent",
    ),
    "concurrent-ignores-priority": case(
        "profile.concurrent-priority",
        "profile.concurrent-overlap profile.concurrent-queue-expiry-408",
        "--mode",
        "concurrent",
    ),
    "concurrent-drops-at-shutdown": case(
        "profile.concurrent-shutdown-503",
        "profile.concurrent-priority profile.shutdown-finishes-work",
        "--mode",
        "concurrent",
    ),
    # requests to the master
    "call-master-wrong": case("profile.call-master", "profile.call-master-failure"),
    "call-master-failure-lost": case("profile.call-master-failure", "profile.call-master"),
    "call-master-never-times-out": case("profile.call-master-timeout", "profile.call-master"),
    "waits-on-invalid-answer": case(
        "profile.call-master-invalid-answer", "profile.call-master-failure"
    ),
    "call-master-legacy-shape": case("req.child-unified-shape", "profile.call-master"),
    # cancellation: a worker that states 1.1 and ignores CANCEL does not reach the level
    "ignores-cancel": case(
        "cancel.queued-never-runs cancel.running-stops cancel.queue-moves-on cancel.repeat-ignored",
        # ignoring a CANCEL is right for an id it owes nothing, and a request that ran
        # to the end still has its one answer
        "cancel.unknown-id-ignored cancel.one-answer cancel.own-call-timeout",
    ),
    "cancel-runs-queued": case(
        "cancel.concurrent-queued-never-runs",
        "cancel.running-stops cancel.one-answer",
        "--mode",
        "concurrent",
    ),
    "cancel-answers-twice": case(
        # and the echo after each 60 s sleep waits behind it
        "cancel.running-stops cancel.one-answer cancel.queue-moves-on cancel.repeat-ignored",
        "cancel.queued-never-runs cancel.unknown-id-ignored",
    ),
    "cancel-answers-unknown": case(
        "cancel.unknown-id-ignored cancel.repeat-ignored", "cancel.running-stops"
    ),
    "cancels-to-1.0-master": case(
        # its CANCEL comes where the call's failure is expected, too
        "cancel.sent-only-when-allowed profile.call-master-timeout",
        "cancel.own-call-timeout",
    ),
    "cancels-wrong-id": case(
        "cancel.own-call-timeout cancel.sent-only-when-allowed", "profile.call-master-timeout"
    ),
}


@dataclass(frozen=True, slots=True)
class Run:
    """One run of the suite's command line: each check's verdict, and how it exited."""

    verdicts: dict[str, str]
    returncode: int
    output: str
    #: The report's summary.levels: each level's state.
    levels: dict[str, str] = field(default_factory=dict)


def run_suite(worker: list[str], *args: str) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "peepsy.conformance", "--quiet", "--json", str(report)]
        proc = subprocess.run(
            [*command, *args, "--", *worker],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
        output = proc.stdout + proc.stderr
        assert report.exists(), f"no JSON report; the suite said:\n{output}"
        data = json.loads(report.read_text(encoding="utf-8"))
    verdicts = {c["check"]: c["verdict"] for c in data["checks"]}
    return Run(verdicts, proc.returncode, output, data["summary"]["levels"])


def mutant(name: str | None) -> list[str]:
    return [sys.executable, str(MUTANT), *([] if name is None else ["--mutation", name])]


def run_mutant(name: str) -> Run:
    spec = MUTANTS[name]
    only = [arg for check in sorted(spec.fails | spec.passes) for arg in ("--only", check)]
    return run_suite(mutant(name), *spec.args, *only)


def listed_checks() -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "peepsy.conformance", "--list"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    return {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}


def mutation_names() -> list[str]:
    proc = subprocess.run(
        [sys.executable, str(MUTANT), "--list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]


def job(key: str) -> Run:
    """A mutant by name, or ``unmutated:MODE`` for the whole suite against mutant.py
    with no mutation."""
    if key.startswith("unmutated:"):
        # The budgets only bound how long a check waits, so a worker that passes passes
        # as fast with a larger scale; the scale keeps a correct worker from failing a
        # bound because the machine is busy (these runs overlap each other).
        mode = key.removeprefix("unmutated:")
        return run_suite(mutant(None), "--mode", mode, "--timeout-scale", "4")
    return run_mutant(key)


def job_key(item: pytest.Item) -> str | None:
    params = getattr(item, "callspec", None)
    if item.path != Path(__file__) or params is None:
        return None
    if "name" in params.params:
        return str(params.params["name"])
    return f"unmutated:{params.params['mode']}"


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[Run]]]:
    """The suite runs this session's tests need, started together and a few at a time:
    most of a run is the suite waiting on the worker, so runs overlap well."""
    keys = [key for item in request.session.items if (key := job_key(item)) is not None]
    # The slowest first, so that their waiting overlaps everything else.
    order = sorted(
        dict.fromkeys(keys), key=lambda key: SLOW.index(key) if key in SLOW else len(SLOW)
    )
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = {key: pool.submit(job, key) for key in order}
        yield futures
        for future in futures.values():
            future.cancel()


def test_every_mutation_has_an_entry() -> None:
    assert sorted(mutation_names()) == sorted(MUTANTS)


def test_every_check_is_failed_by_some_mutant() -> None:
    """No check that cannot fail: each one is some mutant's ``fails``."""
    checks = listed_checks()
    caught = set().union(*(spec.fails for spec in MUTANTS.values()))
    assert caught == checks, (
        f"no mutant fails {sorted(checks - caught)}; unknown checks {sorted(caught - checks)}"
    )
    named = set().union(*(spec.passes for spec in MUTANTS.values()))
    assert named <= checks


def test_every_mutant_is_caught_and_breaks_one_rule() -> None:
    for name, spec in MUTANTS.items():
        assert spec.fails, f"{name} is caught by no check"
        assert not spec.fails & spec.passes, name


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_fails_exactly_its_checks(name: str, runs: dict[str, Future[Run]]) -> None:
    spec = MUTANTS[name]
    run = runs[name].result(timeout=180)
    assert set(run.verdicts) == spec.fails | spec.passes, run.output
    not_passing = {check for check, verdict in run.verdicts.items() if verdict != "pass"}
    assert not_passing == spec.fails, run.output
    assert {run.verdicts[check] for check in spec.fails} <= CAUGHT, run.output
    # A failing MUST (fail, timeout) fails the run; a warning alone does not.
    failed = any(run.verdicts[check] in ("fail", "timeout") for check in spec.fails)
    assert run.returncode == (1 if failed else 0), run.output


@pytest.mark.parametrize("mode", ["sequential", "concurrent"])
def test_unmutated_worker_passes_every_check(mode: str, runs: dict[str, Future[Run]]) -> None:
    run = runs[f"unmutated:{mode}"].result(timeout=180)
    assert run.returncode == 0, run.output
    assert set(run.verdicts) == listed_checks()
    passed = {check for check, verdict in run.verdicts.items() if verdict == "pass"}
    skipped = {check for check, verdict in run.verdicts.items() if verdict == "skip"}
    assert passed | skipped == set(run.verdicts), run.output
    # Only the checks written for the other mode are skipped.
    other = "concurrent" if mode == "sequential" else "sequential"
    assert skipped == mode_only_checks(other), run.output
    assert run.levels == {"core": "reached", "profile": "reached", "cancel": "reached"}


def test_a_worker_that_ignores_cancel_does_not_reach_the_cancel_level(
    runs: dict[str, Future[Run]],
) -> None:
    """It states protocol 1.1, so the level runs, and fails: not reached (the issue's
    "a worker that ignores CANCEL must not reach the new level")."""
    future = runs.get("ignores-cancel")
    run = future.result(timeout=180) if future is not None else job("ignores-cancel")
    assert run.levels["cancel"] == "not-reached", run.output
    assert "cancel: not reached (4 failing)" in run.output, run.output


def mode_only_checks(mode: str) -> set[str]:
    transcripts = ROOT / "conformance" / "transcripts"
    out = set()
    for path in transcripts.rglob("*.ndjson"):
        head = json.loads(path.read_text(encoding="utf-8").split("\n", 1)[0])
        if head.get("mode") == mode:
            out.add(head["check"])
    return out
