"""What a suite run is given and gives back: its :class:`Options`, the transcripts it
selects (:func:`load_all`, :func:`selected`), the INIT it sends, its
:class:`SuiteResult`, and the two ways it can stop short. Apart from the running
(``_suite.py``, ``_probe.py``, ``_run_one.py``) because the command line, the reports
and the fuzzing use these without running any check.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from peepsy.conformance._transcript import Outcome, Transcript, TranscriptError, load_transcript

#: INIT asks for heartbeats this often, so that cadence checks are quick.
HEARTBEAT_MS = 500
PROFILE_ACTIONS = ("echo", "fail", "sleep", "callMaster")
_C = TypeVar("_C", bound="_Checked")


def load_all(dirs: Iterable[Path]) -> list[Transcript]:
    """Every transcript (``*.ndjson``) under each directory, or each file given itself.
    Check ids must be unique across all of them."""
    return unique_checks(load_transcript(path) for path in case_files(dirs))


def case_files(dirs: Iterable[Path]) -> Iterator[Path]:
    """The ``*.ndjson`` files under each folder (in name order), or each file given."""
    for directory in dirs:
        if directory.is_file():
            yield directory
        elif directory.is_dir():
            yield from sorted(directory.rglob("*.ndjson"))
        else:
            raise TranscriptError(f"{directory}: no such file or directory")


class _Checked(Protocol):
    @property
    def check(self) -> str: ...
    @property
    def source(self) -> str: ...


def unique_checks(cases: Iterable[_C]) -> list[_C]:
    """The cases in order; a check id given twice is an error naming both files."""
    found: dict[str, _C] = {}
    for case in cases:
        if case.check in found:
            raise TranscriptError(
                f"{case.source}: check id {case.check!r} is also in {found[case.check].source}"
            )
        found[case.check] = case
    return list(found.values())


def selected(check: str, only: Sequence[str], skip: Sequence[str]) -> bool:
    if only and not any(fnmatch.fnmatchcase(check, p) for p in only):
        return False
    return not any(fnmatch.fnmatchcase(check, p) for p in skip)


@dataclass(slots=True)
class Options:
    """What :func:`run_suite` runs, and how: the same choices as the command line.

    ``argv`` is the worker's command; ``mode`` (``"sequential"``, ``"concurrent"``, or
    ``None`` to take it from the worker's READY); ``only`` and ``skip`` are globs on
    check ids; ``transcript_dirs`` adds transcripts of your own (``builtin=False`` runs
    only those); ``timeout_scale`` multiplies each case's budget; ``env`` and ``cwd`` are
    the worker's; ``transport`` is ``"stdio"`` or ``"node-ipc"``."""

    argv: Sequence[str]
    mode: str | None = None
    #: ``auto`` (each level as the probe finds), or the highest level to run: that one
    #: even when the probe says it is not offered, none above it.
    level: str = "auto"
    only: Sequence[str] = ()
    skip: Sequence[str] = ()
    transcript_dirs: Sequence[Path] = ()
    builtin: bool = True
    timeout_scale: float = 1.0
    env: dict[str, str] | None = None
    cwd: str | None = None
    transport: str = "stdio"
    #: How many checks run at once, each with its own worker process.
    jobs: int = 1


@dataclass(slots=True)
class SuiteResult:
    """What a run of the suite came to: one :class:`Outcome` per check, in the stable order
    of ``--list``, and what the suite learnt about the worker (its mode, the levels it
    reached and why not, the protocol it stated)."""

    outcomes: list[Outcome] = field(default_factory=list)
    mode: str = "sequential"
    mode_source: str = "INIT (assumed)"
    profile: bool = False
    profile_note: str = ""
    #: Whether the cancel level runs: the profile runs and READY states protocol >= 1.1.
    cancel: bool = False
    #: Why the cancel level did not run, or why it ran although not offered; else "".
    cancel_note: str = ""
    #: The ``protocol`` the worker's READY stated, as it stated it; None: no READY, or
    #: one without it (such a worker speaks 1.0, VER-1).
    worker_protocol: str | None = None
    worker: Sequence[str] = ()
    #: Why no check could run (the worker died at start-up, say), told once; else "".
    startup_problem: str = ""
    #: The end of the worker's stderr in the probe, shown with ``startup_problem``.
    startup_stderr: list[str] = field(default_factory=list)
    #: The run was stopped by SIGINT: the checks that had not finished are ``not-run``.
    interrupted: bool = False


def init_message(mode: str, protocol: str = "1.0") -> dict[str, Any]:
    """The suite's INIT. It states 1.0 but in the cancel level's checks (their header
    adds ``"protocol": "1.1"``) and the probe, so that a worker has no reason to send
    CANCEL anywhere else (CANCEL-1)."""
    return {
        "type": "INIT",
        "mode": mode,
        "protocol": protocol,
        "target": "conformance",
        "heartbeatInterval": HEARTBEAT_MS,
    }


class WorkerNotStarted(RuntimeError):
    """The worker command could not be started at all."""


class Interrupted(Exception):
    """SIGINT: the run stops; what finished is kept in :attr:`result`."""

    def __init__(self, result: SuiteResult) -> None:
        super().__init__("interrupted")
        self.result = result
