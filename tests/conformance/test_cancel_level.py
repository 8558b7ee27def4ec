"""The cancel level: offered to a worker whose READY states protocol 1.1 or later and
that serves the profile; skipped with its reason, never failed, for a 1.0 worker (the
Node original among them); ``--level`` names the highest level to run.

The levels' logic is tested here directly; the runs use the mutant worker, which speaks
1.1 by default and 1.0 with ``--protocol 1.0`` (it then ignores CANCEL, as every worker
from before CANCEL does), and the reference worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from peepsy.conformance._levels import learn_levels, levels_line, offered, states_cancel
from peepsy.conformance._probe import ProbeResult
from peepsy.conformance._schemas import builtin_transcripts
from peepsy.conformance._suite import Options, SuiteResult, load_all
from peepsy.conformance._transcript import Level, Outcome, Verdict
from tests.conformance._cli import PYTHON, REFERENCE, ROOT, run_cli

MUTANT = str(ROOT / "conformance" / "mutants" / "mutant.py")
CANCEL_LEVEL = {t.check for t in load_all([builtin_transcripts()]) if t.level == "cancel"}
OLD = "the worker's READY states protocol 1.0; CANCEL needs 1.1 (CANCEL-1)"
UNSTATED = (
    "the worker's READY states no protocol, so it speaks 1.0 (VER-1); CANCEL needs 1.1 (CANCEL-1)"
)


@pytest.mark.parametrize(
    ("protocol", "cancels"),
    [
        (None, False),
        ("1.0", False),
        ("1.1", True),
        ("1.10", True),
        ("2.0", True),
        ("0.9", False),
        ("1.1.0", False),
        ("v1.1", False),
        ("01.1", False),
    ],
)
def test_which_stated_versions_promise_cancel(protocol: str | None, cancels: bool) -> None:
    assert states_cancel(protocol) is cancels


def learned(level: str, *, profile: bool, protocol: str | None) -> SuiteResult:
    result = SuiteResult()
    note = "" if profile else "echo answered status 404, so only core checks run"
    learn_levels(
        Options(argv=["w"], level=level), result, ProbeResult(profile, note, None, protocol)
    )
    return result


def test_auto_offers_the_cancel_level_to_a_1_1_profile_worker() -> None:
    result = learned("auto", profile=True, protocol="1.1")
    assert (result.profile, result.cancel, result.cancel_note) == (True, True, "")
    assert result.worker_protocol == "1.1"
    assert offered("cancel", result) == ""


@pytest.mark.parametrize(
    ("protocol", "why"),
    [("1.0", OLD), (None, UNSTATED)],
)
def test_auto_skips_the_cancel_level_of_a_1_0_worker(protocol: str | None, why: str) -> None:
    result = learned("auto", profile=True, protocol=protocol)
    assert (result.profile, result.cancel, result.cancel_note) == (True, False, why)
    assert offered("cancel", result) == f"cancel level not offered: {why}"
    assert offered("profile", result) == ""


def test_the_cancel_level_needs_the_profile() -> None:
    result = learned("auto", profile=False, protocol="1.1")
    assert not result.cancel
    assert result.cancel_note == (
        "it needs the profile's actions, and the profile level does not run"
    )
    assert offered("profile", result).startswith("profile level not offered: echo answered")


@pytest.mark.parametrize("level", ["core", "profile"])
def test_a_lower_level_asked_for_leaves_the_cancel_level_out(level: str) -> None:
    result = learned(level, profile=True, protocol="1.1")
    assert (result.cancel, result.cancel_note) == (False, f"--level {level}")
    assert result.profile is (level == "profile")


def test_level_cancel_runs_both_levels_even_when_not_offered() -> None:
    result = learned("cancel", profile=False, protocol="1.0")
    assert result.profile
    assert result.cancel
    assert result.profile_note.endswith("(--level cancel: profile checks run and fail)")
    assert result.cancel_note.endswith("(--level cancel: its checks run and fail)")
    assert learned("cancel", profile=True, protocol="1.1").cancel_note == ""


def test_a_worker_that_cannot_be_checked_gets_no_cancel_note() -> None:
    """Its one cause is said once, by the summary: no level repeats it."""
    result = SuiteResult()
    found = ProbeResult(False, "", None, None, problem="the worker exited with status 1")
    learn_levels(Options(argv=["w"]), result, found)
    assert (result.profile, result.profile_note, result.cancel, result.cancel_note) == (
        False,
        "",
        False,
        "",
    )


def outcome(check: str, level: Level, verdict: Verdict) -> Outcome:
    return Outcome(check, ("RESP-1",), level, "MUST", "d", verdict)


def test_the_levels_line_says_why_a_level_did_not_run() -> None:
    result = learned("auto", profile=True, protocol="1.0")
    result.outcomes = [
        outcome("a.core", "core", "pass"),
        outcome("a.profile", "profile", "fail"),
        outcome("a.cancel", "cancel", "skip"),
    ]
    assert levels_line(result) == (
        f"core: reached; profile: not reached (1 failing); cancel: not run ({OLD})"
    )
    # A level forced by --level, not run for another cause, has no note to give.
    result.cancel, result.profile, result.profile_note = True, False, ""
    result.outcomes[1].verdict = "skip"
    assert levels_line(result) == "core: reached; profile: not run; cancel: not run"


def report(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str, int]:
    path = tmp_path / "report.json"
    run = run_cli("--json", str(path), *args)
    data = json.loads(path.read_text(encoding="utf-8"))
    return data, run.stdout + run.stderr, run.returncode


@pytest.mark.parametrize(("stated", "why"), [("1.0", OLD), ("none", UNSTATED)])
def test_a_1_0_worker_is_not_run_at_the_cancel_level_and_not_failed(
    tmp_path: Path, stated: str, why: str
) -> None:
    data, output, code = report(
        tmp_path, "--only", "cancel.*", "--only", "profile.echo",
        "--", PYTHON, MUTANT, "--protocol", stated,
    )  # fmt: skip
    assert code == 0, output
    checks = {c["check"]: c for c in data["checks"]}
    assert {c: checks[c]["verdict"] for c in CANCEL_LEVEL} == dict.fromkeys(CANCEL_LEVEL, "skip")
    assert all(checks[c]["message"] == f"cancel level not offered: {why}" for c in CANCEL_LEVEL)
    assert checks["profile.echo"]["verdict"] == "pass"
    protocol = None if stated == "none" else stated
    assert (data["cancel"], data["cancelNote"], data["workerProtocol"]) == (False, why, protocol)
    assert data["summary"]["levels"]["cancel"] == "not-run"
    assert f"cancel: not run ({why})" in output


def test_level_cancel_holds_a_1_0_worker_to_it(tmp_path: Path) -> None:
    """Forced, the level runs against a worker that ignores CANCEL, and fails."""
    data, output, code = report(
        tmp_path, "--level", "cancel", "--only", "cancel.running-stops",
        "--", PYTHON, MUTANT, "--protocol", "1.0",
    )  # fmt: skip
    assert code == 1, output
    assert data["checks"][0]["verdict"] == "fail"
    assert data["cancelNote"] == f"{OLD} (--level cancel: its checks run and fail)"
    assert data["summary"]["levels"]["cancel"] == "not-reached"


def test_level_profile_leaves_the_cancel_checks_out(tmp_path: Path) -> None:
    data, output, code = report(
        tmp_path, "--level", "profile", "--only", "cancel.*", "--only", "profile.echo",
        "--", PYTHON, MUTANT,
    )  # fmt: skip
    assert code == 0, output
    skipped = {c["check"] for c in data["checks"] if c["verdict"] == "skip"}
    assert skipped == CANCEL_LEVEL
    assert "cancel: not run (--level profile)" in output
    # Cancel checks alone with --level profile would run nothing: refused before the run.
    refused = run_cli("--only", "cancel.*", "--level", "profile", *REFERENCE)
    assert refused.returncode == 2
    assert "leaves only cancel checks, and --level profile skips them" in refused.stderr
    refused = run_cli("--only", "cancel.*", "--only", "profile.*", "--level", "core", *REFERENCE)
    assert "leaves only profile and cancel checks, and --level core skips them" in refused.stderr


def test_the_reference_worker_reaches_the_cancel_level(tmp_path: Path) -> None:
    """The README's first command, at this level: the bundled worker (a peepsy Child,
    protocol 1.1) passes every cancel check for its mode."""
    data, output, code = report(tmp_path, "--only", "cancel.*", *REFERENCE)
    assert code == 0, output
    verdicts = {c["check"]: c["verdict"] for c in data["checks"]}
    assert verdicts == {
        **dict.fromkeys(CANCEL_LEVEL - {"cancel.concurrent-queued-never-runs"}, "pass"),
        "cancel.concurrent-queued-never-runs": "skip",
        # the check over every run: its CANCELs name its own unanswered calls
        "cancel.sent-only-when-allowed": "pass",
    }
    assert data["summary"]["levels"]["cancel"] == "reached"
