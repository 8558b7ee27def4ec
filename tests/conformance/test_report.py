"""The reports: JSON against conformance/report.schema.json, JUnit counts, expected failures."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from jsonschema import Draft202012Validator

from peepsy.conformance._cli_args import write_reports
from peepsy.conformance._matchers import Mismatch
from peepsy.conformance._report import (
    Expectations,
    exit_code,
    load_expectations,
    summary,
    to_json,
    to_junit,
)
from peepsy.conformance._suite import SuiteResult
from peepsy.conformance._transcript import Outcome, Verdict
from tests.conformance._cli import REPORT_SCHEMA

SCHEMA = json.loads(REPORT_SCHEMA.read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)


def outcome(check: str, verdict: Verdict, level: str = "core", **kw: Any) -> Outcome:
    return Outcome(
        check=check,
        requirement=("RESP-1",),
        level=level,
        severity="SHOULD" if verdict == "warn" else "MUST",
        description=f"{check} does its thing",
        verdict=verdict,
        duration_ms=kw.pop("duration_ms", 12.5),
        source="/x/case.ndjson",
        **kw,
    )


def result(*outcomes: Outcome) -> SuiteResult:
    return SuiteResult(
        outcomes=list(outcomes), mode="sequential", mode_source="READY", worker=["./w", "-v"]
    )


MIXED = result(
    outcome("a.pass", "pass"),
    outcome(
        "a.fail",
        "fail",
        message="line 3: message does not match",
        expected={"status": 200},
        actual={"status": 500, "data": "x" * 30_000},
        mismatches=[Mismatch("$.status", "200", "500")],
        trace=["    1.0 ms -> {...}", "    2.0 ms <- {...}"],
        stderr="Traceback...",
    ),
    outcome("a.warn", "warn", message="no heartbeat"),
    outcome("a.skip", "skip", level="profile", message="for concurrent workers"),
    outcome("a.timeout", "timeout", message="the case did not finish"),
    outcome("a.error", "error", message="could not start the worker"),
    outcome("p.pass", "pass", level="profile"),
)
NONE = Expectations(frozenset())


def test_the_schema_is_valid_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_json_report_validates_and_sums_up() -> None:
    report = to_json(MIXED, NONE)
    VALIDATOR.validate(report)
    assert report["passed"] is False
    assert report["summary"] == {
        "total": 7,
        "pass": 2,
        "fail": 1,
        "warn": 1,
        "skip": 1,
        "untestable": 0,
        "not-run": 0,
        "timeout": 1,
        "error": 1,
        "expectedFailures": [],
        "stale": [],
        "levels": {"core": "not-reached", "profile": "reached", "cancel": "not-run"},
        "exitCode": 1,
    }
    by_id = {c["check"]: c for c in report["checks"]}
    failed = by_id["a.fail"]
    assert failed["mismatches"] == [{"path": "$.status", "expected": "200", "actual": "500"}]
    assert failed["trace"] == ["    1.0 ms -> {...}", "    2.0 ms <- {...}"]
    assert failed["stderr"] == "Traceback..."
    assert failed["expected"] == {"status": 200}
    assert isinstance(failed["actual"], str)  # too long: cut to a string
    assert failed["actual"].endswith("characters)")
    assert "trace" not in by_id["a.pass"]
    assert "expected" not in by_id["a.skip"]


def test_json_report_of_a_passing_run() -> None:
    report = to_json(result(outcome("x.a", "pass"), outcome("x.b", "skip", level="profile")), NONE)
    VALIDATOR.validate(report)
    assert report["passed"] is True
    assert report["summary"]["levels"] == {
        "core": "reached",
        "profile": "not-run",
        "cancel": "not-run",
    }
    assert report["summary"]["exitCode"] == 0


def test_the_schema_rejects_what_it_should() -> None:
    report = to_json(MIXED, NONE)
    broken = json.loads(json.dumps(report))
    broken["checks"][0]["verdict"] = "passed"
    assert not VALIDATOR.is_valid(broken)
    broken = json.loads(json.dumps(report))
    del broken["summary"]["levels"]
    assert not VALIDATOR.is_valid(broken)


def test_expectations() -> None:
    expectations = load_expectations(
        "# known problems\n\na.fail   # issue 1\na.pass\n  a.timeout\na.skip\na.warn\n"
    )
    assert expectations.ids == {"a.fail", "a.pass", "a.timeout", "a.skip", "a.warn"}
    judged = {o.check: expectations.judge(o) for o in MIXED.outcomes}
    assert judged == {
        "a.pass": "stale",
        "a.fail": "expected",
        "a.warn": "expected",
        "a.skip": None,
        "a.timeout": "expected",
        "a.error": None,
        "p.pass": None,
    }


def test_exit_code() -> None:
    passing = result(outcome("a", "pass"), outcome("w", "warn"), outcome("s", "skip"))
    assert exit_code(passing, NONE) == 0
    for bad in ("fail", "timeout", "error"):
        assert exit_code(result(outcome("a", "pass"), outcome("b", bad)), NONE) == 1
        tolerated = Expectations(frozenset({"b"}))
        assert exit_code(result(outcome("a", "pass"), outcome("b", bad)), tolerated) == 0
    stale = Expectations(frozenset({"a"}))
    assert exit_code(passing, stale) == 1
    skipped_listed = Expectations(frozenset({"s"}))
    assert exit_code(passing, skipped_listed) == 0


def test_expected_and_stale_in_the_json_summary() -> None:
    expectations = Expectations(frozenset({"a.fail", "a.timeout", "a.error", "p.pass"}))
    report = to_json(MIXED, expectations)
    VALIDATOR.validate(report)
    assert report["summary"]["expectedFailures"] == ["a.fail", "a.timeout", "a.error"]
    assert report["summary"]["stale"] == ["p.pass"]
    assert report["summary"]["exitCode"] == 1
    by_id = {c["check"]: c["expectedFailure"] for c in report["checks"]}
    assert by_id["a.fail"] == "expected"
    assert by_id["p.pass"] == "stale"
    assert by_id["a.pass"] is None


def junit(res: SuiteResult, expectations: Expectations = NONE) -> ET.Element:
    data = to_junit(res, expectations)
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ET.fromstring(data)


def counts_of(suite: ET.Element) -> dict[str, int]:
    return {k: int(suite.attrib[k]) for k in ("tests", "failures", "errors", "skipped")}


def children(suite: ET.Element, tag: str) -> int:
    return sum(1 for case in suite.iter("testcase") for _ in case.iter(tag))


def test_junit_counts_match_its_elements() -> None:
    suite = junit(MIXED)
    assert suite.tag == "testsuite"
    # The warning is a skipped element (type warning): visible, and not a failure.
    assert counts_of(suite) == {"tests": 7, "failures": 2, "errors": 1, "skipped": 2}
    for tag, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        assert children(suite, tag) == int(suite.attrib[attr])
    assert len(suite.findall("testcase")) == 7
    cases = {c.attrib["name"]: c for c in suite.findall("testcase")}
    assert cases["a.pass"].attrib == {"classname": "peepsy.core", "name": "a.pass", "time": "0.013"}
    failure = cases["a.fail"].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == "line 3: message does not match"
    assert "$.status: expected 200, got 500" in (failure.text or "")
    warning = cases["a.warn"].find("skipped")
    assert warning is not None
    assert warning.attrib == {"type": "warning", "message": "WARN (SHOULD, RESP-1): no heartbeat"}
    warn_out = cases["a.warn"].find("system-out")
    assert warn_out is not None
    assert warn_out.text == "WARN (SHOULD, RESP-1): no heartbeat"
    # The worker's stderr goes with the failure, not with passes.
    err = cases["a.fail"].find("system-err")
    assert err is not None
    assert err.text == "Traceback..."
    assert cases["a.pass"].find("system-err") is None
    assert cases["a.skip"].attrib["classname"] == "peepsy.profile"
    assert float(suite.attrib["time"]) == pytest.approx(7 * 0.0125, abs=0.002)


def test_junit_with_expected_failures() -> None:
    expectations = Expectations(frozenset({"a.fail", "a.error", "p.pass"}))
    suite = junit(MIXED, expectations)
    # a.fail and a.error tolerated (skipped), p.pass stale (a failure), a.timeout still fails
    assert counts_of(suite) == {"tests": 7, "failures": 2, "errors": 0, "skipped": 4}
    for tag, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        assert children(suite, tag) == int(suite.attrib[attr])
    cases = {c.attrib["name"]: c for c in suite.findall("testcase")}
    skipped = cases["a.fail"].find("skipped")
    assert skipped is not None
    assert skipped.attrib["message"].startswith("expected failure (fail)")
    stale = cases["p.pass"].find("failure")
    assert stale is not None
    assert "remove it from the list" in stale.attrib["message"]


def test_terminal_summary() -> None:
    out = io.StringIO()
    expectations = Expectations(frozenset({"a.fail", "p.pass"}))
    summary(MIXED, expectations, trace=True, out=out)
    text = out.getvalue()
    assert "=== FAIL a.fail (expected failure): a.fail does its thing" in text
    assert "    at $.status: expected 200, got 500" in text
    assert "wire log:" in text
    assert "=== STALE p.pass: listed as an expected failure, but it passes; remove it" in text
    assert "levels: core: not reached (3 failing); profile: reached" in text
    assert "| fail       |     1 |" in text
    assert text.endswith("result: FAILED\n")
    out = io.StringIO()
    summary(result(outcome("s", "skip")), NONE, trace=False, out=out)
    assert "warning: no check ran" in out.getvalue()
    assert out.getvalue().endswith("result: PASSED\n")


def test_junit_holds_what_xml_cannot() -> None:
    """A lone surrogate (FRAME-9 lets JSON carry one), ESC, NUL and U+FFFE in any text
    are written as visible escapes; the report parses."""
    odd = "x\ud800y \x1b[31mred\x1b[0m \x00 \ufffe"
    suite = junit(
        result(
            outcome("a.fail", "fail", message=odd, stderr=odd, trace=[odd]),
            outcome("a.warn", "warn", message=odd),
        )
    )
    cases = {c.attrib["name"]: c for c in suite.findall("testcase")}
    failure = cases["a.fail"].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == "x\\ud800y \\x1b[31mred\\x1b[0m \\x00 \\ufffe"
    assert cases["a.fail"].findtext("system-err") == failure.attrib["message"]
    warning = cases["a.warn"].find("skipped")
    assert warning is not None
    assert warning.attrib["type"] == "warning"
    assert warning.attrib["message"].endswith("\\x00 \\ufffe")


def test_untestable_and_not_run_are_skipped_with_their_kind() -> None:
    suite = junit(
        result(
            outcome("a.nt", "untestable", message="not testable: no heartbeats"),
            outcome("a.nr", "not-run", message="not run: interrupted (SIGINT)"),
        )
    )
    kinds = {c.attrib["name"]: c.find("skipped") for c in suite.findall("testcase")}
    assert {k: (v.attrib["type"] if v is not None else None) for k, v in kinds.items()} == {
        "a.nt": "untestable",
        "a.nr": "not-run",
    }
    assert counts_of(suite) == {"tests": 2, "failures": 0, "errors": 0, "skipped": 2}


def test_terminal_summary_says_what_could_not_be_judged() -> None:
    out = io.StringIO()
    summary(
        result(outcome("hb.x", "untestable", message="not testable: no HEARTBEAT")),
        NONE,
        trace=False,
        out=out,
    )
    text = out.getvalue()
    assert "=== N/T hb.x: not testable: no HEARTBEAT" in text
    assert "warning: no check ran" in text  # nothing was judged
    assert text.endswith("result: PASSED\n")


def test_a_report_holding_lone_surrogates_is_valid_utf8(tmp_path: Path) -> None:
    """A failed echo of the data the cases send on purpose (FRAME-9) puts lone
    surrogates in the report; written raw they are no UTF-8 at all, and the run used to
    end in a traceback instead of a report."""
    path, xml = tmp_path / "r.json", tmp_path / "r.xml"
    value = {"actual": "x\ud800y", "text": "ü €"}
    assert write_reports("prog", path, lambda: value, xml, lambda: b"<x/>")
    text = path.read_bytes().decode("utf-8")
    assert "\\ud800" in text
    assert "ü €" in text
    assert json.loads(text) == value
    assert xml.read_bytes() == b"<x/>"


def test_a_report_that_cannot_be_written_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no" / "such" / "r.json"
    assert not write_reports("prog", missing, dict, None, lambda: b"")
    assert "prog: cannot write the report" in capsys.readouterr().err
