"""Every matcher, captures, and the paths that mismatches are reported at."""

from __future__ import annotations

from typing import Any

import pytest

from peepsy.conformance._matchers import (
    MatchContext,
    Mismatch,
    match,
    pattern_names,
    resolve,
    template_refs,
)
from peepsy.conformance._schemas import schema_errors


def ok(expected: Any, actual: Any, ctx: MatchContext | None = None) -> bool:
    return not match(expected, actual, ctx or MatchContext())


def paths(expected: Any, actual: Any) -> list[str]:
    return [m.path for m in match(expected, actual, MatchContext())]


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        (1, 1, True),
        (1, 1.0, True),
        (1, 2, False),
        (True, 1, False),
        (1, True, False),
        (False, 0, False),
        (None, None, True),
        (None, 0, False),
        ("a", "a", True),
        ("a", "b", False),
        ("1", 1, False),
        ([1, 2], [1, 2], True),
        ([1, 2], [2, 1], False),
        ([1, 2], [1, 2, 3], False),
        ([1], {"0": 1}, False),
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({"a": 1}, {"b": 2}, False),
        ({"a": 1}, [1], False),
        ({}, {"anything": 1}, True),
    ],
)
def test_plain_values(expected: Any, actual: Any, matches: bool) -> None:
    assert ok(expected, actual) is matches


def test_exact_objects_allow_no_other_member() -> None:
    assert ok({"$exact": True, "a": 1}, {"a": 1})
    problems = match({"$exact": True, "a": 1}, {"a": 1, "b": 2, "c": 3}, MatchContext())
    assert [(p.path, p.expected) for p in problems] == [
        ("$.b", "no such member"),
        ("$.c", "no such member"),
    ]
    assert ok({"$exact": True}, {})
    assert not ok({"$exact": True}, {"a": 1})
    assert ok({"nested": {"$exact": True, "x": [1]}}, {"nested": {"x": [1]}, "other": 1})
    assert not ok({"nested": {"$exact": True, "x": [1]}}, {"nested": {"x": [1], "y": 0}})


def test_any_and_absent() -> None:
    assert ok({"a": {"$any": True}}, {"a": None})
    assert not ok({"a": {"$any": True}}, {})
    assert ok({"a": {"$absent": True}}, {})
    assert not ok({"a": {"$absent": True}}, {"a": None})
    [problem] = match({"a": {"$absent": True}}, {"a": 5}, MatchContext())
    assert problem == Mismatch("$.a", "no member", "5")


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("null", None, 0),
        ("boolean", False, 0),
        ("integer", 3, 3.5),
        ("integer", -1, True),
        ("number", 3.5, "3.5"),
        ("number", 3, False),
        ("string", "", None),
        ("array", [], {}),
        ("object", {}, []),
    ],
)
def test_type(kind: str, good: Any, bad: Any) -> None:
    assert ok({"$type": kind}, good)
    assert not ok({"$type": kind}, bad)


def test_type_list() -> None:
    assert ok({"$type": ["string", "null"]}, None)
    assert ok({"$type": ["string", "null"]}, "x")
    [problem] = match({"$type": ["string", "null"]}, 1, MatchContext())
    assert problem.expected == "a JSON string or null"


def test_regex_searches_strings_only() -> None:
    assert ok({"$regex": "^m[0-9]+$"}, "m12")
    assert ok({"$regex": "order"}, "no order id")
    assert not ok({"$regex": "^m[0-9]+$"}, "x12")
    assert not ok({"$regex": "1"}, 1)


def test_range() -> None:
    assert ok({"$range": [400, 599]}, 400)
    assert ok({"$range": [400, 599]}, 599)
    assert not ok({"$range": [400, 599]}, 600)
    assert not ok({"$range": [400, 599]}, "450")
    assert not ok({"$range": [0, 1]}, True)
    assert ok({"$range": [None, 0]}, -1e9)
    assert ok({"$range": [1, None]}, 10**20)
    assert not ok({"$range": [None, None]}, float("nan"))


def test_schema_uses_the_protocol_schemas() -> None:
    ctx = MatchContext(schema_check=schema_errors)
    heartbeat = {"type": "HEARTBEAT", "pid": 1, "timestamp": 2}
    assert ok({"$schema": "heartbeat.json"}, heartbeat, ctx)
    problems = match({"$schema": "heartbeat.json"}, {"type": "HEARTBEAT", "pid": -1}, ctx)
    assert problems
    assert all(p.expected == "valid against heartbeat.json" for p in problems)


def test_one_of() -> None:
    either = {"$oneOf": [{"$absent": True}, {"name": {"$type": "string"}}]}
    assert ok({"errorPayload": either}, {})
    assert ok({"errorPayload": either}, {"errorPayload": {"name": "E"}})
    assert not ok({"errorPayload": either}, {"errorPayload": {"name": 1}})
    assert ok({"$oneOf": [1, "one"]}, "one")
    [problem] = match({"$oneOf": [1, "one"]}, 2, MatchContext())
    assert problem.expected == 'one of 1, "one"'


def test_literal_is_plain_json() -> None:
    looks_like_a_matcher = {"$type": "integer"}
    assert ok({"$literal": looks_like_a_matcher}, {"$type": "integer"})
    assert not ok({"$literal": looks_like_a_matcher}, 5)
    # exact, deep: no member more, no member less
    assert not ok({"$literal": {"a": {"b": 1}}}, {"a": {"b": 1, "c": 2}})
    assert not ok({"$literal": {"a": 1}}, {})
    assert not ok({"$literal": [1, 2]}, [1, 2, 3])
    assert not ok({"$literal": [True]}, [1])
    assert ok({"$literal": [1.0]}, [1])


def test_capture_then_ref() -> None:
    ctx = MatchContext()
    assert ok({"id": {"$capture": "req", "match": {"$type": "string"}}}, {"id": "c7"}, ctx)
    assert ctx.captures == {"req": "c7"}
    assert ok({"id": {"$ref": "req"}}, {"id": "c7"}, ctx)
    [problem] = match({"id": {"$ref": "req"}}, {"id": "c8"}, ctx)
    assert problem == Mismatch("$.id", "\"c7\" (captured as 'req')", '"c8"')


def test_capture_and_ref_in_one_pattern() -> None:
    ctx = MatchContext()
    pattern = {"id": {"$capture": "x"}, "echo": {"$ref": "x"}}
    assert ok(pattern, {"id": "a", "echo": "a"}, ctx)
    assert not ok(pattern, {"id": "a", "echo": "b"}, MatchContext())


def test_ref_before_any_capture_is_a_mismatch() -> None:
    [problem] = match({"id": {"$ref": "never"}}, {"id": "c1"}, MatchContext())
    assert problem == Mismatch("$.id", "the value captured as 'never'", "no such capture yet")


def test_a_failed_match_keeps_no_capture() -> None:
    ctx = MatchContext()
    pattern = {"id": {"$capture": "req"}, "status": 200}
    assert not ok(pattern, {"id": "c1", "status": 500}, ctx)
    assert ctx.captures == {}
    assert not ok({"id": {"$capture": "req", "match": {"$type": "integer"}}}, {"id": "c1"}, ctx)
    assert ctx.captures == {}


def test_mismatch_paths_are_json_paths() -> None:
    expected = {"data": {"items": [{"name": "a"}, {"name": "b", "tags": ["x", "y"]}]}}
    actual = {"data": {"items": [{"name": "a"}, {"name": "B", "tags": ["x", "z"]}]}}
    assert paths(expected, actual) == ["$.data.items[1].name", "$.data.items[1].tags[1]"]
    assert paths({"a": {"b": 1}}, {"a": {}}) == ["$.a.b"]
    assert paths({"a": [1, 2]}, {"a": [1]}) == ["$.a"]
    [problem] = match({"data": {"n": 1}}, {"data": {"n": 2}}, MatchContext())
    assert str(problem) == "$.data.n: expected 1, got 2"


def test_a_missing_member_says_so() -> None:
    [problem] = match({"status": 200}, {}, MatchContext())
    assert problem == Mismatch("$.status", "200", "nothing (member absent)")


def test_unknown_matcher_raises_at_match_time() -> None:
    with pytest.raises(ValueError, match=r"unknown matcher \['\$tpye'\] at \$.a"):
        match({"a": {"$tpye": "string"}}, {"a": "x"}, MatchContext())


def test_resolve_fills_refs_and_unwraps_literals() -> None:
    ctx = MatchContext(captures={"req": "c1"})
    template = {
        "type": "RESPONSE",
        "id": {"$ref": "req"},
        "data": {"$literal": {"$ref": "not-a-ref"}},
        "list": [{"$ref": "req"}],
    }
    assert resolve(template, ctx) == {
        "type": "RESPONSE",
        "id": "c1",
        "data": {"$ref": "not-a-ref"},
        "list": ["c1"],
    }
    with pytest.raises(KeyError, match="nothing captured as 'nope'"):
        resolve({"id": {"$ref": "nope"}}, ctx)


def test_static_checks_of_patterns() -> None:
    captures, refs, problems = pattern_names(
        {
            "id": {"$capture": "a", "match": {"$type": "string"}},
            "x": {"$ref": "b"},
            "y": [{"$oneOf": [{"$ref": "c"}, {"$capture": "d"}]}],
        }
    )
    assert captures == {"a", "d"}
    assert refs == [("b", "$.x"), ("c", "$.y[0].$oneOf[0]")]
    assert problems == []
    cases = {
        "unknown matcher $tpye": {"$tpye": "string"},
        "$type takes": {"$type": "integr"},
        "$regex is not a valid": {"$regex": "("},
        "$range takes": {"$range": [1]},
        "$oneOf takes": {"$oneOf": []},
        "$capture takes a name": {"$capture": 3},
        "one matcher per object": {"$any": True, "$absent": True},
        "$ref takes no match": {"$ref": "x", "match": 1},
    }
    for words, pattern in cases.items():
        _, _, found = pattern_names({"a": pattern})
        assert len(found) == 1, (pattern, found)
        assert found[0].startswith("$.a: ")
        assert words in found[0], found


def test_template_refs() -> None:
    template = {"id": {"$ref": "r"}, "data": {"$literal": {"$ref": "no"}}, "l": [{"$ref": "s"}]}
    assert template_refs(template) == [("r", "$.id"), ("s", "$.l[0]")]
