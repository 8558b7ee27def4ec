"""The conformance suite as pytest items: one item per check, named by its id.

The suite runs once per session, on the first conformance item pytest runs, for exactly
the checks that survived selection (``-k``, ``--deselect``): the checks share one probe
of the worker and run several at a time, which a run per item would lose (a probe per
check, one check at a time: minutes rather than seconds for the whole suite). Every
item then reports its own check's verdict. The plugin module
(``peepsy.pytest_plugin``) imports this module only when a worker is configured.
"""

from __future__ import annotations

import asyncio
import shlex
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from peepsy.conformance._checks import GLOBAL_CHECKS
from peepsy.conformance._cli_args import default_jobs
from peepsy.conformance._levels import levels_line
from peepsy.conformance._report import load_expectations, side_by_side
from peepsy.conformance._schemas import builtin_transcripts
from peepsy.conformance._suite import (
    Interrupted,
    Options,
    SuiteResult,
    WorkerNotStarted,
    load_all,
    run_suite,
)
from peepsy.conformance._transcript import Outcome, TranscriptError
from peepsy.testing import ConformanceWarning

#: The collector's node id: items are ``peepsy-conformance::<check id>``.
COLLECTOR = "peepsy-conformance"


class CheckFailed(Exception):
    """A check the worker fails; its text is the check's own explanation."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What the options and the ini file ask of the suite."""

    argv: tuple[str, ...]
    cwd: str | None = None
    level: str = "auto"
    mode: str | None = None
    transport: str = "stdio"
    transcripts: tuple[Path, ...] = ()
    builtin: bool = True
    timeout_scale: float = 1.0
    jobs: int = 0
    #: The expected-failures file (the CLI's --expected-failures), or None, and its ids.
    expected_failures: Path | None = None
    expected: frozenset[str] = frozenset()

    @staticmethod
    def read_expected(path: Path) -> frozenset[str]:
        try:
            return load_expectations(path.read_text(encoding="utf-8")).ids
        except (OSError, UnicodeDecodeError) as exc:
            raise pytest.UsageError(f"peepsy_expected_failures: {exc}") from None

    @staticmethod
    def split(command: str) -> tuple[str, ...]:
        return tuple(shlex.split(command))


@dataclass(slots=True)
class _Run:
    """The one suite run of a session, made on first need."""

    settings: Settings
    result: SuiteResult | None = None
    error: str = ""
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    #: The listed expected failures that name no check.
    unknown: tuple[str, ...] = ()


class ConformanceCollector(pytest.Collector):
    """The checks, as items; ``settings`` is set by the plugin before collecting."""

    settings: Settings
    run: _Run | None = None

    def collect(self) -> Iterator[pytest.Item]:
        dirs = ([builtin_transcripts()] if self.settings.builtin else []) + list(
            self.settings.transcripts
        )
        try:
            transcripts = load_all(dirs)
        except TranscriptError as exc:
            raise self.CollectError(f"invalid transcript:\n{exc}") from None
        run = self.run = _Run(self.settings)
        known = {t.check for t in transcripts} | {g.check for g in GLOBAL_CHECKS}
        run.unknown = tuple(sorted(self.settings.expected - known))
        for t in transcripts:
            item = CheckItem.from_parent(self, name=t.check)
            item.setup_check(run, t.level, t.requirement, t.description, t.source)
            yield item
        for g in GLOBAL_CHECKS:
            item = CheckItem.from_parent(self, name=g.check)
            item.setup_check(run, "core", g.requirement, g.description, "")
            yield item


class CheckItem(pytest.Item):
    """One conformance check; its verdict comes from the session's one suite run."""

    run: _Run
    level: str
    requirement: tuple[str, ...]
    description: str
    source: str
    outcome: Outcome | None = None

    def setup_check(
        self,
        run: _Run,
        level: str,
        requirement: Sequence[str],
        description: str,
        source: str,
    ) -> None:
        self.run, self.level, self.description, self.source = run, level, description, source
        self.requirement = tuple(requirement)
        # ``-k core`` or ``-k RESP-4`` selects by level or by requirement, as well as by id.
        self.extra_keyword_matches.update({level, *self.requirement})
        self.add_marker("peepsy_conformance")

    def runtest(self) -> None:
        outcome = self._outcome()
        self.outcome = outcome
        verdict = outcome.verdict
        if self.name in self.run.settings.expected:
            self._expected_failure(outcome)
        if verdict == "pass":
            return
        if verdict == "warn":
            # Attributed to the check's transcript, as its failure would be.
            warnings.warn_explicit(
                ConformanceWarning(f"{self.name} ({self._requirement()}): {outcome.message}"),
                ConformanceWarning,
                self.source or COLLECTOR,
                1,
            )
            return
        if verdict in ("skip", "not-run"):
            raise _skip(outcome.message or "not run")
        if verdict == "untestable":
            message = outcome.message or "the worker gave it nothing to judge"
            prefix = "" if message.startswith("not testable") else "not testable: "
            raise _skip(prefix + message)
        raise CheckFailed(explain(outcome))

    def _expected_failure(self, outcome: Outcome) -> None:
        """A listed check, as the CLI judges it: failing or warning is tolerated
        (xfailed); passing is stale, and fails, so that the list shrinks."""
        where = self.run.settings.expected_failures
        if outcome.verdict in ("fail", "error", "timeout", "warn"):
            pytest.xfail(f"listed in {where}: {outcome.message}")
        if outcome.verdict == "pass":
            raise CheckFailed(
                f"STALE: listed in {where} as an expected failure, but it passes; remove it"
            )

    def _outcome(self) -> Outcome:
        run = self.run
        if run.result is None and not run.error:
            chosen = [i.name for i in self.session.items if isinstance(i, CheckItem)]
            _run_suite(run, chosen)
        if run.error:
            raise CheckFailed(run.error)
        assert run.result is not None
        if run.result.startup_problem:
            # Nothing was checked: that is a failure of every check, not a skip of it.
            tail = "".join(f"\n    {line}" for line in run.result.startup_stderr)
            raise CheckFailed(
                f"the worker cannot be checked: {run.result.startup_problem}"
                + (f"\n  worker stderr (end):{tail}" if tail else "")
            )
        return run.outcomes[self.name]

    def _requirement(self) -> str:
        return ", ".join(self.requirement)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        if isinstance(excinfo.value, CheckFailed):
            return f"{self.name}: {self.description}\n{excinfo.value}"
        if isinstance(excinfo.value, ConformanceWarning) and self.outcome is not None:
            # Warnings are errors in this run (-W error, filterwarnings): show the check.
            return f"{self.name}: {self.description} (a warning, raised)\n{explain(self.outcome)}"
        return str(super().repr_failure(excinfo, style))

    def reportinfo(self) -> tuple[str, int, str]:
        return self.source or COLLECTOR, 0, f"{COLLECTOR}::{self.name}"


def _skip(reason: str) -> BaseException:
    # Reported at the check's transcript (reportinfo), not at this module's line.
    return pytest.skip.Exception(reason, _use_item_location=True)


def _exact(check: str) -> str:
    """``check`` as a glob that matches itself only (ids may hold ``[``, ``*``, ``?``)."""
    return "".join(f"[{c}]" if c in "[]*?" else c for c in check)


def _run_suite(run: _Run, checks: Sequence[str]) -> None:
    s = run.settings
    options = Options(
        argv=list(s.argv),
        cwd=s.cwd,
        mode=s.mode,
        level=s.level,
        only=[_exact(c) for c in checks],
        transcript_dirs=list(s.transcripts),
        builtin=s.builtin,
        timeout_scale=s.timeout_scale,
        transport=s.transport,
        jobs=s.jobs or default_jobs(),
    )
    try:
        result = asyncio.run(run_suite(options))
    except Interrupted:
        raise KeyboardInterrupt from None
    except (WorkerNotStarted, TranscriptError) as exc:
        run.error = f"the suite cannot run: {exc}"
        return
    run.result = result
    run.outcomes = {o.check: o for o in result.outcomes}


def explain(outcome: Outcome, width: int = 100) -> str:
    """A failed check as the terminal report shows it: the requirement, what went wrong,
    where the message differs (JSON paths), both sides, and the stderr of a worker that
    died in it."""
    lines = [
        f"  verdict {outcome.verdict}; requirement {', '.join(outcome.requirement)}"
        f" ({outcome.severity}); level {outcome.level}"
        + (f"; {outcome.source}" if outcome.source else "")
    ]
    if outcome.message:
        lines.append(f"  {outcome.message}")
    lines += [f"  at {m.path}: expected {m.expected}, got {m.actual}" for m in outcome.mismatches]
    if outcome.expected is not None or outcome.actual is not None:
        lines += [f"  {row}" for row in side_by_side(outcome.expected, outcome.actual, width)]
    if outcome.trace:
        lines.append("  wire log:")
        lines += [f"    {line.rstrip()}" for line in outcome.trace[-40:]]
    if outcome.stderr.strip():
        lines.append("  worker stderr (end):")
        lines += [f"    {line}" for line in outcome.stderr.strip().splitlines()[-20:]]
    return "\n".join(lines)


def summary_lines(run: _Run) -> list[str]:
    """What the session's run learnt of the worker, for the terminal summary."""
    lines = [
        f"{run.settings.expected_failures}: no check is called {check!r}" for check in run.unknown
    ]
    result = run.result
    if result is not None:
        lines += [
            f"worker: {shlex.join(result.worker)}",
            f"mode:   {result.mode} (from {result.mode_source})",
            f"levels: {levels_line(result)}",
        ]
    return lines
