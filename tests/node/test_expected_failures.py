"""The conformance suite over Node's IPC channel, against the model of a Node peepsy 1.0.1
worker (tests/node/peepsy_1_0_1_worker.js), held to tests/node/node-worker-expected-failures.txt:
the run passes with that list, nothing in it is stale, everything in it really fails, and
the list is exactly what fails (regenerate it with python -m tests.node.expected_failures
--write)."""

from __future__ import annotations

import shutil

import pytest

from tests.node import expected_failures as ef

NODE = shutil.which("node")


@pytest.fixture(scope="module")
def run() -> ef.Run:
    if NODE is None:
        pytest.skip("needs Node.js")
    return ef.run_suite(NODE)


def test_the_suite_passes_a_node_worker_with_its_expected_failures(run: ef.Run) -> None:
    assert run.returncode == 0, run.output[-4000:]
    summary = run.report["summary"]
    assert summary["stale"] == [], summary
    assert run.report["passed"] is True
    assert summary["exitCode"] == 0


def test_every_listed_check_really_fails(run: ef.Run) -> None:
    listed = ef.read_reasons(ef.LIST.read_text(encoding="utf-8"))
    verdicts = run.verdicts
    assert sorted(set(listed) - set(verdicts)) == [], "listed ids that are no check"
    not_failing = {i: verdicts[i] for i in listed if verdicts[i] not in ef.FAILING_VERDICTS}
    assert not_failing == {}
    tolerated = {c["check"] for c in run.report["checks"] if c["expectedFailure"] == "expected"}
    assert tolerated == set(listed)


def test_the_list_is_exactly_what_fails(run: ef.Run) -> None:
    current = ef.LIST.read_text(encoding="utf-8")
    wanted = ef.render(run.failing(), ef.read_reasons(current))
    assert current == wanted, (
        f"{ef.LIST.name} is out of date; run: {ef.COMMAND}\n{ef.diff(current, wanted)}"
    )


def test_every_listed_check_names_the_fact_behind_it() -> None:
    reasons = ef.read_reasons(ef.LIST.read_text(encoding="utf-8"))
    assert reasons, "the list is empty"
    missing = sorted(i for i, reason in reasons.items() if reason in ("", ef.PLACEHOLDER))
    assert missing == []


def test_the_model_is_the_one_that_passes_what_1_0_1_does(run: ef.Run) -> None:
    """What the real library does right, the model must do too: not a list of failures
    that an empty or broken worker would also produce."""
    verdicts = run.verdicts
    assert run.report["profile"] is True
    # Node peepsy 1.0.1 speaks 1.0 and ignores CANCEL: never sent one, it is not checked
    # at the cancel level, and not failed for it (its skipped checks need no listing).
    assert run.report["cancel"] is False
    assert run.report["summary"]["levels"]["cancel"] == "not-run"
    for check in (
        "profile.echo",
        "profile.echo-legacy",
        "profile.fail-500",
        "profile.call-master",
        "profile.call-master-failure",
        "profile.sequential-one-at-a-time",
        "req.legacy-shape",
        "req.legacy-wins",
        "resp.unknown-action-text",
        "shut.idle-exit-0",
    ):
        assert verdicts[check] == "pass", check
    req400 = next(c for c in run.report["checks"] if c["check"] == "req.invalid-answered-400")
    answer = '"status":404,"error":"No handler registered for action: undefined"'
    assert any(answer in line for line in req400["trace"]), req400["trace"]


def test_a_regenerated_list_keeps_reasons_and_marks_new_ids() -> None:
    old = "# header\nb.check  # why b fails\nstale.check  # gone now\n"
    text = ef.render(["c.check", "b.check"], ef.read_reasons(old))
    assert text.startswith(ef.HEADER)
    assert ef.read_reasons(text) == {"b.check": "why b fails", "c.check": ef.PLACEHOLDER}
    assert ef.render(["b.check"], ef.read_reasons(text)) == ef.HEADER + "b.check  # why b fails\n"
    assert "-stale.check" in ef.diff(old, text)
