"""The :class:`FuzzRun`: one worker, kept alive across examples (started again only when
it dies), fed one generated line and a sentinel per hypothesis call, every answer
attributed to its line by id and judged. Apart from the driver (``_fuzz.py``), which
sets hypothesis up and decides whether a failure is confirmed, because this is the
part that talks to the worker.
"""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import reject

from peepsy.conformance._fuzz_case import (
    _CONTROL,
    _NOBODY,
    _TAG,
    FINAL_ID,
    LATE_MS,
    NOT_BEFORE_SENTINEL,
    SENTINEL_MS,
    Case,
    Failed,
    Failure,
    StartupFailed,
    _answer_problem,
    _show,
    _stderr,
)
from peepsy.conformance._fuzz_lines import PLACEHOLDER, Drawn
from peepsy.conformance._fuzz_oracle import TAG_RE, Expectation, expectation
from peepsy.conformance._suite import WorkerNotStarted, init_message
from peepsy.conformance._wire import Session, WireLine


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
