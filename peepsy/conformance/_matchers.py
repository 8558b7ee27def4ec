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
    {"$oneOf": [EXPECTED, ...]}          any of the alternatives ({"$absent": true} among
                                         them makes the member optional)
    {"$capture": "req", "match": M}      matches M (default: anything) and remembers the value
    {"$ref": "req"}                      equals a value captured earlier
    {"$literal": VALUE}                  equals VALUE, taken as plain JSON: for data that
                                         itself looks like a matcher ({"$type": 1})

Objects match when every expected member matches (other members are allowed unless the
expected object has ``"$exact": true``); arrays match element by element, and must be
as long as the expected one. Scalars compare as JSON values: ``1`` equals ``1.0``, but
``true`` is not ``1``.

In a message to send, ``{"$ref": name}`` is replaced by the captured value and
``{"$literal": VALUE}`` by VALUE (see :func:`resolve`).
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
    """One difference between an expected and an actual message: where (a JSON path such as
    ``$.data.id``), what the transcript wanted, and what came."""

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
    """An object that names a matcher, or whose keys all start with ``$`` (an unknown
    matcher, reported as such). ``{"$exact": true}`` alone is not one: it is an object
    pattern, "an empty object and nothing more"."""
    if not isinstance(value, dict) or not value or set(value) == {"$exact"}:
        return False
    return any(k in MATCHERS for k in value) or all(k.startswith("$") for k in value)


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
    if "$oneOf" in spec:
        for alternative in spec["$oneOf"]:
            if not match(alternative, actual, ctx, path):
                return []
        return [Mismatch(path, _describe(spec), show(actual))]
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
    if "$literal" in spec:
        want = spec["$literal"]
        if _equal_json(want, actual):
            return []
        return [Mismatch(path, show(want), show(actual))]
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


def _equal_json(a: Any, b: Any) -> bool:
    """Deep JSON equality, with the scalar rules of :func:`_same`."""
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(_equal_json(v, b[k]) for k, v in a.items())
        )
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(_equal_json(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(b, dict | list):
        return False
    return _same(a, b)


def _describe(spec: dict[str, Any]) -> str:
    if "$oneOf" in spec:
        return "one of " + ", ".join(show(a) for a in spec["$oneOf"])
    return show(spec)


def resolve(template: Any, ctx: MatchContext) -> Any:
    """A message to send, with ``{"$ref": name}`` replaced by captured values and
    ``{"$literal": VALUE}`` by VALUE, as it is."""
    if isinstance(template, dict):
        if set(template) == {"$literal"}:
            return template["$literal"]
        if set(template) == {"$ref"}:
            name = template["$ref"]
            if name not in ctx.captures:
                raise KeyError(f"nothing captured as {name!r} yet")
            return ctx.captures[name]
        return {k: resolve(v, ctx) for k, v in template.items()}
    if isinstance(template, list):
        return [resolve(v, ctx) for v in template]
    return template


#: Every matcher there is.
MATCHERS = frozenset(
    (
        "$any",
        "$absent",
        "$type",
        "$regex",
        "$range",
        "$schema",
        "$oneOf",
        "$capture",
        "$ref",
        "$literal",
    )
)
_TYPE_NAMES = frozenset(_TYPES)


def pattern_names(
    pattern: Any, path: str = "$"
) -> tuple[set[str], list[tuple[str, str]], list[str]]:
    """What an expected value captures, the ``$ref``s it uses (name, path), and what is
    wrong with its matchers: for checking a transcript before it runs."""
    captures: set[str] = set()
    refs: list[tuple[str, str]] = []
    problems: list[str] = []

    def walk(value: Any, at: str) -> None:
        if is_matcher(value):
            problems.extend(_matcher_problems(value, at))
            if "$capture" in value:
                if "match" in value:
                    walk(value["match"], at)
                if isinstance(value["$capture"], str):
                    captures.add(value["$capture"])
            elif "$ref" in value and isinstance(value["$ref"], str):
                refs.append((value["$ref"], at))
            elif "$oneOf" in value and isinstance(value["$oneOf"], list):
                for i, alternative in enumerate(value["$oneOf"]):
                    walk(alternative, f"{at}.$oneOf[{i}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                if key != "$exact":
                    walk(item, f"{at}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{at}[{i}]")

    walk(pattern, path)
    return captures, refs, problems


def _matcher_problems(spec: dict[str, Any], at: str) -> list[str]:
    keys = set(spec)
    known = keys & MATCHERS
    if not known:
        names = ", ".join(sorted(MATCHERS))
        return [f"{at}: unknown matcher {', '.join(sorted(keys))} (known: {names})"]
    if len(known) > 1:
        return [f"{at}: one matcher per object, not {', '.join(sorted(known))}"]
    (name,) = known
    extra = keys - {name} - ({"match"} if name == "$capture" else set())
    if extra:
        return [f"{at}: {name} takes no {', '.join(sorted(extra))}"]
    arg = spec[name]
    if name == "$type":
        kinds = arg if isinstance(arg, list) else [arg]
        bad = [n for n in kinds if not isinstance(n, str) or n not in _TYPE_NAMES]
        if bad or not kinds:
            return [f"{at}: $type takes {', '.join(sorted(_TYPE_NAMES))} or a list of them"]
    elif name == "$regex":
        try:
            re.compile(arg)
        except (re.error, TypeError) as exc:
            return [f"{at}: $regex is not a valid regular expression: {exc}"]
    elif name == "$range":
        if (
            not isinstance(arg, list)
            or len(arg) != 2
            or not all(x is None or _TYPES["number"](x) for x in arg)
        ):
            return [f"{at}: $range takes [LOW, HIGH], numbers or null"]
    elif name == "$oneOf":
        if not isinstance(arg, list) or not arg:
            return [f"{at}: $oneOf takes a non-empty list of alternatives"]
    elif name in ("$capture", "$ref", "$schema") and (not isinstance(arg, str) or not arg):
        return [f"{at}: {name} takes a name (a non-empty string)"]
    return []


def template_refs(template: Any, path: str = "$") -> list[tuple[str, str]]:
    """The ``$ref`` names a message to send uses, with their paths."""
    out: list[tuple[str, str]] = []
    if isinstance(template, dict):
        if set(template) == {"$literal"}:
            return out
        if set(template) == {"$ref"}:
            return [(str(template["$ref"]), path)]
        for key, value in template.items():
            out += template_refs(value, f"{path}.{key}")
    elif isinstance(template, list):
        for i, value in enumerate(template):
            out += template_refs(value, f"{path}[{i}]")
    return out
