"""The checks that judge every line a worker wrote, over all the runs of the other checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from peepsy.conformance._schemas import schema_errors
from peepsy.conformance._transcript import Outcome
from peepsy.conformance._wire import Session


@dataclass(frozen=True, slots=True)
class GlobalCheck:
    check: str
    requirement: tuple[str, ...]
    severity: str
    description: str
    find: Callable[[Session], list[str]]

    def judge(self, sessions: list[Session]) -> Outcome:
        problems: list[str] = []
        for session in sessions:
            problems += self.find(session)
        verdict = "pass" if not problems else ("fail" if self.severity == "MUST" else "warn")
        if not sessions:
            verdict = "skip"
        return Outcome(
            check=self.check,
            requirement=self.requirement,
            level="core",
            severity=self.severity,
            description=self.description,
            verdict=verdict,  # type: ignore[arg-type]
            message="; ".join(problems[:5])
            + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""),
            source="(built in)",
        )


def _from_worker(session: Session) -> list[Any]:
    return [line for line in session.trace if line.direction == "from-worker"]


def _purity(session: Session) -> list[str]:
    return [
        f"{line.t:.0f} ms: {line.problem}: {line.raw[:80]!r}"
        for line in _from_worker(session)
        if line.problem and "CR LF" not in line.problem and "byte-order" not in line.problem
    ]


def _crlf(session: Session) -> list[str]:
    return [
        f"{line.t:.0f} ms: {line.raw[:60]!r}"
        for line in _from_worker(session)
        if line.raw.endswith(b"\r\n")
    ]


def _bom(session: Session) -> list[str]:
    return [
        f"{line.t:.0f} ms: {line.raw[:60]!r}"
        for line in _from_worker(session)
        if line.raw.startswith(b"\xef\xbb\xbf")
    ]


def _partial(session: Session) -> list[str]:
    return (
        [f"output ended inside a line: {session.partial[:80]!r}"] if session.partial.strip() else []
    )


def _schema(session: Session) -> list[str]:
    out = []
    for line in _from_worker(session):
        if isinstance(line.message, dict) and isinstance(line.message.get("type"), str):
            errors = schema_errors("child-message.json", line.message)
            if errors:
                out.append(f"{line.t:.0f} ms {line.message.get('type')}: {errors[0]}")
    return out


_KNOWN = {
    "READY": {"type", "pid", "protocol", "mode", "actions", "implementation"},
    "REQUEST": {"type", "id", "action", "data", "timeout", "priority", "request"},
    "RESPONSE": {"type", "id", "status", "data", "error", "errorPayload"},
    "HEARTBEAT": {"type", "pid", "timestamp", "requestsActive"},
}


_KNOWN_NESTED = {
    ("RESPONSE", "errorPayload"): {"name", "message", "code", "details", "stack"},
    ("REQUEST", "request"): {"id", "action", "data"},
}
# Members the schema types as integers: JSON Schema counts 404.0 as one, MSG-7 does not.
_INTEGERS = {
    "READY": ("pid",),
    "REQUEST": ("timeout", "priority"),
    "RESPONSE": ("status",),
    "HEARTBEAT": ("pid", "timestamp", "requestsActive"),
}


def _extra(members: dict[str, Any], known: set[str]) -> list[str]:
    return sorted(k for k in members if k not in known and not k.startswith("x-"))


def _unknown_members(session: Session) -> list[str]:
    out = []
    for line in _from_worker(session):
        msg = line.message
        if not isinstance(msg, dict) or msg.get("type") not in _KNOWN:
            continue
        kind = msg["type"]
        extra = _extra(msg, _KNOWN[kind])
        for (owner, member), known in _KNOWN_NESTED.items():
            if kind == owner and isinstance(msg.get(member), dict):
                extra += [f"{member}.{k}" for k in _extra(msg[member], known)]
        if extra:
            out.append(f"{kind} with {', '.join(extra)}")
    return out


def _fractional_integers(session: Session) -> list[str]:
    out = []
    for line in _from_worker(session):
        msg = line.message
        if isinstance(msg, dict) and msg.get("type") in _INTEGERS:
            for member in _INTEGERS[msg["type"]]:
                if isinstance(msg.get(member), float):
                    out.append(f"{msg['type']} {member} written as {msg[member]!r}")
    return out


def _responses(session: Session) -> Iterator[dict[str, Any]]:
    """The worker's RESPONSEs that carry an integer status."""
    for line in _from_worker(session):
        msg = line.message
        is_response = isinstance(msg, dict) and msg.get("type") == "RESPONSE"
        if is_response and isinstance(msg.get("status"), int):
            yield msg


def _stacks(session: Session) -> list[str]:
    return [
        f"RESPONSE {msg.get('id')!r} carries errorPayload.stack"
        for msg in _responses(session)
        if isinstance(msg.get("errorPayload"), dict) and "stack" in msg["errorPayload"]
    ]


def _failure_error_text(session: Session) -> list[str]:
    out = []
    for msg in _responses(session):
        if msg["status"] >= 400 and not isinstance(msg.get("error"), str):
            out.append(f"RESPONSE {msg.get('id')!r} status {msg['status']} has no error string")
        if msg["status"] < 400 and ("error" in msg or "errorPayload" in msg):
            out.append(f"RESPONSE {msg.get('id')!r} status {msg['status']} carries an error")
    return out


def _failure_payload(session: Session) -> list[str]:
    return [
        f"RESPONSE {msg.get('id')!r} status {msg['status']} has no errorPayload"
        for msg in _responses(session)
        if msg["status"] >= 400 and "errorPayload" not in msg
    ]


GLOBAL_CHECKS: tuple[GlobalCheck, ...] = (
    GlobalCheck(
        "stream.stdout-purity",
        ("STREAM-1", "FRAME-1"),
        "MUST",
        "stdout carries protocol lines only: no banner, no stray print",
        _purity,
    ),
    GlobalCheck("frame.no-crlf", ("FRAME-4",), "MUST", "no line ends with CR LF", _crlf),
    GlobalCheck(
        "frame.no-bom", ("FRAME-7",), "MUST", "no line starts with a byte-order mark", _bom
    ),
    GlobalCheck(
        "frame.no-partial-line",
        ("FRAME-2",),
        "MUST",
        "every line the worker wrote ends with a newline",
        _partial,
    ),
    GlobalCheck(
        "msg.schema-valid",
        ("MSG-2", "MSG-6"),
        "MUST",
        "every message the worker sent validates against schema/child-message.json",
        _schema,
    ),
    GlobalCheck(
        "msg.no-unknown-members",
        ("MSG-3",),
        "MUST",
        "the worker sends only members the protocol defines (or x- extensions)",
        _unknown_members,
    ),
    GlobalCheck(
        "resp.error-text",
        ("RESP-3",),
        "MUST",
        "failures carry an error string; successes carry no error",
        _failure_error_text,
    ),
    GlobalCheck(
        "resp.error-payload",
        ("RESP-3",),
        "SHOULD",
        "failures carry a structured errorPayload",
        _failure_payload,
    ),
    GlobalCheck(
        "msg.integers-without-fraction",
        ("MSG-7",),
        "MUST",
        "integers are written without a fraction (404, never 404.0)",
        _fractional_integers,
    ),
    GlobalCheck(
        "resp.no-stack-by-default",
        ("RESP-5",),
        "MUST",
        "no errorPayload.stack unless the worker was configured to send it",
        _stacks,
    ),
)
