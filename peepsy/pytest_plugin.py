"""peepsy's pytest plugin, registered through the ``pytest11`` entry point.

``pytest --peepsy-worker "node my_worker.js"`` (or ``peepsy_worker = node my_worker.js``
in the ini file) adds the conformance suite to the run, one item per check
(``peepsy-conformance::resp.unknown-action``); select with ``-k``. The fixtures
``peepsy_master``, ``peepsy_worker_factory``, ``peepsy_worker`` and
``peepsy_wire_snapshot`` start workers for a project's own tests (docs/testing.md).

pytest loads this module in every run of every project that has peepsy installed, so
it imports nothing but pytest at the top: the suite, the master and syrupy are imported
by the hook or fixture that needs them, and a run that configures no worker collects
nothing here and starts nothing.
"""

# ruff: noqa: PLC0415 - every peepsy import is in the hook or fixture that needs it
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from peepsy.testing import Worker, WorkerHarness
    from peepsy.testing._conformance import ConformanceCollector, Settings

_LEVELS = ("auto", "core", "profile", "cancel")
_KEY: pytest.StashKey[ConformanceCollector] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Adds the ``--peepsy-*`` command-line options and their ini keys (``peepsy_worker``
    and the rest, docs/testing.md)."""
    group = parser.getgroup("peepsy", "peepsy conformance suite (docs/testing.md)")
    group.addoption(
        "--peepsy-worker",
        metavar="COMMAND",
        help="run the peepsy conformance suite against COMMAND (split like a shell),"
        " one test item per check: peepsy-conformance::<check id>",
    )
    group.addoption("--peepsy-level", choices=_LEVELS, help="the highest level to run")
    group.addoption("--peepsy-mode", choices=("sequential", "concurrent"), help="worker mode")
    group.addoption("--peepsy-transport", choices=("stdio", "node-ipc"), help="the channel")
    group.addoption(
        "--peepsy-transcripts",
        action="append",
        default=[],
        metavar="PATH",
        help="more transcripts to run (a directory or a file); repeatable",
    )
    group.addoption(
        "--peepsy-no-builtin",
        action="store_true",
        help="run only the --peepsy-transcripts given, not the bundled checks",
    )
    group.addoption("--peepsy-timeout-scale", type=float, help="multiply every check's budget")
    group.addoption("--peepsy-jobs", type=int, metavar="N", help="checks run at once")
    group.addoption(
        "--peepsy-expected-failures",
        metavar="FILE",
        help="check ids expected to fail, one per line (# comments): xfailed while they"
        " fail, failed as stale once they pass",
    )
    group.addoption(
        "--peepsy-no-conformance",
        action="store_true",
        help="no conformance items (the peepsy_worker fixture still uses the worker)",
    )
    parser.addini("peepsy_worker", "the worker command the conformance suite checks", "string")
    parser.addini("peepsy_level", "auto (default), core, profile or cancel", "string", "auto")
    parser.addini("peepsy_mode", "sequential or concurrent (default: from READY)", "string")
    parser.addini("peepsy_transport", "stdio (default) or node-ipc", "string", "stdio")
    parser.addini("peepsy_transcripts", "more transcripts to run", "paths")
    parser.addini("peepsy_builtin", "run the bundled checks (default true)", "bool", True)
    parser.addini("peepsy_timeout_scale", "multiply every check's budget", "string", "1")
    parser.addini("peepsy_expected_failures", "check ids expected to fail (a file)", "paths")
    parser.addini("peepsy_conformance", "collect the conformance items", "bool", True)


def pytest_configure(config: pytest.Config) -> None:
    """Declares the ``peepsy_conformance`` marker, which every conformance item carries
    (``-m peepsy_conformance`` selects them, ``-m "not peepsy_conformance"`` leaves them)."""
    config.addinivalue_line(
        "markers", "peepsy_conformance: a check of the peepsy conformance suite"
    )


def _command(config: pytest.Config) -> tuple[str, str] | None:
    """The worker command and the folder it runs in: an option runs where pytest was
    started, an ini value where the ini file is (so that relative paths in it hold)."""
    option = config.getoption("peepsy_worker")
    if option:
        return str(option), str(config.invocation_params.dir)
    value = str(config.getini("peepsy_worker") or "").strip()
    if value:
        return value, str(config.inipath.parent if config.inipath else config.rootpath)
    return None


def _settings(config: pytest.Config) -> Settings | None:
    command = _command(config)
    if command is None:
        return None
    from peepsy.testing._conformance import Settings

    def pick(name: str) -> Any:
        value = config.getoption(f"peepsy_{name}")
        return config.getini(f"peepsy_{name}") if value in (None, []) else value

    level, mode, transport = pick("level"), pick("mode") or None, pick("transport")
    if level not in _LEVELS:
        raise pytest.UsageError(f"peepsy_level: {level!r} is not one of {', '.join(_LEVELS)}")
    if mode not in (None, "sequential", "concurrent"):
        raise pytest.UsageError(f"peepsy_mode: {mode!r} is not sequential or concurrent")
    if transport not in ("stdio", "node-ipc"):
        raise pytest.UsageError(f"peepsy_transport: {transport!r} is not stdio or node-ipc")
    try:
        scale = float(pick("timeout_scale"))
    except ValueError:
        scale = math.nan
    if not (math.isfinite(scale) and scale > 0):
        raise pytest.UsageError("peepsy_timeout_scale: not a positive number")
    try:
        argv = Settings.split(command[0])
    except ValueError as exc:  # an unclosed quote
        raise pytest.UsageError(f"peepsy_worker: {exc}: {command[0]}") from None
    if not argv:
        raise pytest.UsageError("peepsy_worker: the worker command is empty")
    transcripts: Sequence[str | Path] = pick("transcripts")
    expected = config.getoption("peepsy_expected_failures")
    listed = (
        Path(config.invocation_params.dir, expected)
        if expected
        else next(iter(config.getini("peepsy_expected_failures")), None)
    )
    return Settings(
        argv=argv,
        cwd=command[1],
        level=level,
        mode=mode,
        transport=transport,
        transcripts=tuple(Path(p) for p in transcripts),
        builtin=not config.getoption("peepsy_no_builtin") and bool(config.getini("peepsy_builtin")),
        timeout_scale=scale,
        jobs=config.getoption("peepsy_jobs") or 0,
        expected_failures=listed,
        expected=Settings.read_expected(listed) if listed else frozenset(),
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Adds one item per conformance check when a worker is configured (nothing is run or
    imported otherwise); ``-k``, ``-m`` and ``--deselect`` then choose among them."""
    # tryfirst: the items are added before -k, -m and --deselect choose among them.
    wanted = not config.getoption("peepsy_no_conformance") and config.getini("peepsy_conformance")
    settings = _settings(config) if wanted else None
    if settings is None:
        return
    from peepsy.testing._conformance import COLLECTOR, ConformanceCollector

    collector = ConformanceCollector.from_parent(session, name=COLLECTOR, nodeid=COLLECTOR)
    collector.settings = settings
    config.stash[_KEY] = collector
    items.extend(session.genitems(collector))


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Names the configured worker command and the folder it runs in, if any."""
    command = _command(config)
    return [] if command is None else [f"peepsy worker: {command[0]} (in {command[1]})"]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """After a run that ran checks: the worker, its mode and the levels it reached."""
    collector = config.stash.get(_KEY, None)
    if collector is None or collector.run is None:
        return
    from peepsy.testing._conformance import summary_lines

    lines = summary_lines(collector.run)
    if lines:
        terminalreporter.section("peepsy conformance")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def peepsy_master() -> Iterator[WorkerHarness]:
    """A :class:`peepsy.Master` on an event loop of its own, for plain (sync) tests:
    ``peepsy_master.spawn(argv)`` starts a worker; ``peepsy_master.run(coro)`` awaits
    anything on the master's loop. Every worker is shut down after the test."""
    from peepsy.testing import WorkerHarness

    with WorkerHarness() as harness:
        yield harness


@pytest.fixture
def peepsy_worker_factory(peepsy_master: WorkerHarness) -> Callable[..., Worker]:
    """``peepsy_worker_factory(argv, **spawn_options)``: a started worker (see
    :meth:`peepsy.testing.WorkerHarness.spawn`), shut down after the test."""
    return peepsy_master.spawn


@pytest.fixture
def peepsy_worker(request: pytest.FixtureRequest, peepsy_master: WorkerHarness) -> Worker:
    """The worker of ``--peepsy-worker`` or the ``peepsy_worker`` ini option, started."""
    command = _command(request.config)
    if command is None:
        pytest.fail("the peepsy_worker fixture needs --peepsy-worker or peepsy_worker in the ini")
    from peepsy.testing._conformance import Settings

    return peepsy_master.spawn(Settings.split(command[0]), cwd=command[1])


@pytest.fixture
def peepsy_wire_snapshot(request: pytest.FixtureRequest) -> Any:
    """syrupy's ``snapshot`` storing wire lines byte for byte in ``.ndjson`` files:
    ``assert recording == peepsy_wire_snapshot``. Needs syrupy."""
    from peepsy.testing import WireSnapshotExtension  # says what to install if missing

    return request.getfixturevalue("snapshot").use_extension(WireSnapshotExtension)
