"""The command line, run as a user runs it: selection, exit codes, reports, expected failures."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from jsonschema import Draft202012Validator

from peepsy.conformance._checks import GLOBAL_CHECKS
from tests.conformance._cli import (
    PYTHON,
    REFERENCE,
    REPORT_SCHEMA,
    WORKER,
    run_cli,
    write_transcript,
)

GLOBAL_IDS = {g.check for g in GLOBAL_CHECKS}
PASSING = (
    '{"check": "mine.passes", "requirement": ["RESP-4"], "description": "404 for no action"}',
    '{"send": {"type": "REQUEST", "id": "p1", "action": "mine.nothing"}}',
    '{"expect": {"type": "RESPONSE", "id": "p1", "status": 404}}',
)
FAILING = (
    '{"check": "mine.fails", "requirement": ["RESP-1"], "description": "wants 200"}',
    "",
    '{"send": {"type": "REQUEST", "id": "f1", "action": "mine.nothing", "data": [1]}}',
    "",
    '{"expect": {"type": "RESPONSE", "id": "f1", "status": 200, "data": [1]}}',
)
#: Longer than its 300 ms budget, even with the 5000 ms start-up allowance on top.
SLOW = (
    '{"check": "mine.slow", "requirement": ["RESP-1"], "timeout": 300, "description": "too slow"}',
    '{"wait": 6000}',
)


def listed(stdout: str) -> list[str]:
    return [line.split()[0] for line in stdout.splitlines() if line.strip()]


def test_list_only_skip(tmp_path: Path) -> None:
    everything = run_cli("--list", cwd=tmp_path)
    assert everything.returncode == 0, everything.stderr
    ids = listed(everything.stdout)
    assert len(ids) == len(set(ids))
    assert set(ids) >= GLOBAL_IDS
    assert {"profile.echo", "profile.call-master", "resp.unknown-action", "hb.cadence"} <= set(ids)
    row = next(line for line in everything.stdout.splitlines() if line.startswith("profile.echo "))
    assert row.split()[1:4] == ["profile", "MUST", "RESP-1"]

    only = run_cli("--list", "--only", "profile.*", "--only", "hb.*", cwd=tmp_path)
    assert set(listed(only.stdout)) == {i for i in ids if i.startswith(("profile.", "hb."))}
    skip = run_cli("--list", "--skip", "profile.*", "--skip", "*.no-*", cwd=tmp_path)
    assert set(listed(skip.stdout)) == {
        i for i in ids if not i.startswith("profile.") and ".no-" not in i
    }
    both = run_cli("--list", "--only", "profile.*", "--skip", "profile.call-*", cwd=tmp_path)
    assert "profile.call-master" not in listed(both.stdout)
    assert "profile.echo" in listed(both.stdout)

    write_transcript(tmp_path / "p.ndjson", *PASSING)
    mine = run_cli("--list", "--no-builtin", "--transcripts", str(tmp_path), cwd=tmp_path)
    assert set(listed(mine.stdout)) == {"mine.passes"} | GLOBAL_IDS


def test_a_passing_run_with_reports(tmp_path: Path) -> None:
    report, xml = tmp_path / "report.json", tmp_path / "junit.xml"
    run = run_cli(
        "--only", "resp.*", "--json", str(report), "--junit", str(xml), *REFERENCE, cwd=tmp_path
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "result: PASSED" in run.stdout
    data = json.loads(report.read_text(encoding="utf-8"))
    Draft202012Validator(json.loads(REPORT_SCHEMA.read_text(encoding="utf-8"))).validate(data)
    checks = {c["check"]: c["verdict"] for c in data["checks"]}
    assert checks == {
        "resp.unknown-action": "pass",
        "resp.unknown-action-text": "pass",
        "resp.error-text": "pass",
        "resp.error-payload": "pass",
        "resp.no-stack-by-default": "pass",
    }
    assert data["worker"] == [PYTHON, str(WORKER)]
    # The worker answers INIT with a READY that names the mode it adopted (READY-2).
    assert (data["mode"], data["modeSource"], data["profile"]) == ("sequential", "READY", True)
    assert data["summary"]["levels"] == {
        "core": "reached",
        "profile": "not-run",
        "cancel": "not-run",
    }
    assert data["passed"] is True
    suite = ET.fromstring(xml.read_bytes())
    assert {k: suite.attrib[k] for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "5",
        "failures": "0",
        "errors": "0",
        "skipped": "0",
    }
    assert sorted(c.attrib["name"] for c in suite.iter("testcase")) == sorted(checks)


def test_failures_exit_1_and_say_where(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    write_transcript(mine / "passes.ndjson", *PASSING)
    write_transcript(mine / "fails.ndjson", *FAILING)
    write_transcript(mine / "slow.ndjson", *SLOW)
    report = tmp_path / "r.json"
    run = run_cli(
        "--no-builtin", "--transcripts", str(mine), "--trace", "--json", str(report), *REFERENCE
    )
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    assert "=== FAIL mine.fails: wants 200" in out
    assert f"requirement RESP-1 (MUST); {mine / 'fails.ndjson'}" in out
    assert "    line 5: message does not match" in out  # the file's line, blank lines counted
    assert "    at $.status: expected 200, got 404" in out
    assert "    at $.data: expected [1], got nothing (member absent)" in out
    assert "    wire log:" in out
    assert '-> {"type":"REQUEST","id":"f1","action":"mine.nothing","data":[1]}' in out
    assert "=== TIME mine.slow" in out
    assert "the case did not finish within 300 ms" in out
    assert "result: FAILED" in out
    verdicts = {c["check"]: c["verdict"] for c in json.loads(report.read_text())["checks"]}
    assert verdicts["mine.passes"] == "pass"
    assert verdicts["mine.fails"] == "fail"
    assert verdicts["mine.slow"] == "timeout"

    # Listed as expected failures, they no longer fail the run; an unknown id is named.
    expected = tmp_path / "expected.txt"
    expected.write_text("# known\nmine.fails  # issue 1\nmine.slow\nmine.typo\n", encoding="utf-8")
    run = run_cli(
        "--no-builtin", "--transcripts", str(mine), "--expected-failures", str(expected), *REFERENCE
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "=== FAIL mine.fails (expected failure): wants 200" in run.stdout
    assert "result: PASSED" in run.stdout
    assert "no check is called 'mine.typo'" in run.stderr

    # A listed check that passes is stale, and fails the run.
    expected.write_text("mine.fails\nmine.slow\nmine.passes\n", encoding="utf-8")
    run = run_cli(
        "--no-builtin", "--transcripts", str(mine), "--expected-failures", str(expected), *REFERENCE
    )
    assert run.returncode == 1
    assert (
        "=== STALE mine.passes: listed as an expected failure, but it passes; remove it"
        in run.stdout
    )


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    no_command = run_cli("--only", "resp.*")
    assert no_command.returncode == 2
    assert "give the worker command" in no_command.stderr
    bad_option = run_cli("--frobnicate", *REFERENCE)
    assert bad_option.returncode == 2
    missing = run_cli("--expected-failures", str(tmp_path / "nope.txt"), *REFERENCE)
    assert missing.returncode == 2
    assert "--expected-failures" in missing.stderr
    assert "nope.txt" in missing.stderr
    not_a_program = run_cli("--", str(tmp_path / "no-such-worker"))
    assert not_a_program.returncode == 2
    assert "could not start the worker" in not_a_program.stderr
    assert "Traceback" not in not_a_program.stderr
