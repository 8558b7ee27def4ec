"""The vocabulary of a fuzzing run: one example as sent (:class:`Case`), what broke a
rule (:class:`Failure`, with the report's text), the budgets and the ids the run
reserves for itself, and the judging of one answer. Apart from the run
(``_fuzz_run.py``) and its driver (``_fuzz.py``) because the ``--fuzz`` command's
report reads these too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from peepsy.conformance._fuzz_oracle import Expectation, expected_text
from peepsy.conformance._schemas import schema_errors
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
