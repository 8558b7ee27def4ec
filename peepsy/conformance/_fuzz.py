"""``--fuzz N [--seed S]``: generated lines against one long-lived worker, judged by id.

Each example is one line (``_fuzz_lines.py`` makes them, ``_fuzz_oracle.py`` says what a
correct worker does with each), followed by a sentinel REQUEST whose 404 shows that the
worker has read the line. Every id is unique in the run, so every answer is attributed
by id, whenever it comes. The run fails when a worker answers a line it must not answer,
answers with the wrong status or more than once, leaves a line unanswered, writes a
line that is no message, or dies; hypothesis then shrinks the line to the smallest one
that still fails, and the report shows its bytes, what came back and the seed.

Shrinking needs a verdict inside the example, so an expected answer must come before the
sentinel's. RESP-6 lets a worker answer in any order, so that verdict is only believed
once confirmed: the smallest line is sent again and given :data:`LATE_MS`; when its
answer does come, the worker merely reorders, and the run is made again judging missing
answers only at its end, after the same generous wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky, Unsatisfiable

from peepsy.conformance._fuzz_lines import PLACEHOLDER, Drawn, lines
from peepsy.conformance._fuzz_oracle import TAG_RE, Expectation, expectation, expected_text
from peepsy.conformance._schemas import schema_errors
from peepsy.conformance._suite import WorkerNotStarted, init_message
from peepsy.conformance._wire import Session, WireLine

#: How long the sentinel's answer may take (the worker is alive and reading).
SENTINEL_MS = 5000
#: How long a missing answer is waited for before it counts as never coming.
LATE_MS = 3000


class Failed(AssertionError):
    """One example broke a rule; hypothesis shrinks it."""


class StartupFailed(Exception):
    """The worker did not answer a request right after it started: nothing to judge."""


@dataclass(slots=True)
class Case:
    """One line as sent, what it should get, and what came back."""

    number: int
    body: bytes
    how: str
    expect: Expectation
    answers: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Failure:
    rule: str
    case: Case | None
    got: str
    trace: list[WireLine]
    stderr: str = ""
    late: bool = False  # judged at the end, not shrunk
    missing: bool = False  # no answer before the sentinel's: to be confirmed
    startup: bool = False  # the worker never served: the run could not be made
    restarts: int = 0  # workers started again after one died

    def describe(self, rerun: str) -> str:
        """The report's text; ``rerun`` is the options that send the same lines again."""
        lines = [f"rule: {self.rule}"]
        if self.case is not None:
            c = self.case
            lines += [
                f"sent (example {c.number}, {len(c.body) + 1} bytes): {c.body + NEWLINE!r}",
                f"made as: {c.how}",
                f"expected: {expected_text(c.expect)}",
            ]
            if c.expect.relies_on:
                rules = ", ".join(sorted(c.expect.relies_on))
                lines.append(f"(this verdict rests on {rules}, added by issue 8; --fuzz-waive)")
        lines.append(f"got: {self.got}")
        if self.late:
            lines.append("(not shrunk: this was judged at the end of the run)")
        if self.restarts:
            lines.append(f"(the worker was started again {self.restarts} times while shrinking)")
        lines.append(f"reproduce with: {rerun}")
        return "\n    ".join(lines)


class FuzzRun:
    """One worker (restarted only when it dies), fed one example per hypothesis call."""

    def __init__(
        self, argv: list[str], mode: str, scale: float, waive: frozenset[str], *, ordered: bool
    ) -> None:
        self.argv, self.mode, self.scale, self.ordered = argv, mode, scale, ordered
        self.waive = waive
        self.runner = asyncio.Runner()
        self.session: Session | None = None
        self.numbers = itertools.count(1)
        self.used: set[str] = set()
        self.cases: dict[str, Case] = {}  # readable id -> its case
        self.numbered: dict[int, Case] = {}
        self.late: list[Failure] = []
        self.failure: Failure | None = None
        self.sent: list[bytes] = []
        self.restarts = 0

    # --- the worker ------------------------------------------------------------------

    def worker(self) -> Session:
        if self.session is None or self.session.output_closed:
            if self.session is not None:
                self.runner.run(self.session.stop())
                self.restarts += 1
            session = Session(self.argv)
            try:
                self.runner.run(session.start())
            except OSError as exc:
                raise WorkerNotStarted(f"could not start the worker {self.argv}: {exc}") from exc
            session.send(init_message(self.mode))
            # A worker that cannot serve at all is reported as that, once, and not
            # blamed on the line that happened to come first.
            probe = f"fuzz-start-{self.restarts + 1}"
            session.send({"type": "REQUEST", "id": probe, "action": "fuzz.start"})
            if not self.runner.run(self._answered(session, probe)):
                code = self.runner.run(session.wait_exit(1000 * self.scale))
                ended = "still running" if code is None else f"exit status {code}"
                self.failure = Failure(
                    "a worker answers a request once it has started (RESP-1)",
                    None,
                    f"no answer to {probe!r} within {SENTINEL_MS * self.scale:.0f} ms of the"
                    f" start ({ended})",
                    list(session.trace),
                    _stderr(session),
                    startup=True,
                )
                self.runner.run(session.stop())
                raise StartupFailed(probe)
            self.session = session
        return self.session

    async def _answered(self, session: Session, rid: str) -> bool:
        deadline = session.now() + SENTINEL_MS * self.scale
        while (line := await session.next_message(deadline - session.now())) is not None:
            if isinstance(line.message, dict) and line.message.get("id") == rid:
                return True
        return False

    def close(self) -> None:
        if self.session is not None:
            self.runner.run(self.session.stop())
        self.runner.close()

    # --- one example -----------------------------------------------------------------

    def example(self, drawn: Drawn) -> None:
        number = next(self.numbers)
        body = drawn.body.replace(PLACEHOLDER, f"z{number:06}.".encode())
        expect = expectation(body)
        if expect.skip is None and expect.id is not None and not self._fresh(expect.id, number):
            expect = Expectation("", skip="its id could be taken for another line's")
        if expect.skip is not None or expect.relies_on & self.waive:
            reject()  # ambiguous: no verdict is safe (hypothesis draws another)
        session = self.worker()
        case = Case(number, body, drawn.how, expect)
        self.numbered[number] = case
        if expect.id is not None:
            self.used.add(expect.id)
            self.cases[expect.id] = case
        sentinel = f"s{number:06}.sentinel"
        self.used.add(sentinel)
        mark = len(session.trace)
        session.send_raw(body + b"\n")
        session.send({"type": "REQUEST", "id": sentinel, "action": "fuzz.sentinel"})
        self.sent.append(body)
        problem, heard = self.runner.run(self._collect(session, case, sentinel))
        if problem is None:
            problem = self._judge(case)
        if problem is not None:
            rule, got = problem
            self.failure = Failure(rule, case, got, session.trace[mark:], _stderr(session))
            self.failure.missing = got.startswith(NOT_BEFORE_SENTINEL)
            if not heard:  # dead or deaf: the next example needs a new worker
                self.runner.run(session.stop())
                self.session = None
                self.restarts += 1
            raise Failed(rule)

    def _fresh(self, rid: str, number: int) -> bool:
        own = rid.startswith(f"z{number:06}.")
        return rid not in self.used and (own or not TAG_RE.match(rid)) and not _CONTROL.match(rid)

    async def _collect(
        self, session: Session, case: Case, sentinel: str
    ) -> tuple[tuple[str, str] | None, bool]:
        """Read until the sentinel is answered (then ``True``), attributing each answer
        by its id, or until a problem."""
        deadline = session.now() + SENTINEL_MS * self.scale
        while True:
            line = await session.next_message(deadline - session.now())
            if line is None:
                return await self._silent_worker(session, sentinel), False
            problem = self._attribute(line, case)
            if problem is not None:
                return problem, True
            if isinstance(line.message, dict) and line.message.get("id") == sentinel:
                return None, True

    async def _silent_worker(self, session: Session, sentinel: str) -> tuple[str, str]:
        if session.output_closed or session.returncode is not None:
            code = await session.wait_exit(1000 * self.scale)
            return (
                "FRAME-8: a line a worker cannot use costs only that line: it never dies",
                f"the worker closed its output (exit status {code}) instead of answering"
                f" the sentinel {sentinel!r}",
            )
        return (
            "FRAME-8/RESP-1: the worker goes on reading and answering after any line",
            f"no answer to the sentinel {sentinel!r} within {SENTINEL_MS * self.scale:.0f} ms",
        )

    def _attribute(self, line: WireLine, current: Case) -> tuple[str, str] | None:
        """Judge one line from the worker: an answer to which case, or a problem."""
        msg = line.message
        if line.problem is not None and not isinstance(msg, dict):
            return ("STREAM-1: stdout carries protocol messages only", f"{line.raw!r}")
        if not isinstance(msg, dict) or msg.get("type") != "RESPONSE":
            return None  # the worker's own REQUESTs are its business (ID-3)
        rid = msg.get("id")
        if isinstance(rid, str) and _CONTROL.match(rid):
            return _answer_problem(msg, 404, "the sentinel")
        case = self.cases.get(rid) if isinstance(rid, str) else None
        tag = _TAG.match(rid) if isinstance(rid, str) and case is None else None
        if tag is not None:  # not a readable id, but this run's tag says whose line it was
            case = self.numbered.get(int(tag[1]))
        if case is None:
            return (
                "RESP-1/REQ-10: every RESPONSE carries the readable id of a REQUEST it answers",
                f"a RESPONSE with an id no line carried readably: {line.raw!r}",
            )
        case.answers.append(msg)
        if case is current:
            return None
        problem = self._judge(case, final=True)
        if problem is not None:  # too late to shrink: kept for the end
            self.late.append(Failure(problem[0], case, problem[1], [line], late=True))
        return None

    def _judge(self, case: Case, *, final: bool = False) -> tuple[str, str] | None:
        expect, answers = case.expect, case.answers
        if expect.status is None:
            if answers:
                return (expect.rule, f"an answer: {_show(answers[0])}")
            return None
        if len(answers) > 1:
            return ("RESP-1: exactly one RESPONSE per REQUEST", f"{len(answers)} answers")
        if answers:
            status = 400 if expect.repeats and answers[0].get("status") == 400 else expect.status
            return _answer_problem(answers[0], status, expect.rule)
        if expect.repeats or (final is False and not self.ordered):
            return None
        return (expect.rule, "no answer" if final else NOT_BEFORE_SENTINEL)

    # --- the end of the run ------------------------------------------------------------

    def finish(self) -> Failure | None:
        """The final request, and every answer still owed, within the generous wait."""
        session = self.worker()
        mark = len(session.trace)
        session.send({"type": "REQUEST", "id": FINAL_ID, "action": "fuzz.final"})
        done = self.runner.run(self._drain(session))
        if not done:
            return Failure(
                "FRAME-8/RESP-1: after every fuzzed line the worker still answers a request",
                None,
                f"no answer to {FINAL_ID!r} within {LATE_MS * self.scale:.0f} ms",
                session.trace[mark:],
                _stderr(session),
            )
        for case in self.cases.values():
            problem = self._judge(case, final=True)
            if problem is not None:
                return Failure(problem[0], case, problem[1], [], late=True)
        return self.late[0] if self.late else None

    async def _drain(self, session: Session) -> bool:
        deadline = session.now() + LATE_MS * self.scale
        final = False
        while not (final and self._settled()):
            line = await session.next_message(deadline - session.now())
            if line is None:
                return final
            problem = self._attribute(line, _NOBODY)
            if problem is not None:
                self.late.append(Failure(problem[0], None, problem[1], [line], late=True))
            final = final or (isinstance(line.message, dict) and line.message.get("id") == FINAL_ID)
        return True

    def _settled(self) -> bool:
        return all(
            c.answers or c.expect.status is None or c.expect.repeats for c in self.cases.values()
        )

    def confirm(self, failure: Failure) -> bool:
        """Is a missing answer really missing? The same line again, with a new tag,
        given the generous wait."""
        assert failure.case is not None
        old = f"z{failure.case.number:06}.".encode()
        number = next(self.numbers)
        body = failure.case.body.replace(old, f"z{number:06}.".encode())
        expect = expectation(body)
        if expect.id is None or not self._fresh(expect.id, number):
            return False  # cannot tell: judge the run the slow way
        session = self.worker()
        case = Case(number, body, failure.case.how, expect)
        self.cases[expect.id] = case
        session.send_raw(body + b"\n")
        # A sentinel after it, as in the run: a worker may write answers only when it
        # next writes anything.
        session.send({"type": "REQUEST", "id": f"s{number:06}.sentinel", "action": "fuzz.sentinel"})
        self.runner.run(self._drain_one(session, case))
        if case.answers:
            return False
        failure.got += (
            f"; sent again as example {number}, still no answer within"
            f" {LATE_MS * self.scale:.0f} ms"
        )
        return True

    async def _drain_one(self, session: Session, case: Case) -> None:
        deadline = session.now() + LATE_MS * self.scale
        while not case.answers:
            line = await session.next_message(deadline - session.now())
            if line is None:
                return
            self._attribute(line, case)


FINAL_ID = "fuzz-final"
_TAG = re.compile(r"^z(\d{6})\.")
#: The suite's own requests: sentinels, the final request, the probes at start.
_CONTROL = re.compile(r"^(s\d{6}\.sentinel|fuzz-final|fuzz-start-\d+)$")
NOT_BEFORE_SENTINEL = "no answer before the sentinel's"
NEWLINE = b"\n"
_NOBODY = Case(0, b"", "", Expectation(""))


def _answer_problem(msg: dict[str, Any], status: int, what: str) -> tuple[str, str] | None:
    errors = schema_errors("response.json", msg)
    if errors:
        return ("MSG-2: an answer is a valid RESPONSE", f"{_show(msg)}: {errors[0]}")
    if msg["status"] != status:
        return (
            what if what != "the sentinel" else "RESP-4: the sentinel is answered 404",
            f"status {msg['status']}: {_show(msg)}",
        )
    return None


def _show(msg: dict[str, Any]) -> str:
    text = json.dumps(msg, ensure_ascii=True)
    return text if len(text) < 400 else text[:400] + "..."


def _stderr(session: Session) -> str:
    return session.stderr.decode("utf-8", "replace")[-4000:]


def fuzz(
    argv: list[str],
    examples: int,
    seed: int,
    *,
    mode: str = "sequential",
    scale: float = 1.0,
    waive: frozenset[str] = frozenset(),
) -> tuple[Failure | None, list[bytes]]:
    """Run the fuzzing; the failure found (None: the worker passed) and the lines sent.
    ``waive``: issue-8 rules (FRAME-9, MSG-8, REQ-10) whose examples are not sent."""
    failure, sent, confirmed = _attempt(argv, examples, seed, mode, scale, waive, ordered=True)
    if failure is not None and not confirmed:
        # The worker answers out of order (RESP-6 allows it): judge missing answers at
        # the end only. Nothing is shrunk then, but nothing correct is blamed either.
        failure, sent, _ = _attempt(argv, examples, seed, mode, scale, waive, ordered=False)
    return failure, sent


def _attempt(
    argv: list[str],
    examples: int,
    seed: int,
    mode: str,
    scale: float,
    waive: frozenset[str],
    *,
    ordered: bool,
) -> tuple[Failure | None, list[bytes], bool]:
    run = FuzzRun(argv, mode, scale, waive, ordered=ordered)

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        database=None,  # the same seed must mean the same examples, whatever ran before
        deadline=None,
        derandomize=False,
        phases=(Phase.generate, Phase.shrink),
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
    )
    @given(lines())
    def one(drawn: Drawn) -> None:
        run.example(drawn)

    try:
        # The failure itself is in run.failure, from the last (the smallest) call.
        with contextlib.suppress(Failed, Flaky, Unsatisfiable, StartupFailed):
            run.worker()
            one()
        failure = run.failure
        if failure is not None and failure.startup:
            return failure, run.sent, True
        if failure is not None:
            failure.restarts = run.restarts
            if failure.missing and not run.confirm(failure):
                return failure, run.sent, False
            return failure, run.sent, True
        return run.finish(), run.sent, True
    finally:
        run.close()


def random_seed() -> int:
    return secrets.randbelow(2**32)
