"""The conformance suite as pytest items: ``pytest --peepsy-worker CMD`` (or the ini
option) collects one item per check, and each reports its check's verdict.

Each test runs pytest inside pytest (``pytester``) on a worker that does not import
peepsy (conformance/mutants/mutant.py), selecting a few checks with ``-k``.
"""

from __future__ import annotations

import shutil
import sys
import tomllib

import pytest

from peepsy.conformance._checks import GLOBAL_CHECKS
from peepsy.conformance._schemas import builtin_transcripts
from peepsy.conformance._suite import load_all
from peepsy.conformance._transcript import Outcome
from peepsy.testing import _conformance
from tests.conformance.test_mutants import MUTANTS
from tests.plugin._support import MUTANT, ROOT, command, plugin_args

pytest_plugins = ["pytester"]


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """Each conformance item's outcome, by check id."""
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    out: dict[str, str] = {}
    for report in reports:
        if report.nodeid.startswith("peepsy-conformance::") and (
            report.when == "call" or report.outcome != "passed"
        ):
            xfailed = hasattr(report, "wasxfail")
            out[report.nodeid.split("::", 1)[1]] = "xfailed" if xfailed else report.outcome
    return out


def test_the_entry_point_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["entry-points"]["pytest11"] == {"peepsy": "peepsy.pytest_plugin"}


def test_one_item_per_check_named_by_its_id(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        *plugin_args(), "--peepsy-worker", command(MUTANT), "--collect-only", "-q"
    )
    checks = [t.check for t in load_all([builtin_transcripts()])]
    checks += [g.check for g in GLOBAL_CHECKS]
    listed = [line for line in result.outlines if line.startswith("peepsy-conformance::")]
    assert listed == [f"peepsy-conformance::{c}" for c in checks]
    assert result.ret == 0  # collecting starts no worker: nothing to fail


def test_verdicts_map_to_pytest_outcomes(pytester: pytest.Pytester) -> None:
    """fail -> failed with the check's diff; warn -> passed with a ConformanceWarning;
    a level the worker does not offer -> skipped with the reason; pass -> passed."""
    worker = command(MUTANT, "--mutation", "wrong-id")
    selection = "resp.unknown-action or cancel.one-answer or msg.schema-valid or sent-only"
    # This test's own run makes warnings errors (filterwarnings): not the inner run's.
    keep = "default::peepsy.testing.ConformanceWarning"
    result = pytester.runpytest(
        *plugin_args(), "--peepsy-worker", worker, "-k", selection, "-rs", "-W", keep
    )
    assert outcomes(result) == {
        "resp.unknown-action": "failed",
        "resp.unknown-action-text": "passed",
        "cancel.one-answer": "skipped",
        "msg.schema-valid": "passed",
        "cancel.sent-only-when-allowed": "skipped",  # no run sent a REQUEST: untestable
    }
    result.stdout.fnmatch_lines(
        [
            "*resp.unknown-action: *",
            '*at $.id: expected "u1", got "not-u1"*',
            "*unknown-action-text.ndjson:1: ConformanceWarning: resp.unknown-action-text (RESP-7)*",
            "*peepsy conformance*",
            "levels: core: not reached (1 failing)*",
            "SKIPPED *one-answer.ndjson:1: cancel level not offered*",
            "SKIPPED *peepsy-conformance:1: not testable: no REQUEST or CANCEL*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_warning_fails_where_warnings_are_errors(pytester: pytest.Pytester) -> None:
    worker = command(MUTANT, "--mutation", "wrong-id")
    result = pytester.runpytest(
        *plugin_args(),
        "--peepsy-worker",
        worker,
        "-k",
        "resp.unknown-action-text",
        "-W",
        "error::peepsy.testing.ConformanceWarning",
    )
    assert outcomes(result) == {"resp.unknown-action-text": "failed"}
    result.stdout.fnmatch_lines(["*(a warning, raised)", "*verdict warn; requirement RESP-7*"])


def test_a_worker_without_the_profile_skips_the_profile_checks(
    pytester: pytest.Pytester,
) -> None:
    """Level-dependent checks are skipped with the reason, never failed (here: a 1.0
    worker, which is never sent CANCEL, and --peepsy-level core)."""
    worker = command(MUTANT, "--protocol", "1.0")
    result = pytester.runpytest(
        *plugin_args(), "--peepsy-worker", worker, "-k", "cancel.one-answer or profile.echo-legacy"
    )
    assert outcomes(result) == {"cancel.one-answer": "skipped", "profile.echo-legacy": "passed"}
    result = pytester.runpytest(
        *plugin_args(),
        "--peepsy-worker",
        worker,
        "--peepsy-level",
        "core",
        "-k",
        "profile.echo-legacy",
    )
    assert outcomes(result) == {"profile.echo-legacy": "skipped"}
    result.stdout.fnmatch_lines(["*1 skipped*"])


@pytest.mark.parametrize("mutation", ["crlf", "crash-on-bad-json"])
def test_a_broken_worker_fails_exactly_the_checks_meant_for_it(
    pytester: pytest.Pytester, mutation: str
) -> None:
    case = MUTANTS[mutation]
    chosen = sorted(case.fails | case.passes)
    result = pytester.runpytest(
        *plugin_args(),
        "--peepsy-worker",
        command(MUTANT, "--mutation", mutation),
        "-k",
        " or ".join(chosen),
    )
    got = {check: o for check, o in outcomes(result).items() if check in chosen}
    assert got == {c: "failed" if c in case.fails else "passed" for c in chosen}


def test_the_ini_option_runs_a_worker_from_the_ini_files_folder(
    pytester: pytest.Pytester,
) -> None:
    shutil.copy(MUTANT, pytester.path / "my_worker.py")
    pytester.makeini(
        f"""
        [pytest]
        peepsy_worker = {sys.executable} my_worker.py
        peepsy_level = core
        peepsy_timeout_scale = 2
        """
    )
    elsewhere = pytester.mkdir("elsewhere")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(elsewhere)
        result = pytester.runpytest(*plugin_args(), "-k", "resp.unknown-action")
    assert outcomes(result) == {
        "resp.unknown-action": "passed",
        "resp.unknown-action-text": "passed",
    }
    result.stdout.fnmatch_lines(["peepsy worker: * my_worker.py (in *)"])


def test_the_ini_option_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makeini(f"[pytest]\npeepsy_worker = {command(MUTANT)}\npeepsy_conformance = false\n")
    pytester.makepyfile("def test_mine():\n    pass\n")
    result = pytester.runpytest(*plugin_args())
    result.assert_outcomes(passed=1)
    result = pytester.runpytest(*plugin_args(), "--peepsy-worker", command(MUTANT))
    result.assert_outcomes(passed=1)  # the ini turns the items off whoever names the worker


def test_no_conformance_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_mine():\n    pass\n")
    result = pytester.runpytest(
        *plugin_args(), "--peepsy-worker", command(MUTANT), "--peepsy-no-conformance"
    )
    result.assert_outcomes(passed=1)


def test_without_a_worker_the_plugin_adds_nothing_and_imports_nothing_heavy(
    pytester: pytest.Pytester,
) -> None:
    """A project that has peepsy installed but configures no worker: no items, no
    header line, and neither the suite nor the master is imported."""
    pytester.makepyfile(
        """
        import sys

        def test_nothing_heavy_was_imported():
            heavy = {"peepsy.conformance", "peepsy.master", "peepsy.testing", "jsonschema"}
            assert heavy.isdisjoint(sys.modules)
        """
    )
    result = pytester.runpytest_subprocess(*plugin_args(), timeout=120)
    result.assert_outcomes(passed=1)
    assert "peepsy worker" not in result.stdout.str()


def test_a_worker_that_cannot_start_fails_every_chosen_check(pytester: pytest.Pytester) -> None:
    """Nothing was checked, which is no pass and no skip."""
    missing = str(pytester.path / "no-such-worker")
    result = pytester.runpytest(*plugin_args(), "--peepsy-worker", missing, "-k", "resp.unknown")
    assert set(outcomes(result).values()) == {"failed"}
    result.stdout.fnmatch_lines(["*the suite cannot run*"])


def test_a_worker_that_dies_at_start_up_fails_with_its_stderr(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(dying="import sys\nsys.exit('I give up')\n")
    worker = command(pytester.path / "dying.py")
    result = pytester.runpytest(*plugin_args(), "--peepsy-worker", worker, "-k", "resp.unknown")
    assert set(outcomes(result).values()) == {"failed"}
    result.stdout.fnmatch_lines(["*the worker cannot be checked*", "*I give up*"])


@pytest.mark.parametrize(
    ("ini", "error"),
    [
        ("peepsy_level = highest", "*peepsy_level: 'highest' is not one of*"),
        ("peepsy_mode = parallel", "*peepsy_mode: 'parallel' is not sequential or concurrent*"),
        ("peepsy_transport = tcp", "*peepsy_transport: 'tcp' is not stdio or node-ipc*"),
        ("peepsy_timeout_scale = slow", "*peepsy_timeout_scale: not a positive number*"),
        ("peepsy_timeout_scale = -1", "*peepsy_timeout_scale: not a positive number*"),
    ],
)
def test_bad_settings_are_usage_errors(pytester: pytest.Pytester, ini: str, error: str) -> None:
    pytester.makeini(f"[pytest]\npeepsy_worker = {command(MUTANT)}\n{ini}\n")
    result = pytester.runpytest(*plugin_args())
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([error])


@pytest.mark.parametrize(
    ("worker", "error"),
    [
        (" ", "*peepsy_worker: the worker command is empty*"),
        ("node 'my worker.js", "*peepsy_worker: No closing quotation: node 'my worker.js"),
    ],
)
def test_a_worker_command_that_is_no_command_is_a_usage_error(
    pytester: pytest.Pytester, worker: str, error: str
) -> None:
    result = pytester.runpytest(*plugin_args(), "--peepsy-worker", worker)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([error])


def test_an_invalid_extra_transcript_is_a_collection_error(pytester: pytest.Pytester) -> None:
    bad = pytester.makefile(".ndjson", bad='{"check": "x"}\n')
    result = pytester.runpytest(
        *plugin_args(), "--peepsy-worker", command(MUTANT), "--peepsy-transcripts", str(bad)
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*invalid transcript*"])


def test_ctrl_c_in_the_suite_stops_pytest(pytester: pytest.Pytester) -> None:
    """SIGINT in the suite (run_suite raises Interrupted, its workers killed) stops the
    whole pytest run as a Ctrl-C does; in a process of its own, as pytest then exits."""
    pytester.makeconftest(
        """
        from peepsy.conformance._suite import Interrupted, SuiteResult
        from peepsy.testing import _conformance

        async def interrupted(*args):
            raise Interrupted(SuiteResult())

        _conformance.run_suite = interrupted
        """
    )
    worker = command(MUTANT)
    result = pytester.runpytest_subprocess(
        *plugin_args(), "--peepsy-worker", worker, "-k", "resp", timeout=120
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])


def test_an_error_that_is_no_verdict_is_shown_as_pytest_would(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_runtest_call(item):
            raise RuntimeError("not the check's doing")
        """
    )
    worker = command(MUTANT)
    result = pytester.runpytest(*plugin_args(), "--peepsy-worker", worker, "-k", "resp.unknown")
    result.stdout.fnmatch_lines(["E * RuntimeError: not the check's doing"])


def test_explain_says_what_a_check_has() -> None:
    bare = Outcome("x.y", ("REQ-1",), "core", "MUST", "d", "fail")
    assert _conformance.explain(bare) == "  verdict fail; requirement REQ-1 (MUST); level core"
    full = Outcome(
        "x.y",
        ("REQ-1",),
        "core",
        "MUST",
        "d",
        "timeout",
        message="no answer",
        trace=["1.0 ms -> {}\n"],
        stderr="boom\n",
        source="x.ndjson",
    )
    assert _conformance.explain(full).splitlines() == [
        "  verdict timeout; requirement REQ-1 (MUST); level core; x.ndjson",
        "  no answer",
        "  wire log:",
        "    1.0 ms -> {}",
        "  worker stderr (end):",
        "    boom",
    ]


def test_expected_failures_are_xfailed_and_stale_ones_fail(pytester: pytest.Pytester) -> None:
    """As the CLI's --expected-failures: a listed check that fails is tolerated; one that
    passes fails as stale, so that the list shrinks as the worker is fixed."""
    pytester.makefile(
        ".txt",
        expected="frame.no-crlf  # CR LF for now\nresp.unknown-action\nno.such-check\n"
        "profile.echo-legacy\n",
    )
    pytester.makeini(
        f"[pytest]\npeepsy_worker = {command(MUTANT, '--mutation', 'crlf')}\n"
        "peepsy_expected_failures = expected.txt\npeepsy_level = core\n"
    )
    selection = "frame.no-crlf or resp.unknown-action or profile.echo-legacy"
    result = pytester.runpytest(*plugin_args(), "-k", selection)
    assert outcomes(result) == {
        "frame.no-crlf": "xfailed",
        "resp.unknown-action": "failed",
        "resp.unknown-action-text": "passed",
        "profile.echo-legacy": "skipped",  # skipped says nothing either way, as in the CLI
    }
    result.stdout.fnmatch_lines(
        [
            "*STALE: listed in *expected.txt as an expected failure, but it passes; remove it",
            "*expected.txt: no check is called 'no.such-check'",
        ]
    )


def test_an_unreadable_expected_failures_file_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest(
        *plugin_args(),
        "--peepsy-worker",
        command(MUTANT),
        "--peepsy-expected-failures",
        "missing.txt",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*peepsy_expected_failures: *missing.txt*"])


def test_an_ini_value_given_with_o_runs_in_the_rootdir(pytester: pytest.Pytester) -> None:
    """``-o peepsy_worker=...`` without an ini file: the worker runs in the rootdir."""
    shutil.copy(MUTANT, pytester.path / "my_worker.py")
    worker = f"peepsy_worker={sys.executable} my_worker.py"
    result = pytester.runpytest(*plugin_args(), "-o", worker, "-k", "resp.unknown-action-text")
    assert outcomes(result) == {"resp.unknown-action-text": "passed"}
    result.stdout.fnmatch_lines([f"peepsy worker: * my_worker.py (in {pytester.path})"])


def test_own_transcripts_alone(pytester: pytest.Pytester) -> None:
    """--peepsy-transcripts with --peepsy-no-builtin: a project's own checks only (the
    checks that watch every run come with them)."""
    mine = ROOT / "conformance" / "transcripts" / "core" / "unknown-action.ndjson"
    result = pytester.runpytest(
        *plugin_args(),
        "--peepsy-worker",
        command(MUTANT),
        "--peepsy-transcripts",
        str(mine),
        "--peepsy-no-builtin",
        "--collect-only",
        "-q",
    )
    listed = [line for line in result.outlines if line.startswith("peepsy-conformance::")]
    assert listed[0] == "peepsy-conformance::resp.unknown-action"
    assert len(listed) == 1 + len(GLOBAL_CHECKS)
