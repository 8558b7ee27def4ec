"""The oracle of ``--fuzz``: what a correct worker does with one line it reads mid-stream.

It judges the bytes actually sent, whatever made them, with the decisions' own
definitions: REQ-10's readable id, jsonschema on the REQUEST's shape (REQ-3), then
REQ-9's order. Lines whose verdict a correct worker could get either way are marked
``skip`` and are never sent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from peepsy.conformance._schemas import _jsonschema

#: Tags of examples (z) and sentinels (s). A readable id that looks like one but is not
#: this example's own could be attributed to the wrong line: such examples are skipped.
TAG_RE = re.compile(r"^[sz]\d{6}\.")
#: Every valid REQUEST the fuzzer sends asks for an action under this prefix, which no
#: worker serves: a correct worker answers it 404 (RESP-4), never runs anything.
ACTION_PREFIX = "fuzz."
MAX_LINE = 1 << 20  # FRAME-6: every receiver takes lines of 1 MiB, the newline included
MAX_DEPTH = 64  # FRAME-3: nesting a receiver MUST accept; deeper it MAY reject

#: Rules issue 8 introduced or changed that a run may waive (--fuzz-waive).
WAIVABLE = ("FRAME-9", "MSG-8", "REQ-10")
KNOWN_TYPES = ("INIT", "READY", "REQUEST", "RESPONSE", "HEARTBEAT", "SHUTDOWN", "CANCEL")


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a correct worker does with one line. ``status`` None: no answer at all."""

    rule: str
    status: int | None = None
    id: str | None = None
    #: The line repeats a member name: a receiver MAY reject it (FRAME-3), so silence
    #: is correct too, and so is 400 for a REQUEST whose id it reads (REQ-7); what it
    #: does otherwise is what keeping the last value gives.
    repeats: bool = False
    #: Why the expectation is ambiguous (the example is skipped), or None.
    skip: str | None = None
    #: Rules issue 8 introduced or changed that this verdict rests on (a run can waive
    #: them for a worker that is known not to follow them yet).
    relies_on: frozenset[str] = frozenset()


class _Duplicates:
    """An ``object_pairs_hook`` that keeps the last value (as the reference does) and
    notes the names that came twice in an object, at any depth."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                self.names.add(key)
            seen.add(key)
        return dict(pairs)


class _Ambiguous(ValueError):
    """JSON whose meaning differs between correct parsers: skip it."""


def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def _exact_float(text: str) -> float:
    """A double, unless rounding to one changes whether the number is an integer (a
    receiver may parse exactly or to a double; MSG-8 turns on integrality)."""
    value = float(text)
    try:
        exact = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the JSON grammar admitted it
        raise _Ambiguous(text) from None
    if (exact == exact.to_integral_value()) != value.is_integer():
        raise _Ambiguous(f"{text} is integral only after rounding to a double")
    return value


def parse_line(body: bytes) -> tuple[Any, set[str]]:
    """The JSON value of a line (without its newline) and the member names it repeats.
    Raises ValueError for a line that is not one UTF-8 JSON text (FRAME-1, FRAME-3,
    FRAME-7), :class:`_Ambiguous` for one correct parsers may read differently."""
    text = body.decode("utf-8")  # strict: invalid UTF-8 is not JSON (FRAME-3)
    if text.startswith("\ufeff"):
        raise ValueError("a byte-order mark that does not open the stream (FRAME-7)")
    hook = _Duplicates()
    try:
        value = json.loads(
            text, object_pairs_hook=hook, parse_constant=_no_constant, parse_float=_exact_float
        )
    except RecursionError:
        raise _Ambiguous("nested too deep for this parser") from None
    except (_Ambiguous, json.JSONDecodeError):
        raise
    except ValueError as exc:  # Python's own limit on integer digits: valid JSON
        raise _Ambiguous(str(exc)) from None
    return value, hook.names


def readable_id(value: Any) -> str | None:
    """REQ-10: the id of a parsed line, when it is a REQUEST whose id a receiver reads."""
    if not isinstance(value, dict) or value.get("type") != "REQUEST":
        return None
    holder = value.get("request", value)
    if not isinstance(holder, dict):
        return None  # the flat id beside a broken `request` is not read
    rid = holder.get("id")
    # Lengths count code points after unescaping, a lone surrogate as one (D7).
    return rid if isinstance(rid, str) and 1 <= len(rid) <= 128 else None


def line_readable_id(body: bytes) -> str | None:
    """REQ-10 on raw bytes: None also for lines that are not one JSON text."""
    try:
        value, _ = parse_line(body)
    except ValueError:
        return None
    return readable_id(value)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@cache
def _validators() -> dict[str, Any]:
    cls, registry = _jsonschema()
    return {
        shape: cls({"$ref": f"https://peepsy.dev/schema/1/{name}"}, registry=registry)
        for shape, name in (("legacy", "request-legacy.json"), ("unified", "request.json"))
    }


def request_is_valid(value: dict[str, Any]) -> bool:
    """MSG-2 for a REQUEST, in the shape REQ-3 picks (a `request` member: legacy)."""
    return bool(_validators()["legacy" if "request" in value else "unified"].is_valid(value))


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(_has_lone_surrogate, value))
    return False


def _new_rules(value: Any) -> frozenset[str]:
    """The issue-8 rules a verdict on this value rests on."""
    rules = set()
    if _has_lone_surrogate(value):
        rules.add("FRAME-9")  # before it, a receiver could reject the line
    if isinstance(value, dict) and value.get("type") == "REQUEST":
        floats = [value.get(k) for k in ("timeout", "priority")]
        if any(isinstance(v, float) and v.is_integer() for v in floats):
            rules.add("MSG-8")  # before it, 5000.0 could be answered 400
        if "request" in value and not isinstance(value["request"], dict) and "id" in value:
            rules.add("REQ-10")  # before it, the flat id beside a broken request was read
    return frozenset(rules)


def expectation(body: bytes) -> Expectation:
    """REQ-9 in the decisions' order, for one line a correct worker reads mid-stream."""
    found = _expectation(body)
    if found.skip is not None:
        return found
    try:
        value, _ = parse_line(body)
    except ValueError:
        return found
    rules = _new_rules(value)
    # Lines with more than one right answer are not sent: MSG-8 lets a receiver take a
    # valid 5000.0 as 5000 (404) or as invalid (400), and REQ-10 lets it read the flat
    # id beside a `request` that is not an object (400) or not (no answer). An integral
    # float in a line that is invalid anyway (timeout 0.0) is 400 under either reading.
    if ("MSG-8" in rules and found.status == 404) or "REQ-10" in rules:
        allowed = "MSG-8" if "REQ-10" not in rules else "REQ-10"
        return Expectation("", skip=f"{allowed} allows more than one answer")
    return replace(found, relies_on=rules) if rules else found


def _expectation(body: bytes) -> Expectation:
    if b"\n" in body or len(body) + 1 > MAX_LINE:
        return Expectation("", skip="not one line a receiver must take whole")
    try:
        value, repeated = parse_line(body)
    except _Ambiguous as exc:
        return Expectation("", skip=f"ambiguous JSON: {exc}")
    except ValueError as exc:
        why = "not valid UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
        return Expectation(f"FRAME-8/REQ-10: a line that is not JSON ({why}) gets no answer")
    # One level of slack: counts of "levels" differ by one on whether the outer object
    # is level 0 or 1.
    if _depth(value) >= MAX_DEPTH:
        return Expectation("", skip="nested as deep as a receiver may refuse (FRAME-3)")
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        return Expectation("MSG-1/FRAME-8: a JSON value that is not a message gets no answer")
    if repeated & {"type", "request", "id"}:
        # Whether a receiver that rejects repeated members still reads a type or an
        # id from such a line, and which, the protocol does not settle.
        return Expectation("", skip=f"it repeats {', '.join(sorted(repeated))}")
    kind = value["type"]
    if kind == "SHUTDOWN":
        return Expectation("", skip="SHUTDOWN is never sent mid-run")
    if kind != "REQUEST":
        rule = {
            "RESPONSE": "ID-4: a RESPONSE to nothing outstanding is ignored",
            "INIT": "INIT-2/MSG-9: a repeated or invalid INIT is ignored",
            # Each line is sent with nothing outstanding: no CANCEL names an owed request.
            "CANCEL": "CANCEL-2: a CANCEL for no request the worker owes is ignored",
        }.get(kind, "MSG-5/MSG-6: a message the child does not receive is ignored")
        return Expectation(rule + ", never answered")
    rid = readable_id(value)
    if rid is None:
        return Expectation("REQ-10/REQ-9: a REQUEST without a readable id is never answered")
    if not request_is_valid(value):
        return Expectation(
            "REQ-9/REQ-7: a REQUEST with a readable id that breaks the schema is answered 400",
            400,
            rid,
            bool(repeated),
        )
    action = value.get("request", value)["action"]
    if not action.startswith(ACTION_PREFIX):
        return Expectation("", skip=f"action {action!r} may be one the worker serves")
    return Expectation(
        "REQ-9/RESP-4: a valid REQUEST for an action the worker lacks is answered 404",
        404,
        rid,
        bool(repeated),
    )


def expected_text(expect: Expectation) -> str:
    if expect.status is None:
        return "no answer"
    alt = " (or 400, or none: a receiver MAY reject a line that repeats a member)"
    return f"one RESPONSE with id {expect.id!r} and status {expect.status}" + (
        alt if expect.repeats else ""
    )
