"""Matching a received message against an expected one, with matchers and captures.

An expected value is plain JSON, where an object whose keys all start with ``$`` is a
matcher::

    {"$any": true}                       anything (the member must still be present)
    {"$absent": true}                    the member must be absent
    {"$type": "integer"}                 a JSON type (null boolean integer number string
                                         array object), or a list of them
    {"$regex": "^m[0-9]+$"}              a string matching the regex (search semantics)
    {"$range": [1, 300000]}              a number within the bounds (inclusive; null: open)
    {"$schema": "heartbeat.json"}        valid against a schema of schema/
    {"$oneOf": [EXPECTED, ...]}          any of the alternatives
    {"$capture": "req", "match": M}      matches M (default: anything) and remembers the value
    {"$ref": "req"}                      equals a value captured earlier

Objects match when every expected member matches (other members are allowed unless the
expected object has ``"$exact": true``); arrays match element by element.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SchemaCheck = Callable[[str, Any], list[str]]


@dataclass(frozen=True, slots=True)
class Mismatch:
    path: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.path}: expected {self.expected}, got {self.actual}"


@dataclass(slots=True)
class MatchContext:
    """Captured values, shared by the steps of one transcript run."""

    captures: dict[str, Any] = field(default_factory=dict)
    schema_check: SchemaCheck | None = None


_TYPES: dict[str, Callable[[Any], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}

_MISSING = object()


def show(value: Any) -> str:
    if value is _MISSING:
        return "nothing (member absent)"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def is_matcher(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(k.startswith("$") for k in value)


def match(expected: Any, actual: Any, ctx: MatchContext, path: str = "$") -> list[Mismatch]:
    """Every way ``actual`` fails ``expected``; empty when it matches. Captures made by a
    failed match are not kept."""
    saved = dict(ctx.captures)
    problems = _match(expected, actual, ctx, path)
    if problems:
        ctx.captures.clear()
        ctx.captures.update(saved)
    return problems


def _match(expected: Any, actual: Any, ctx: MatchContext, path: str) -> list[Mismatch]:
    if is_matcher(expected):
        return _matcher(expected, actual, ctx, path)
    if actual is _MISSING:
        return [Mismatch(path, show(expected), show(actual))]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [Mismatch(path, "an object", show(actual))]
        problems: list[Mismatch] = []
        exact = expected.get("$exact") is True
        for key, want in expected.items():
            if key == "$exact":
                continue
            problems += _match(want, actual.get(key, _MISSING), ctx, f"{path}.{key}")
        if exact:
            extra = sorted(set(actual) - set(expected))
            problems += [Mismatch(f"{path}.{k}", "no such member", show(actual[k])) for k in extra]
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [Mismatch(path, "an array", show(actual))]
        if len(expected) != len(actual):
            return [Mismatch(path, f"an array of {len(expected)}", f"{len(actual)} items")]
        problems = []
        for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
            problems += _match(want, got, ctx, f"{path}[{i}]")
        return problems
    if _same(expected, actual):
        return []
    return [Mismatch(path, show(expected), show(actual))]


def _same(a: Any, b: Any) -> bool:
    # JSON equality: 1 == 1.0 is fine, but true is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def _matcher(spec: dict[str, Any], actual: Any, ctx: MatchContext, path: str) -> list[Mismatch]:
    if "$absent" in spec:
        return [] if actual is _MISSING else [Mismatch(path, "no member", show(actual))]
    if actual is _MISSING:
        return [Mismatch(path, _describe(spec), show(actual))]
    if "$any" in spec:
        return []
    if "$type" in spec:
        names = spec["$type"] if isinstance(spec["$type"], list) else [spec["$type"]]
        if any(_TYPES[n](actual) for n in names):
            return []
        return [Mismatch(path, f"a JSON {' or '.join(names)}", show(actual))]
    if "$regex" in spec:
        if isinstance(actual, str) and re.search(spec["$regex"], actual):
            return []
        return [Mismatch(path, f"a string matching /{spec['$regex']}/", show(actual))]
    if "$range" in spec:
        low, high = spec["$range"]
        ok = _TYPES["number"](actual) and not (isinstance(actual, float) and math.isnan(actual))
        if ok and (low is None or actual >= low) and (high is None or actual <= high):
            return []
        return [Mismatch(path, f"a number in [{low}, {high}]", show(actual))]
    if "$schema" in spec:
        if ctx.schema_check is None:
            return []
        errors = ctx.schema_check(spec["$schema"], actual)
        return [Mismatch(path, f"valid against {spec['$schema']}", e) for e in errors]
    if "$oneOf" in spec:
        for alternative in spec["$oneOf"]:
            if not match(alternative, actual, ctx, path):
                return []
        return [Mismatch(path, _describe(spec), show(actual))]
    if "$capture" in spec:
        problems = _match(spec.get("match", {"$any": True}), actual, ctx, path)
        if not problems:
            ctx.captures[spec["$capture"]] = actual
        return problems
    if "$ref" in spec:
        name = spec["$ref"]
        if name not in ctx.captures:
            return [Mismatch(path, f"the value captured as {name!r}", "no such capture yet")]
        want = ctx.captures[name]
        return (
            []
            if _same(want, actual)
            else [Mismatch(path, f"{show(want)} (captured as {name!r})", show(actual))]
        )
    raise ValueError(f"unknown matcher {sorted(spec)} at {path}")


def _describe(spec: dict[str, Any]) -> str:
    if "$oneOf" in spec:
        return "one of " + ", ".join(show(a) for a in spec["$oneOf"])
    return show(spec)


def resolve(template: Any, ctx: MatchContext) -> Any:
    """A message to send, with ``{"$ref": name}`` replaced by captured values."""
    if isinstance(template, dict):
        if set(template) == {"$ref"}:
            name = template["$ref"]
            if name not in ctx.captures:
                raise KeyError(f"nothing captured as {name!r} yet")
            return ctx.captures[name]
        return {k: resolve(v, ctx) for k, v in template.items()}
    if isinstance(template, list):
        return [resolve(v, ctx) for v in template]
    return template
