"""How the wire checks read one child channel: the master's lines strictly, the child's
leniently, and the schema facts a master's message is judged by.

A master's line is read twice over in one pass: what FRAME-1 and FRAME-3 forbid (bad
UTF-8, NaN, a number beyond a double, a repeated member name, not one object) is noted
as the line's ``problem``, and its value is still read where any parser could, so that
the line's other traits are judged by the other checks: one defect, one failure. A
child's line is read as generously as a correct master may read it (REQ-10 and its
allowance, FRAME-12, FRAME-13), so that no master is blamed for an id it could read.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from peepsy.conformance._levels import states_cancel
from peepsy.conformance._schemas import _jsonschema, data_dir, json_path, load_json

BOM = b"\xef\xbb\xbf"
JSON_SPACE = b" \t\r\n"
MASTER_TYPES = ("INIT", "REQUEST", "RESPONSE", "SHUTDOWN", "CANCEL")
_SCHEMA_OF = {
    "INIT": "init.json",
    "RESPONSE": "response.json",
    "SHUTDOWN": "shutdown.json",
    "CANCEL": "cancel.json",
}
#: FRAME-6: the line length every receiver takes; a longer one is dropped, and its id
#: may be read from its start (FRAME-12).
ONE_MIB = 1 << 20
#: The start of a REQUEST line, where FRAME-12 and FRAME-13 let a receiver read an id
#: from a line it does not parse whole.
_HEAD = 4096
_HEAD_ID = re.compile(rb'"id"\s*:\s*("(?:[^"\\]|\\.){1,800}")')
#: jsonschema puts the whole instance in some messages: a 1 MiB echo would drown the
#: report.
_MESSAGE_LIMIT = 200


@dataclass(frozen=True, slots=True)
class MasterLine:
    """One whole line the master wrote to a child. ``number`` counts the master's lines
    on the channel from 1; ``value`` is what a tolerant parser reads (None when nothing
    can be read); ``problem`` says why the line is not one strict JSON object."""

    number: int
    raw: bytes
    value: Any
    problem: str | None
    blank: bool = False

    @property
    def message(self) -> dict[str, Any] | None:
        """The line as a message: an object with a string ``type``."""
        value = self.value
        if isinstance(value, dict) and isinstance(value.get("type"), str):
            return value
        return None


@dataclass(frozen=True, slots=True)
class ChildLine:
    """One whole line the child (the suite) wrote to the master, ``index`` counting
    them on the channel; ``request_id`` is the id a master may read from it when it is
    a REQUEST (REQ-10)."""

    index: int
    value: Any
    request_id: str | None


class _Strict:
    """Hooks for :func:`json.loads` that note what FRAME-3 forbids and read on."""

    def __init__(self) -> None:
        self.problem: str | None = None

    def _note(self, problem: str) -> None:
        if self.problem is None:
            self.problem = problem

    def pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            twice = next(name for i, name in enumerate(names) if name in names[:i])
            self._note(f"member name {twice!r} appears twice in one object (FRAME-3)")
        return dict(pairs)

    def constant(self, name: str) -> float:
        self._note(f"{name} is not JSON (FRAME-3)")
        return float(name)

    def number(self, text: str) -> float:
        value = float(text)
        if math.isinf(value):
            self._note(f"{text[:40]} is beyond the range of a double (FRAME-3)")
        return value

    def integer(self, text: str) -> int | float:
        # Python refuses to read integers of more than 4300 digits; far fewer already
        # lie beyond a double.
        if len(text) > 300 and math.isinf(float(text)):
            self._note(f"{text[:40]}... is beyond the range of a double (FRAME-3)")
            return math.inf
        return int(text)


def read_master_line(number: int, raw: bytes) -> MasterLine:
    body = raw.removesuffix(b"\n")
    # A BOM and a CR before the LF are the defects of their own checks (FRAME-7,
    # FRAME-4): the JSON is judged without them.
    body = body.removeprefix(BOM)
    if not body.strip(JSON_SPACE):
        # FRAME-5 only asks a sender not to write blank lines (a SHOULD): they are no
        # message, and no JSON text to judge.
        return MasterLine(number, raw, None, None, blank=True)
    problem = None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = f"not valid UTF-8 at byte {exc.start} (FRAME-1)"
        text = body.decode("utf-8", "replace")
    strict = _Strict()
    try:
        value = json.loads(
            text,
            object_pairs_hook=strict.pairs,
            parse_constant=strict.constant,
            parse_float=strict.number,
            parse_int=strict.integer,
        )
    except RecursionError:
        # Deeper than this parser reads: FRAME-3 allows it, so it is not a fault, but
        # there is no value for the other checks.
        return MasterLine(number, raw, None, problem)
    except ValueError as exc:
        return MasterLine(number, raw, None, problem or f"not JSON: {exc} (FRAME-1)")
    if problem is None and strict.problem is None and not isinstance(value, dict):
        problem = f"a JSON {type(value).__name__}, not one object (FRAME-1)"
    return MasterLine(number, raw, value, problem or strict.problem)


def read_child_line(index: int, body: bytes) -> ChildLine:
    """A line the child wrote, without its LF, read the way a tolerant master may."""
    body = body.removeprefix(BOM)
    try:
        value = json.loads(body.decode("utf-8", "replace"))
    except RecursionError:
        return ChildLine(index, None, _head_id(body))  # FRAME-13
    except json.JSONDecodeError:
        return ChildLine(index, None, _head_id(body) if len(body) >= ONE_MIB else None)
    except ValueError:  # an integer of more digits than Python reads: FRAME-13
        return ChildLine(index, None, _head_id(body))
    if len(body) >= ONE_MIB:  # FRAME-12: a master may drop it and answer 413
        return ChildLine(index, value, readable_id(value) or _head_id(body))
    return ChildLine(index, value, readable_id(value))


def _head_id(body: bytes) -> str | None:
    head = body[:_HEAD]
    if b'"REQUEST"' not in head or (found := _HEAD_ID.search(head)) is None:
        return None
    try:
        rid = json.loads(found[1])
    except ValueError:
        return None
    return rid if _is_id(rid) else None


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 128  # ID-1


def readable_id(value: Any) -> str | None:
    """REQ-10: the id a receiver reads from a REQUEST, either shape; with its allowance,
    the flat ``id`` beside a ``request`` that is not an object."""
    if not isinstance(value, dict) or value.get("type") != "REQUEST":
        return None
    holder = value.get("request", value)
    if not isinstance(holder, dict):
        holder = value
    rid = holder.get("id")
    return rid if _is_id(rid) else None


def states_modern_protocol(value: Any) -> bool:
    """A valid READY (MSG-9: an invalid one is as if it had not come) stating 1.1 or
    later, after which a master may send CANCEL (CANCEL-1)."""
    if not isinstance(value, dict) or value.get("type") != "READY":
        return False
    protocol = value.get("protocol")
    return (
        isinstance(protocol, str)
        and states_cancel(protocol)
        and _validator("ready.json", exact=False).is_valid(value)
    )


def message_problem(message: dict[str, Any]) -> str | None:
    """What makes a master's message of a master's type invalid: its schema (MSG-2, ID-1),
    an integer written with a fraction or an exponent (MSG-7), or a member this version
    does not define (MSG-3)."""
    kind = message["type"]
    if kind == "REQUEST":
        name = "request-legacy.json" if "request" in message else "request.json"
    else:
        name = _SCHEMA_OF[kind]
    best = _best_error(_validator(name, exact=True).iter_errors(message))
    if best is not None:
        return f"{kind} {json_path(best.absolute_path)}: {_error_text(best)}"
    own, nested = _known_members()[name]
    extra = _extra(message, own)
    for member, known in nested.items():
        if isinstance(message.get(member), dict):
            extra += [f"{member}.{k}" for k in _extra(message[member], known)]
    if extra:
        return f"{kind} with members the protocol does not define: {', '.join(extra)} (MSG-3)"
    return None


def _error_text(error: Any) -> str:
    text = str(error.message)
    if len(text) > _MESSAGE_LIMIT:
        text = text[:_MESSAGE_LIMIT] + "..."
    instance = error.instance
    if error.validator == "type" and isinstance(instance, float) and instance.is_integer():
        text += " (MSG-7: an integer is written without a fraction or an exponent)"
    return text


def _extra(members: dict[str, Any], known: frozenset[str]) -> list[str]:
    return sorted(k for k in members if k not in known and not k.startswith("x-"))


def _best_error(errors: Any) -> Any:
    from jsonschema.exceptions import best_match  # noqa: PLC0415 - optional dependency

    return best_match(errors)


@cache
def _validator(name: str, *, exact: bool) -> Any:
    """A compiled validator for ``schema/NAME``, made once. ``exact``: an integer is a
    number written without fraction or exponent (MSG-7), where JSON Schema also counts
    ``200.0``; a sender is held to that, a receiver may read either (MSG-8)."""
    cls, registry = _jsonschema()
    if exact:
        cls, registry = _exact_integers()
    return cls({"$ref": f"https://peepsy.dev/schema/1/{name}"}, registry=registry)


@cache
def _exact_integers() -> tuple[Any, Any]:
    # Imported here: the core of peepsy does not need jsonschema.
    from jsonschema import Draft202012Validator, validators  # noqa: PLC0415
    from referencing import Registry  # noqa: PLC0415
    from referencing.jsonschema import DRAFT202012  # noqa: PLC0415

    extend: Any = validators.extend  # untyped in types-jsonschema
    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: type(value) is int
    )
    cls = extend(Draft202012Validator, type_checker=checker)
    # A schema that names its dialect in ``$schema`` is followed with the stock validator
    # of that dialect, losing the type checker: these copies leave it out.
    resources = []
    for path in sorted((data_dir() / "schema").glob("*.json")):
        contents = load_json(path)
        contents.pop("$schema", None)
        resources.append(DRAFT202012.create_resource(contents))
    registry: Any = Registry().with_resources((r.id() or "", r) for r in resources)
    return cls, registry


@cache
def _known_members() -> dict[str, tuple[frozenset[str], dict[str, frozenset[str]]]]:
    """The members each master message defines, read from its schema file so that a
    member added there is known here at once, with those of the objects nested in it
    (a legacy REQUEST's ``request``, a RESPONSE's ``errorPayload``)."""
    known = {}
    for name in (*_SCHEMA_OF.values(), "request.json", "request-legacy.json"):
        schema = load_json(data_dir() / "schema" / name)
        nested = {}
        for member, sub in schema["properties"].items():
            ref = sub.get("$ref", "")
            if ref.startswith("#/$defs/"):
                nested[member] = frozenset(schema["$defs"][ref.rsplit("/", 1)[1]]["properties"])
        known[name] = (frozenset(schema["properties"]), nested)
    return known
