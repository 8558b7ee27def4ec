"""Loading transcripts: every mistake is named by file and line, before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peepsy.conformance._schemas import builtin_transcripts
from peepsy.conformance._suite import load_all
from peepsy.conformance._transcript import TranscriptError, load_transcript
from tests.conformance._cli import REFERENCE, run_cli, write_transcript

HEADER = '{"check": "mine.case", "requirement": ["RESP-1"], "description": "d"}'
SEND = '{"send": {"type": "REQUEST", "id": "a", "action": "x"}}'


def problem(tmp_path: Path, *lines: str) -> str:
    path = write_transcript(tmp_path / "case.ndjson", *lines)
    with pytest.raises(TranscriptError) as info:
        load_transcript(path)
    return str(info.value)


def test_a_valid_transcript_loads_with_its_file_line_numbers(tmp_path: Path) -> None:
    path = write_transcript(
        tmp_path / "case.ndjson",
        '{"check": "mine.case", "requirement": ["RESP-1", "ID-3"], "level": "profile",'
        ' "severity": "SHOULD", "mode": "concurrent", "init": false, "timeout": 3000,'
        ' "description": "d", "recorded": "by hand"}',
        "",
        SEND,
        "   ",
        '{"expect": {"id": "a"}, "within": 100}',
    )
    t = load_transcript(path)
    assert (t.check, t.requirement, t.level, t.severity) == (
        "mine.case",
        ("RESP-1", "ID-3"),
        "profile",
        "SHOULD",
    )
    assert (t.mode, t.init, t.timeout, t.source) == ("concurrent", False, 3000, str(path))
    assert t.step_lines == (3, 5)
    assert t.steps[1] == {"expect": {"id": "a"}, "within": 100}


def test_defaults(tmp_path: Path) -> None:
    t = load_transcript(write_transcript(tmp_path / "c.ndjson", HEADER, SEND))
    assert (t.level, t.severity, t.mode, t.init, t.timeout) == ("core", "MUST", "any", True, 15000)


def test_not_json_names_the_file_line(tmp_path: Path) -> None:
    text = problem(tmp_path, HEADER, "", '{"send": {"type": "REQUEST",}}')
    assert text.startswith(f"{tmp_path / 'case.ndjson'}:3: not JSON: ")


def test_empty_file(tmp_path: Path) -> None:
    assert "empty transcript" in problem(tmp_path, "", "  ")


def test_header_problems(tmp_path: Path) -> None:
    text = problem(tmp_path, '{"check": "mine.case", "description": "d"}', SEND)
    assert text == f"{tmp_path / 'case.ndjson'}:1: header $: 'requirement' is a required property"
    text = problem(
        tmp_path, '{"check": "Mine Case", "requirement": ["RESP-1"], "description": "d"}'
    )
    assert ":1: header $.check: 'Mine Case' does not match" in text
    text = problem(tmp_path, HEADER.replace('"d"}', '"d", "mode": "parallel"}'))
    assert ":1: header $.mode: 'parallel' is not one of" in text
    text = problem(tmp_path, HEADER.replace('"d"}', '"d", "extra": 1}'))
    assert ":1: header $: Additional properties are not allowed ('extra' was unexpected)" in text


def test_step_problems_name_the_operation(tmp_path: Path) -> None:
    text = problem(tmp_path, HEADER, SEND, '{"expekt": {"id": "a"}}')
    assert text.startswith(f"{tmp_path / 'case.ndjson'}:3: a step needs one of send, send_raw,")
    assert text.endswith("this one has expekt")
    text = problem(tmp_path, HEADER, '{"send": {}, "expect": {}}')
    assert ":2: a step has one operation; this one has send, expect" in text
    text = problem(tmp_path, HEADER, '{"expect": {"id": "a"}, "within": "soon"}')
    assert ":2: expect $.within: 'soon' is not of type 'number'" in text
    text = problem(tmp_path, HEADER, '{"send_hex": "abc"}')
    assert ":2: send_hex $.send_hex: 'abc' does not match" in text
    text = problem(tmp_path, HEADER, '{"expect_heartbeats": {"count": 0, "within": 10}}')
    assert ":2: expect_heartbeats $.expect_heartbeats.count: 0 is less than the minimum" in text
    text = problem(tmp_path, HEADER, "[1, 2]")
    assert ":2: a step is a JSON object" in text


def test_every_problem_is_reported(tmp_path: Path) -> None:
    text = problem(tmp_path, HEADER, '{"wait": -1}', '{"nothing": 1}')
    lines = text.splitlines()
    assert len(lines) == 2
    assert ":2: wait $.wait: -1 is less than the minimum of 0" in lines[0]
    assert ":3: a step needs one of" in lines[1]


def test_unknown_matchers_are_found_before_running(tmp_path: Path) -> None:
    text = problem(tmp_path, HEADER, SEND, '{"expect": {"status": {"$rnage": [1, 2]}}}')
    assert text.startswith(f"{tmp_path / 'case.ndjson'}:3: $expect.status: unknown matcher $rnage")
    text = problem(tmp_path, HEADER, '{"expect_unordered": [{}, {"id": {"$type": "str"}}]}')
    assert ":2: $expect_unordered[1].id: $type takes" in text
    text = problem(tmp_path, HEADER, '{"expect_exit": {"code": {"$regex": "("}}}')
    assert ":2: $expect_exit.code: $regex is not a valid regular expression" in text


def test_ref_before_capture(tmp_path: Path) -> None:
    text = problem(
        tmp_path, HEADER, '{"send": {"type": "RESPONSE", "id": {"$ref": "req"}, "status": 200}}'
    )
    assert text == (
        f"{tmp_path / 'case.ndjson'}:2: $send.id: $ref 'req' names no capture made before it"
    )
    text = problem(tmp_path, HEADER, '{"expect": {"id": {"$ref": "later"}}}', SEND)
    assert ":2: $expect.id: $ref 'later' names no capture made before it" in text


def test_refs_after_captures_are_fine(tmp_path: Path) -> None:
    path = write_transcript(
        tmp_path / "ok.ndjson",
        HEADER,
        '{"answer": {"request": {"id": {"$capture": "r"}}, "response": {"id": {"$ref": "r"}}}}',
        '{"expect": {"id": {"$capture": "s"}, "data": {"$ref": "s"}}}',
        '{"send": {"type": "RESPONSE", "id": {"$ref": "s"}, "status": 200}}',
        '{"send": {"type": "X", "data": {"$literal": {"$ref": "not a capture"}}}}',
    )
    assert len(load_transcript(path).steps) == 4


def test_duplicate_check_ids_name_both_files(tmp_path: Path) -> None:
    write_transcript(tmp_path / "a.ndjson", HEADER, SEND)
    (tmp_path / "sub").mkdir()
    write_transcript(tmp_path / "sub" / "b.ndjson", HEADER, SEND)
    with pytest.raises(
        TranscriptError, match=r"b\.ndjson: check id 'mine\.case' is also in .*a\.ndjson"
    ):
        load_all([tmp_path])


def test_a_user_id_may_not_take_a_builtin_one(tmp_path: Path) -> None:
    write_transcript(tmp_path / "a.ndjson", HEADER.replace("mine.case", "profile.echo"), SEND)
    with pytest.raises(TranscriptError, match=r"check id 'profile\.echo' is also in"):
        load_all([builtin_transcripts(), tmp_path])


def test_files_and_missing_paths(tmp_path: Path) -> None:
    path = write_transcript(tmp_path / "one.ndjson", HEADER, SEND)
    write_transcript(tmp_path / "ignored.raw.jsonl", "not a transcript")
    assert [t.check for t in load_all([path])] == ["mine.case"]
    assert [t.check for t in load_all([tmp_path])] == ["mine.case"]
    with pytest.raises(TranscriptError, match="nope: no such file or directory"):
        load_all([tmp_path / "nope"])


#: The built-in profile transcripts recorded by tools/record_transcripts.py, then edited.
RECORDED_PROFILE = {
    f"profile.{name}"
    for name in (
        "echo",
        "echo-legacy",
        "fail-500",
        "sequential-one-at-a-time",
        "sequential-priority",
        "concurrent-overlap",
        "queue-expiry-408",
        "shutdown-finishes-work",
        "call-master",
        "call-master-failure",
    )
}
#: The ones written by hand: the reference master never reuses an id, and recordings
#: drop heartbeats.
WRITTEN_PROFILE = {
    "profile.duplicate-id-ignored",
    "profile.shutdown-answers-queued-503",
    "hb.while-busy",
    # issue 8: what a master does not do (reuse ids, answer invalidly or late, cut its
    # input), and the concurrent queue, which the reference master does not cap at 1
    "shut.refuse-after-shutdown",
    "req.order-shutdown-before-404",
    "req.order-duplicate-first",
    "req.child-unified-shape",
    "stream.eof-exits-while-busy",
    "shut.deadline-exit",
    "profile.call-master-invalid-answer",
    "profile.call-master-timeout",
    "profile.queue-expiry-default-5000",
    "profile.queue-no-early-expiry",
    "profile.concurrent-queue-expiry-408",
    "profile.concurrent-priority",
    "profile.concurrent-shutdown-503",
    "frame.respects-peer-limit",
    "profile.echo-lone-surrogate",
}


def test_every_builtin_transcript_is_valid() -> None:
    transcripts = load_all([builtin_transcripts()])
    ids = [t.check for t in transcripts]
    assert len(ids) == len(set(ids))
    profile = sorted(t.check for t in transcripts if t.level == "profile")
    assert profile == sorted(RECORDED_PROFILE | WRITTEN_PROFILE)
    for t in transcripts:
        if t.level == "profile":
            head = json.loads(Path(t.source).read_text(encoding="utf-8").split("\n", 1)[0])
            if t.check in WRITTEN_PROFILE:
                assert head["recorded"].startswith("written by hand"), t.check
                continue
            assert "tools/record_transcripts.py" in head["recorded"], t.check
            assert "edited by hand" in head["recorded"], t.check


def test_the_cli_reports_an_invalid_transcript_and_exits_2(tmp_path: Path) -> None:
    write_transcript(tmp_path / "bad.ndjson", HEADER, SEND, '{"expect": {"s": {"$nope": 1}}}')
    result = run_cli("--transcripts", str(tmp_path), *REFERENCE)
    assert result.returncode == 2
    assert f"{tmp_path / 'bad.ndjson'}:3: $expect.s: unknown matcher $nope" in result.stderr
    assert result.stdout == ""
    result = run_cli("--list", "--transcripts", str(tmp_path / "missing"))
    assert result.returncode == 2
    assert "missing: no such file or directory" in result.stderr
