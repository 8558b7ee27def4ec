"""What ``--fuzz`` sends: lines drawn from schema/bundle.json with hypothesis-jsonschema.

Valid messages, written every way a receiver must take (raw or escaped, integral floats,
lone surrogate escapes, a repeated member); messages with one member broken (its schema
negated, an edge value its keywords imply, or left out); other JSON values; and valid
lines with byte-level changes. No generator says what a line should get: the oracle
(_fuzz_oracle.py) judges the bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from peepsy.conformance._fuzz_oracle import ACTION_PREFIX, KNOWN_TYPES
from peepsy.conformance._schemas import data_dir, load_json

#: Stands in the generated ids for the example's tag (``z000017.``): the tag is known only
#: when the line is sent, and the placeholder has its length, so ids keep theirs.
PLACEHOLDER = b"@@@@@@@@"

VALID_TITLES = ("RequestUnified", "RequestLegacy", "Init", "Heartbeat", "Ready", "Response")


@cache
def _defs() -> dict[str, Any]:
    defs: dict[str, Any] = load_json(data_dir() / "schema" / "bundle.json")["$defs"]
    return defs


def _schema_of(title: str) -> dict[str, Any]:
    return {"$defs": _defs(), "$ref": f"#/$defs/{title}"}


def _object(value: Any) -> dict[str, Any]:
    assert isinstance(value, dict)  # every message schema is an object schema
    return value


@cache
def messages(title: str) -> st.SearchStrategy[dict[str, Any]]:
    """Valid messages of one schema of the bundle (``RequestUnified``, ``Init``...)."""
    return from_schema(_schema_of(title)).map(_object)


def _resolve(sub: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in sub:
        return {
            **_defs()[sub["$ref"].rsplit("/", 1)[1]],
            **{k: v for k, v in sub.items() if k != "$ref"},
        }
    return sub


def _edge_values(sub: dict[str, Any]) -> list[Any]:
    """Invalid values that a member's own keywords imply: just past its bounds, the
    right number in the wrong type, null for an optional member (MSG-2)."""
    sub = _resolve(sub)
    out: list[Any] = [None]
    if sub.get("type") == "integer":
        low, high = sub.get("minimum"), sub.get("maximum")
        out += [low - 1] if low is not None else []
        out += [high + 1] if high is not None else []
        out += [(low or 0) + 0.5, str(low if low is not None else 1), True]
    if sub.get("type") == "string":
        out += ["", "x" * (sub.get("maxLength", 256) + 1), 7]
    if "const" in sub:
        out += [str(sub["const"]).lower(), [sub["const"]]]
    if "enum" in sub:
        out += ["parallel", sub["enum"][0].upper()]
    if sub.get("type") == "object":
        out += [[], "x", {}]
    return out


@cache
def _negation(sub: str) -> st.SearchStrategy[Any]:
    """Values a member's schema (as JSON text: a cache key) rejects. Built once each:
    hypothesis-jsonschema canonicalises a schema when it makes the strategy."""
    return from_schema({"$defs": _defs(), "not": json.loads(sub)})


@st.composite
def broken_message(draw: st.DrawFn, title: str) -> Any:
    """A valid message with one member broken: dropped, replaced by a value its schema
    rejects (hypothesis-jsonschema on ``not``), or an edge value."""
    message = dict(draw(messages(title)))
    schema = _defs()[title]
    target: dict[str, Any] = message
    props: dict[str, Any] = schema["properties"]
    flat = title == "RequestLegacy" and draw(st.booleans())
    if flat:
        # The nested id and action again, flat beside a broken `request`: that flat id
        # must not be read (REQ-10), a reading implementations have got wrong.
        message = target = {**{k: message["request"][k] for k in ("id", "action")}, **message}
    elif title == "RequestLegacy" and draw(st.booleans()):
        target = message["request"] = dict(message["request"])
        props = _defs()["RequestBody"]["properties"]
    name = "request" if flat else draw(st.sampled_from(sorted(props)))
    sub = props[name]
    ways = ("edge", "negate") if flat else ("edge", "drop", "negate") if len(sub) > 1 else ("drop",)
    how = draw(st.sampled_from(ways))
    if how == "drop":
        target.pop(name, None)
    elif how == "edge":
        target[name] = draw(st.sampled_from(_edge_values(sub)))
    else:
        target[name] = draw(_negation(json.dumps(_resolve(sub), sort_keys=True)))
    return message


def _stamp(message: Any) -> Any:
    """Ids get the example's tag in front (answers are told apart by id); valid action
    names get the ``fuzz.`` prefix. Lengths stay within the schema's bounds, so a valid
    message stays valid and an invalid one stays invalid in the same way."""
    if not isinstance(message, dict):
        return message
    out = dict(message)
    if isinstance(out.get("request"), dict):
        out["request"] = dict(out["request"])
    for holder in (out, out.get("request")):
        if not isinstance(holder, dict):
            continue
        rid = holder.get("id")
        if isinstance(rid, str) and 1 <= len(rid) <= 128:
            holder["id"] = (PLACEHOLDER.decode() + rid)[:128]
        action = holder.get("action")
        if isinstance(action, str) and 1 <= len(action) <= 256:
            holder["action"] = (ACTION_PREFIX + action)[:256]
    return out


_FLOAT_FORMS = ("{}.0", "{}e0", "{}0e-1", "{}.000")


def render(
    message: Any,
    *,
    ascii_only: bool,
    spaced: bool,
    floats: frozenset[str] = frozenset(),
    form: int = 0,
    duplicate: tuple[str, Any] | None = None,
) -> bytes:
    """JSON text for a message, written the ways senders may write it (escaped or raw
    UTF-8, spacing) and the ways receivers must still take: integers in ``floats``
    written as integral floats (MSG-8), a member written twice (FRAME-3)."""
    sep = (", ", ": ") if spaced else (",", ":")

    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=ascii_only, separators=sep, allow_nan=False)

    if not isinstance(message, dict):
        text = dumps(message)
    else:
        pairs = []
        for key, value in message.items():
            if key in floats and isinstance(value, int) and not isinstance(value, bool):
                pairs.append(f"{dumps(key)}{sep[1]}{_FLOAT_FORMS[form].format(value)}")
            else:
                pairs.append(f"{dumps(key)}{sep[1]}{dumps(value)}")
        if duplicate is not None:
            pairs.insert(0, f"{dumps(duplicate[0])}{sep[1]}{dumps(duplicate[1])}")
        text = "{" + sep[0].join(pairs) + "}"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: senders write it escaped (FRAME-9)
        return render(
            message, ascii_only=True, spaced=spaced, floats=floats, form=form, duplicate=duplicate
        )


@dataclass(frozen=True, slots=True)
class Drawn:
    """One generated line (without its newline) and how it was made, for the report."""

    body: bytes
    how: str


#: As JSON escapes: the text of a lone surrogate, never its (invalid UTF-8) bytes.
_SURROGATES = ("\\ud800", "\\udbff", "\\udc00", "\\udfff")


@st.composite
def _lone_surrogate(draw: st.DrawFn, message: dict[str, Any]) -> dict[str, Any]:
    """A lone surrogate put into a string of the message: data, id or action (FRAME-9)."""
    out = dict(message)
    if isinstance(out.get("request"), dict):
        out["request"] = holder = dict(out["request"])
    else:
        holder = out
    where = draw(
        st.sampled_from(sorted(k for k in ("id", "action", "data") if k in holder) or ["data"])
    )
    char = chr(int(draw(st.sampled_from(_SURROGATES))[2:], 16))
    current = holder.get(where)
    text = current if isinstance(current, str) else "x"
    # After the tag and the fuzz. prefix: those keep attributing answers and keep the
    # action one no worker serves.
    keep = {"id": len(PLACEHOLDER), "action": len(ACTION_PREFIX)}.get(where, 0)
    at = draw(st.integers(min(keep, len(text)), len(text)))
    holder[where] = text[:at] + char + text[at:]
    return out


@st.composite
def valid_line(draw: st.DrawFn) -> Drawn:
    """A valid message (REQUESTs most often), written any way senders and receivers
    agree on: raw or escaped, spaced or not, integral floats, lone surrogates, a
    repeated member."""
    title = draw(st.sampled_from(("RequestUnified", "RequestLegacy", *VALID_TITLES)))
    message = _object(_stamp(draw(messages(title))))
    how = [f"valid {title}"]
    if draw(st.integers(0, 3)) == 3:  # 1 in 4; shrinks to none
        message = draw(_lone_surrogate(message))
        how.append("with a lone surrogate escape")
    ints = sorted(k for k, v in message.items() if isinstance(v, int) and not isinstance(v, bool))
    floats = (
        frozenset(draw(st.lists(st.sampled_from(ints), max_size=2, unique=True)))
        if ints
        else frozenset()
    )
    if floats:
        how.append(f"{', '.join(sorted(floats))} as integral floats")
    duplicate = None
    # Not type, id or request: which of two a receiver that rejects the line reads is
    # not settled, so the oracle skips those lines.
    repeatable = sorted(set(message) - {"type", "id", "request"})
    if repeatable and draw(st.integers(0, 5)) == 5:  # 1 in 6; shrinks to none
        key = draw(st.sampled_from(repeatable))
        duplicate = (key, draw(st.sampled_from([message[key], None, "dup"])))
        how.append(f"member {key} written twice")
    body = render(
        message,
        ascii_only=draw(st.booleans()),
        spaced=draw(st.booleans()),
        floats=floats,
        form=draw(st.integers(0, len(_FLOAT_FORMS) - 1)),
        duplicate=duplicate,
    )
    return Drawn(body, "; ".join(how))


@st.composite
def broken_request_line(draw: st.DrawFn) -> Drawn:
    """A REQUEST with one member broken: the lines REQ-9 and REQ-10 sort most finely
    (400 or silence), so they get a branch of their own."""
    title = draw(st.sampled_from(("RequestUnified", "RequestLegacy")))
    message = _stamp(draw(broken_message(title)))
    body = render(message, ascii_only=draw(st.booleans()), spaced=draw(st.booleans()))
    return Drawn(body, f"{title} with one member broken")


#: REQUEST members whose schema states bounds, and the $defs that state them.
_BOUNDED = {
    "timeout": "TimeoutMs",
    "priority": "Priority",
    "id": "RequestId",
    "action": "ActionName",
}


@st.composite
def boundary_line(draw: st.DrawFn) -> Drawn:
    """A REQUEST with one member at, or just past, a bound its schema states: integers
    also written as integral floats (MSG-8), strings of astral characters or lone
    surrogates, which count as one each (D7). Where receivers differ most."""
    title = draw(st.sampled_from(("RequestUnified", "RequestLegacy")))
    message = _object(_stamp(draw(messages(title))))
    name = draw(st.sampled_from(sorted(_BOUNDED)))
    sub = _defs()[_BOUNDED[name]]
    nested = title == "RequestLegacy" and name in ("id", "action")
    holder = message["request"] if nested else message
    floats: frozenset[str] = frozenset()
    if sub["type"] == "integer":
        low, high = sub["minimum"], sub["maximum"]
        holder[name] = draw(st.sampled_from((low, high, low - 1, high + 1, 5000)))
        floats = frozenset({name}) if draw(st.booleans()) else frozenset()
    else:
        size = draw(st.sampled_from((sub["maxLength"], sub["maxLength"] + 1)))
        char = draw(st.sampled_from(("x", "\U0001f389", "\ud800")))
        prefix = PLACEHOLDER.decode() if name == "id" else ACTION_PREFIX
        holder[name] = (prefix + char * size)[:size]
    form = draw(st.integers(0, len(_FLOAT_FORMS) - 1))
    body = render(message, ascii_only=draw(st.booleans()), spaced=False, floats=floats, form=form)
    written = " as an integral float" if floats else ""
    return Drawn(body, f"{title} with {name} at a bound{written}")


@st.composite
def invalid_line(draw: st.DrawFn) -> Drawn:
    """A message with one member broken, or another JSON value: an unknown type, a
    non-object (MSG-1, MSG-5)."""
    choice = draw(st.sampled_from(("broken", "unknown-type", "not-object")))
    if choice == "broken":
        title = draw(st.sampled_from(VALID_TITLES))
        message = _stamp(draw(broken_message(title)))
        how = f"{title} with one member broken"
    elif choice == "unknown-type":
        kind = draw(
            st.sampled_from(("request", "Request", "REQUEST ", "PING", ""))
            | st.text(max_size=12).filter(lambda t: t not in KNOWN_TYPES)
        )
        message = _stamp({**draw(messages("RequestUnified")), "type": kind})
        how = f"a REQUEST's members under type {kind!r}"
    else:
        message = draw(from_schema({"not": {"type": "object"}}))
        how = "a JSON value that is not an object"
    return Drawn(render(message, ascii_only=draw(st.booleans()), spaced=False), how)


_BAD_UTF8 = (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80")


@st.composite
def _mutation(draw: st.DrawFn, size: int) -> tuple[str, int, bytes]:
    kind = draw(
        st.sampled_from(
            ("flip", "insert", "delete", "truncate", "bom", "cr", "invalid-utf8", "surrogate")
        )
    )
    at = draw(st.integers(0, size))
    if kind == "flip":
        extra = bytes([draw(st.integers(0, 7))])
    elif kind == "insert":
        extra = draw(st.binary(min_size=1, max_size=4))
    elif kind == "delete":
        extra = bytes([draw(st.integers(1, 16))])
    elif kind == "invalid-utf8":
        extra = draw(st.sampled_from(_BAD_UTF8))
    elif kind == "surrogate":
        extra = draw(st.sampled_from(_SURROGATES)).encode()
    else:
        extra = b""
    return kind, at, extra


def mutate(body: bytes, kind: str, at: int, extra: bytes) -> bytes:
    """One byte-level change at ``at`` (clamped to the line)."""
    at = min(at, len(body))
    if kind == "flip" and at < len(body):
        return body[:at] + bytes([body[at] ^ (1 << extra[0])]) + body[at + 1 :]
    if kind == "delete":
        return body[:at] + body[at + extra[0] :]
    if kind == "truncate":
        return body[:at]
    insert = {"bom": b"\xef\xbb\xbf", "cr": b"\r"}.get(kind, extra)
    return body[:at] + insert + body[at:]


@st.composite
def mutated_line(draw: st.DrawFn) -> Drawn:
    """A valid line with one to three byte-level changes."""
    base = draw(valid_line())
    body, how = base.body, []
    for _ in range(draw(st.integers(1, 3))):
        kind, at, extra = draw(_mutation(len(body)))
        body = mutate(body, kind, at, extra)
        how.append(f"{kind}@{at}" + (f" {extra!r}" if kind in ("insert", "invalid-utf8") else ""))
    # A newline would make two lines (FRAME-1): what a mutation inserts stays on this one.
    body = body.replace(b"\n", b" ")
    return Drawn(body, f"{base.how}; then {', '.join(how)}")


def lines() -> st.SearchStrategy[Drawn]:
    """Every kind of line, simplest first: hypothesis shrinks towards the first."""
    return st.one_of(
        valid_line(), broken_request_line(), boundary_line(), invalid_line(), mutated_line()
    )
