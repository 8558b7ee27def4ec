"""The checks over every run, judged on hand-made traces: each can pass, fail, and say
that it had nothing to judge (never a pass then)."""

from __future__ import annotations

import json
from typing import Any

from peepsy.conformance._checks import GLOBAL_CHECKS
from peepsy.conformance._wire import Session, WireLine

CHECKS = {g.check: g for g in GLOBAL_CHECKS}
INIT = {"type": "INIT", "mode": "sequential"}
READY = {"type": "READY", "pid": 7}


def session(*lines: tuple[str, Any]) -> Session:
    """A finished run: ("in", message) went to the worker, ("out", message) came back."""
    s = Session(argv=[])
    for t, (direction, message) in enumerate(lines):
        raw = (message if isinstance(message, bytes) else json.dumps(message).encode()) + b"\n"
        parsed = None if isinstance(message, bytes) else message
        s.trace.append(
            WireLine(float(t), "to-worker" if direction == "in" else "from-worker", raw, parsed)
        )
    return s


def verdict(check: str, *sessions: Session) -> str:
    return CHECKS[check].judge(list(sessions)).verdict


def response(status: int, **extra: Any) -> dict[str, Any]:
    return {"type": "RESPONSE", "id": "a", "status": status, **extra}


def test_nothing_to_judge_is_untestable_not_pass() -> None:
    silent = session(("in", INIT))
    for check in CHECKS:
        assert verdict(check, silent) == "untestable", check
    assert "not testable" in CHECKS["resp.error-text"].judge([silent]).message
    assert verdict("resp.error-text") == "skip"  # no run at all


def test_resp_checks_judge_responses() -> None:
    good = session(("out", response(404, error="x", errorPayload={"name": "E", "message": "x"})))
    assert verdict("resp.error-text", good) == "pass"
    assert verdict("resp.error-payload", good) == "pass"
    bare = session(("out", response(404, error="x")))
    assert verdict("resp.error-payload", bare) == "warn"
    other = session(("out", response(404, error="x", errorPayload={"name": "E", "message": "y"})))
    assert verdict("resp.error-payload", other) == "warn"
    assert verdict("resp.error-text", session(("out", response(404)))) == "fail"
    # successes only: nothing for the failure checks to judge
    ok = session(("out", response(200, data=1)))
    assert verdict("resp.error-payload", ok) == "untestable"
    assert verdict("resp.error-text", ok) == "pass"


def test_ready_once_after_init() -> None:
    assert verdict("ready.once-after-init", session(("in", INIT), ("out", READY))) == "pass"
    twice = session(("in", INIT), ("out", READY), ("in", INIT), ("out", READY))
    assert verdict("ready.once-after-init", twice) == "fail"
    # READY-2 allows it at start-up, before any answer, INIT or not.
    assert verdict("ready.once-after-init", session(("out", READY))) == "pass"
    early = session(("out", READY), ("in", INIT), ("out", response(404, error="x")))
    assert verdict("ready.once-after-init", early) == "pass"
    # Neither at start-up nor first after INIT.
    late = session(("in", INIT), ("out", response(404, error="x")), ("out", READY))
    assert verdict("ready.once-after-init", late) == "fail"
    unprompted = session(("out", response(404, error="x")), ("out", READY))
    assert verdict("ready.once-after-init", unprompted) == "fail"
    # Answers before INIT came do not count against a READY that answers INIT.
    before_init = session(("out", response(404, error="x")), ("in", INIT), ("out", READY))
    assert verdict("ready.once-after-init", before_init) == "pass"
    # an invalid INIT is as if it had not come (MSG-9): it cannot be what READY answers
    invalid = session(
        ("out", response(404, error="x")),
        ("in", {"type": "INIT", "mode": "parallel"}),
        ("out", READY),
    )
    assert verdict("ready.once-after-init", invalid) == "fail"
    # judged over all runs: one bad run fails the check
    good = session(("in", INIT), ("out", READY))
    assert verdict("ready.once-after-init", good, twice) == "fail"


def test_line_within_peer_limit() -> None:
    init = {**INIT, "maxLineBytes": 1048576}
    stated = {**READY, "maxLineBytes": 1048576}
    small = session(("in", init), ("out", stated), ("out", response(200, data="x")))
    assert verdict("frame.line-within-peer-limit", small) == "pass"
    big = session(("in", init), ("out", stated), ("out", response(200, data="x" * 1048576)))
    assert verdict("frame.line-within-peer-limit", big) == "fail"
    # FRAME-11 binds a worker that states its own limit; one that states none (or a run
    # whose INIT stated none) has nothing to judge.
    silent = session(("in", init), ("out", READY), ("out", response(200, data="x" * 1048576)))
    assert verdict("frame.line-within-peer-limit", silent) == "untestable"
    unstated = session(("in", INIT), ("out", stated), ("out", response(200, data="x" * 1048576)))
    assert verdict("frame.line-within-peer-limit", unstated) == "untestable"


def test_purity_and_integers() -> None:
    assert verdict("stream.stdout-purity", session(("out", response(200)))) == "pass"
    banner = session(("out", b"starting up"))
    banner.trace[0].problem = "not a JSON line"
    assert verdict("stream.stdout-purity", banner) == "fail"
    assert verdict("msg.integers-without-fraction", session(("out", response(200)))) == "pass"
    fractional = session(("out", {"type": "RESPONSE", "id": "a", "status": 200.0}))
    assert verdict("msg.integers-without-fraction", fractional) == "fail"


def test_cancels_sent_only_for_own_open_calls_to_a_1_1_master() -> None:
    check = "cancel.sent-only-when-allowed"
    init = {**INIT, "protocol": "1.1"}
    call = {"type": "REQUEST", "id": "c1", "action": "ping", "timeout": 300}
    cancel = {"type": "CANCEL", "id": "c1", "reason": "timeout"}
    answer = {"type": "RESPONSE", "id": "c1", "status": 499, "error": "cancelled"}
    # its own call, unanswered, to a master that stated 1.1: allowed (and the late 499)
    done = session(("in", init), ("out", call), ("out", cancel), ("in", answer))
    assert verdict(check, done) == "pass"
    assert verdict(check, session(("in", init), ("out", call), ("out", cancel))) == "pass"
    # a request the worker sent and nothing cancelled: judged, and right
    assert verdict(check, session(("in", INIT), ("out", call))) == "pass"
    # a master that stated 1.0, or nothing, or no INIT at all: never
    for first in (INIT, {**INIT, "protocol": "1.0"}):
        assert verdict(check, session(("in", first), ("out", call), ("out", cancel))) == "fail"
    assert verdict(check, session(("out", call), ("out", cancel))) == "fail"
    # after its answer came, or for an id it never sent (a master's own, say)
    answered = session(("in", init), ("out", call), ("in", answer), ("out", cancel))
    assert verdict(check, answered) == "fail"
    legacy = {"type": "REQUEST", "request": {"id": "c1", "action": "ping"}}
    assert verdict(check, session(("in", init), ("out", legacy), ("out", cancel))) == "pass"
    other = session(("in", init), ("out", call), ("out", {**cancel, "id": "m1"}))
    assert verdict(check, other) == "fail"
    message = CHECKS[check].judge([other]).message
    assert "CANCEL 'm1' names no REQUEST of the worker's own" in message
    # a RESPONSE to the worker that is not JSON, or not to its call, changes nothing
    junk = session(("in", init), ("out", call), ("in", b'{"type":"RESPONSE",'), ("out", cancel))
    assert verdict(check, junk) == "pass"
    odd = session(("in", init), ("in", ["RESPONSE"]), ("out", {**legacy, "request": "c1"}))
    assert verdict(check, odd) == "pass"
