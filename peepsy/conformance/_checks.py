"""The checks that judge every line a worker wrote, over all the runs of the other checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from peepsy.conformance._check_finders import (
    Findings,
    _bom,
    _cancels_sent,
    _crlf,
    _failure_error_text,
    _failure_payload,
    _fractional_integers,
    _partial,
    _purity,
    _ready_once,
    _schema,
    _stacks,
    _unknown_members,
    _within_peer_limit,
)
from peepsy.conformance._transcript import Outcome, Verdict
from peepsy.conformance._wire import Session


@dataclass(frozen=True, slots=True)
class GlobalCheck:
    check: str
    requirement: tuple[str, ...]
    severity: str
    description: str
    find: Callable[[Session], Findings]
    #: What there was nothing of, when no run gave the check anything to judge.
    nothing: str

    def judge(self, sessions: list[Session]) -> Outcome:
        problems: list[str] = []
        judged = 0
        for session in sessions:
            found = self.find(session)
            judged += found.judged
            problems += found.problems
        message = "; ".join(problems[:5]) + (
            f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        )
        verdict: Verdict
        if not sessions:
            verdict = "skip"
        elif problems:
            verdict = "fail" if self.severity == "MUST" else "warn"
        elif not judged:
            # Nothing to judge is no evidence of conformance: never a pass.
            verdict, message = "untestable", f"not testable: {self.nothing} in any run"
        else:
            verdict = "pass"
        return self.outcome(verdict, message)

    def outcome(self, verdict: Verdict, message: str) -> Outcome:
        return Outcome(
            check=self.check,
            requirement=self.requirement,
            level="core",
            severity=self.severity,
            description=self.description,
            verdict=verdict,
            message=message,
            source="(built in)",
        )


LINES = "no line from the worker"
RESPONSES = "no RESPONSE from the worker"
FAILURES = "no failure RESPONSE from the worker"

GLOBAL_CHECKS: tuple[GlobalCheck, ...] = (
    GlobalCheck(
        "stream.stdout-purity",
        ("STREAM-1", "FRAME-1", "MSG-1", "STREAM-4"),
        "MUST",
        "stdout carries protocol lines only: no banner, no stray print, no broken line",
        _purity,
        LINES,
    ),
    GlobalCheck("frame.no-crlf", ("FRAME-4",), "MUST", "no line ends with CR LF", _crlf, LINES),
    GlobalCheck(
        "frame.no-bom",
        ("FRAME-7",),
        "MUST",
        "no line starts with a byte-order mark",
        _bom,
        LINES,
    ),
    GlobalCheck(
        "frame.no-partial-line",
        ("FRAME-2",),
        "MUST",
        "every line the worker wrote ends with a newline",
        _partial,
        "no output from the worker",
    ),
    GlobalCheck(
        "msg.schema-valid",
        ("MSG-2", "MSG-6", "VER-1"),
        "MUST",
        "every message the worker sent validates against schema/child-message.json",
        _schema,
        "no message from the worker",
    ),
    GlobalCheck(
        "msg.no-unknown-members",
        ("MSG-3",),
        "MUST",
        "the worker sends only members the protocol defines (or x- extensions)",
        _unknown_members,
        "no message of a known type from the worker",
    ),
    GlobalCheck(
        "resp.error-text",
        ("RESP-3",),
        "MUST",
        "failures carry an error string; successes carry no error",
        _failure_error_text,
        RESPONSES,
    ),
    GlobalCheck(
        "resp.error-payload",
        ("RESP-8",),
        "SHOULD",
        "failures carry a structured errorPayload whose message is the error text",
        _failure_payload,
        FAILURES,
    ),
    GlobalCheck(
        "msg.integers-without-fraction",
        ("MSG-7",),
        "MUST",
        "integers are written without a fraction (404, never 404.0)",
        _fractional_integers,
        "no integer member in the worker's messages",
    ),
    GlobalCheck(
        "resp.no-stack-by-default",
        ("RESP-5",),
        "MUST",
        "no errorPayload.stack unless the worker was configured to send it",
        _stacks,
        FAILURES,
    ),
    GlobalCheck(
        "ready.once-after-init",
        ("READY-2",),
        "MUST",
        "at most one READY per run: at start-up, or first after the first INIT",
        _ready_once,
        "no READY from the worker",
    ),
    GlobalCheck(
        "frame.line-within-peer-limit",
        ("FRAME-11",),
        "MUST",
        "no line longer than the maxLineBytes INIT states, from a worker that states its own",
        _within_peer_limit,
        "no worker line after an INIT with maxLineBytes, from a worker stating its own",
    ),
    GlobalCheck(
        "cancel.sent-only-when-allowed",
        ("CANCEL-1",),
        "MUST",
        "the worker sends CANCEL only for a REQUEST of its own still waiting for its answer,"
        " and only to a master whose INIT stated protocol 1.1 or later",
        _cancels_sent,
        "no REQUEST or CANCEL from the worker",
    ),
)
