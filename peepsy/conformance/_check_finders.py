"""What each check over every run looks for in one run: a function per check, from a
worker's session to :class:`Findings` (how much it judged, and the problems). They live
apart from ``_checks.py``, which names the checks and turns findings into verdicts, so
that the table of checks stays short enough to read as a whole; the schema facts some
finders need (the members and integers of each message) are read here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from peepsy.conformance._levels import states_cancel
from peepsy.conformance._schemas import data_dir, load_json, schema_errors
from peepsy.conformance._wire import Session, WireLine

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Findings:
    """What a check found in one run: how many things it judged, and the problems."""

    judged: int
    problems: list[str]


def _from_worker(session: Session) -> list[WireLine]:
    return [line for line in session.trace if line.direction == "from-worker"]


def _messages(session: Session) -> list[tuple[WireLine, dict[str, Any]]]:
    """The worker's messages: objects with a string type."""
    return [
        (line, line.message)
        for line in _from_worker(session)
        if isinstance(line.message, dict) and isinstance(line.message.get("type"), str)
    ]


def _each_line(session: Session, problem: Callable[[WireLine], str | None]) -> Findings:
    lines = _from_worker(session)
    found = [p for line in lines if (p := problem(line)) is not None]
    return Findings(len(lines), found)


def _purity(session: Session) -> Findings:
    def problem(line: WireLine) -> str | None:
        if line.problem and "CR LF" not in line.problem and "byte-order" not in line.problem:
            return f"{line.t:.0f} ms: {line.problem}: {line.raw[:80]!r}"
        return None

    return _each_line(session, problem)


def _crlf(session: Session) -> Findings:
    return _each_line(
        session,
        lambda line: f"{line.t:.0f} ms: {line.raw[:60]!r}" if line.raw.endswith(b"\r\n") else None,
    )


def _bom(session: Session) -> Findings:
    return _each_line(
        session,
        lambda line: f"{line.t:.0f} ms: {line.raw[:60]!r}" if line.raw.startswith(BOM) else None,
    )


def _partial(session: Session) -> Findings:
    wrote = bool(_from_worker(session)) or bool(session.partial.strip())
    problems = (
        [f"output ended inside a line: {session.partial[:80]!r}"] if session.partial.strip() else []
    )
    return Findings(int(wrote), problems)


def _schema(session: Session) -> Findings:
    messages = _messages(session)
    out = []
    for line, msg in messages:
        errors = schema_errors("child-message.json", msg)
        if errors:
            out.append(f"{line.t:.0f} ms {msg.get('type')}: {errors[0]}")
    return Findings(len(messages), out)


def _bundle_defs() -> dict[str, Any]:
    defs: dict[str, Any] = load_json(data_dir() / "schema" / "bundle.json")["$defs"]
    return defs


def _is_integer(prop: dict[str, Any], defs: dict[str, Any]) -> bool:
    if "$ref" in prop:
        prop = defs[prop["$ref"].rsplit("/", 1)[-1]]
    return prop.get("type") == "integer"


def _members(
    defs: dict[str, Any],
) -> tuple[dict[str, set[str]], dict[tuple[str, str], set[str]], dict[str, tuple[str, ...]]]:
    """What the schema defines, read from schema/bundle.json so that a member added there
    is known here at once: the members of each message a child sends, the members of
    the objects nested in them, and the members the schema types as integers (JSON
    Schema counts 404.0 as an integer, MSG-7 does not)."""
    shapes = {
        "READY": ["Ready"],
        "REQUEST": ["RequestUnified", "RequestLegacy"],
        "RESPONSE": ["Response"],
        "HEARTBEAT": ["Heartbeat"],
        "CANCEL": ["Cancel"],
    }
    known: dict[str, set[str]] = {}
    integers: dict[str, tuple[str, ...]] = {}
    for kind, names in shapes.items():
        props = {k: v for name in names for k, v in defs[name]["properties"].items()}
        known[kind] = set(props)
        integers[kind] = tuple(sorted(k for k, v in props.items() if _is_integer(v, defs)))
    nested = {
        ("RESPONSE", "errorPayload"): set(defs["ErrorPayload"]["properties"]),
        ("REQUEST", "request"): set(defs["RequestBody"]["properties"]),
    }
    return known, nested, integers


_KNOWN, _KNOWN_NESTED, _INTEGERS = _members(_bundle_defs())


def _extra(members: dict[str, Any], known: set[str]) -> list[str]:
    return sorted(k for k in members if k not in known and not k.startswith("x-"))


def _unknown_members(session: Session) -> Findings:
    judged = 0
    out = []
    for _, msg in _messages(session):
        kind = msg["type"]
        if kind not in _KNOWN:
            continue
        judged += 1
        extra = _extra(msg, _KNOWN[kind])
        for (owner, member), known in _KNOWN_NESTED.items():
            if kind == owner and isinstance(msg.get(member), dict):
                extra += [f"{member}.{k}" for k in _extra(msg[member], known)]
        if extra:
            out.append(f"{kind} with {', '.join(extra)}")
    return Findings(judged, out)


def _fractional_integers(session: Session) -> Findings:
    judged = 0
    out = []
    for _, msg in _messages(session):
        for member in _INTEGERS.get(msg["type"], ()):
            if member not in msg:
                continue
            judged += 1
            if isinstance(msg[member], float):
                out.append(f"{msg['type']} {member} written as {msg[member]!r}")
    return Findings(judged, out)


def _responses(session: Session) -> list[dict[str, Any]]:
    """The worker's RESPONSEs that carry an integer status."""
    return [
        msg
        for _, msg in _messages(session)
        if msg["type"] == "RESPONSE" and isinstance(msg.get("status"), int)
    ]


def _failures(session: Session) -> list[dict[str, Any]]:
    return [msg for msg in _responses(session) if msg["status"] >= 400]


def _stacks(session: Session) -> Findings:
    failures = _failures(session)
    return Findings(
        len(failures),
        [
            f"RESPONSE {msg.get('id')!r} carries errorPayload.stack"
            for msg in failures
            if isinstance(msg.get("errorPayload"), dict) and "stack" in msg["errorPayload"]
        ],
    )


def _failure_error_text(session: Session) -> Findings:
    responses = _responses(session)
    out = []
    for msg in responses:
        if msg["status"] >= 400 and not isinstance(msg.get("error"), str):
            out.append(f"RESPONSE {msg.get('id')!r} status {msg['status']} has no error string")
        if msg["status"] < 400 and ("error" in msg or "errorPayload" in msg):
            out.append(f"RESPONSE {msg.get('id')!r} status {msg['status']} carries an error")
    return Findings(len(responses), out)


def _failure_payload(session: Session) -> Findings:
    failures = _failures(session)
    out = []
    for msg in failures:
        payload = msg.get("errorPayload")
        if not isinstance(payload, dict):
            out.append(f"RESPONSE {msg.get('id')!r} status {msg['status']} has no errorPayload")
        elif isinstance(msg.get("error"), str) and payload.get("message") != msg["error"]:
            out.append(
                f"RESPONSE {msg.get('id')!r}: errorPayload.message differs from error (RESP-8)"
            )
    return Findings(len(failures), out)


def _inits(session: Session) -> list[tuple[int, dict[str, Any]]]:
    """The valid INITs the suite sent, with their place in the trace. An invalid INIT
    is as if it had not come (MSG-9), so it is no INIT here either."""
    out = []
    for index, line in enumerate(session.trace):
        # Lines to the worker are not parsed as they go (some are 20 MiB): an INIT is
        # small and names its type near the start.
        if line.direction != "to-worker" or b'"INIT"' not in line.raw[:200]:
            continue
        try:
            msg = json.loads(line.raw)
        except ValueError:
            continue
        is_init = isinstance(msg, dict) and msg.get("type") == "INIT"
        if is_init and not schema_errors("init.json", msg):
            out.append((index, msg))
    return out


def _readies(session: Session) -> list[tuple[int, WireLine]]:
    return [
        (index, line)
        for index, line in enumerate(session.trace)
        if line.direction == "from-worker"
        and isinstance(line.message, dict)
        and line.message.get("type") == "READY"
    ]


def _ready_once(session: Session) -> Findings:
    """READY-2: at most one READY, either at start-up (before any RESPONSE or REQUEST of
    the worker's) or first after the first valid INIT."""
    readies = _readies(session)
    if not readies:
        return Findings(0, [])
    out = []
    if len(readies) > 1:
        out.append(
            f"{len(readies)} READYs in one run, at "
            + ", ".join(f"{line.t:.0f}" for _, line in readies)
            + " ms"
        )
    first, ready = readies[0]
    inits = [index for index, _ in _inits(session) if index < first]
    start = inits[0] if inits else 0
    for line in session.trace[start:first]:
        kind = line.message.get("type") if isinstance(line.message, dict) else None
        if line.direction == "from-worker" and kind in ("RESPONSE", "REQUEST"):
            since = "INIT" if inits else "the start"
            out.append(
                f"a {kind} at {line.t:.0f} ms came between {since} and READY ({ready.t:.0f} ms)"
            )
            break
    return Findings(len(readies), out)


def _within_peer_limit(session: Session) -> Findings:
    """FRAME-11: once INIT states maxLineBytes, no line of a worker that states its own
    limit in READY is longer (a worker that states none makes no promise)."""
    inits = _inits(session)
    if not inits or not isinstance(inits[0][1].get("maxLineBytes"), int):
        return Findings(0, [])
    if not any(isinstance(line.message.get("maxLineBytes"), int) for _, line in _readies(session)):
        return Findings(0, [])
    start, init = inits[0]
    limit: int = init["maxLineBytes"]
    lines = [line for line in session.trace[start:] if line.direction == "from-worker"]
    return Findings(
        len(lines),
        [
            f"{line.t:.0f} ms: a line of {len(line.raw)} bytes; INIT's maxLineBytes is {limit}"
            for line in lines
            if len(line.raw) > limit
        ],
    )


def _master_answer(line: WireLine) -> dict[str, Any] | None:
    """A RESPONSE the suite sent the worker. Lines to the worker are not parsed as they
    go; an answer to the worker's own request is small and names its type early."""
    if line.direction != "to-worker" or b'"RESPONSE"' not in line.raw[:200]:
        return None
    try:
        msg = json.loads(line.raw)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) and msg.get("type") == "RESPONSE" else None


def _own_request_id(msg: dict[str, Any]) -> Any:
    body = msg.get("request", msg)
    return body.get("id") if isinstance(body, dict) else None


def _cancels_sent(session: Session) -> Findings:
    """CANCEL-1: the worker sends CANCEL only for a REQUEST of its own whose RESPONSE
    has not come, and only once an INIT has stated protocol 1.1 or later (the suite
    states 1.0 but in the cancel level's checks). Judged: its REQUESTs and CANCELs."""
    inits = _inits(session)
    first = inits[0][0] if inits else -1
    cancels = False
    waiting: set[Any] = set()
    judged, problems = 0, []
    for index, line in enumerate(session.trace):
        if index == first:
            cancels = states_cancel(inits[0][1].get("protocol", "1.0"))
        answer = _master_answer(line)
        if answer is not None:
            waiting.discard(answer.get("id"))
            continue
        msg = line.message if line.direction == "from-worker" else None
        if not isinstance(msg, dict) or msg.get("type") not in ("REQUEST", "CANCEL"):
            continue
        judged += 1
        if msg["type"] == "REQUEST":
            waiting.add(_own_request_id(msg))
        elif not cancels:
            problems.append(
                f"{line.t:.0f} ms: CANCEL {msg.get('id')!r} to a master that stated no"
                " protocol 1.1 (its INIT says 1.0, or it sent none)"
            )
        elif msg.get("id") not in waiting:
            problems.append(
                f"{line.t:.0f} ms: CANCEL {msg.get('id')!r} names no REQUEST of the worker's"
                " own still waiting for its answer"
            )
    return Findings(judged, problems)
